"""Values a caller can send that the registry cannot hold are refused naming them, in the reader's language: a moment
UTC cannot express (0001-01-01 at +14:00 is still year 0 in UTC), a cursor holding such a moment or a NUL, and every
rule of issuance said in Chinese when Chinese is asked for."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.certificates.rows import CSV_COLUMNS
from tests.checks import assert_problem, leaves_no_trace
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_issuer,
    days_from_today,
    issued_certificate,
    issuer_token,
    resident_id,
)

BEYOND_UTC = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")
BEYOND_UTC_ZH = "必须是按 UTC 计在 0001-01-01 至 9999-12-31 之间的时刻"
ISSUER = "BJ-AI-COMMITTEE"


@pytest.mark.parametrize("since", BEYOND_UTC)
async def test_audit_since_that_utc_cannot_express_is_refused_naming_since(
    app: FastAPI, client: httpx.AsyncClient, since: str
) -> None:
    admin = await admin_token(app, client)
    response = await client.get("/v1/audit", params={"since": since, "lang": "zh"}, headers=bearer(admin))
    assert_problem(response, 422, field="since", message=BEYOND_UTC_ZH)


@pytest.mark.parametrize("moment", BEYOND_UTC)
async def test_certificate_cursor_holding_a_time_utc_cannot_express_is_not_a_cursor(
    app: FastAPI, client: httpx.AsyncClient, moment: str
) -> None:
    await create_issuer(client, await admin_token(app, client))
    token = await issuer_token(app, client, ISSUER)
    for sequence in (1, 2):
        holder = {"name": "张三", "id_type": "resident_id", "id_number": resident_id(sequence=sequence)}
        await issued_certificate(client, token, holder=holder)
    first = await client.get("/v1/certificates", params={"limit": 1}, headers=bearer(token))
    cursor = first.json()["next_cursor"]
    _issued_at, cert_id, fingerprint = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps([moment, cert_id, fingerprint]).encode()).decode().rstrip("=")
    response = await client.get("/v1/certificates", params={"cursor": forged}, headers=bearer(token))
    assert_problem(response, 422, field="cursor", message="is not a cursor this service returned")


@pytest.mark.parametrize("moment", BEYOND_UTC)
async def test_key_compromised_from_a_moment_utc_cannot_express_is_refused_and_marks_nothing(
    app: FastAPI, client: httpx.AsyncClient, moment: str
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    kid = (await issued_certificate(client, await issuer_token(app, client, ISSUER)))["kid"]
    response = await leaves_no_trace(
        app,
        client.post(
            f"/v1/issuers/{ISSUER}/keys/{kid}/compromise?lang=zh",
            json={"compromised_from": moment},
            headers=bearer(admin),
        ),
    )
    assert_problem(response, 422, field="compromised_from", message=BEYOND_UTC_ZH)


async def test_issuers_cursor_holding_a_nul_is_not_a_cursor(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    nul = base64.urlsafe_b64encode(b'["\\u0000"]').decode().rstrip("=")
    assert nul == "WyJcdTAwMDAiXQ"
    response = await client.get("/v1/issuers", params={"cursor": nul}, headers=bearer(admin))
    assert_problem(response, 422, field="cursor", message="is not a cursor this service returned")


def _set(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {**body, **changes}


# Every refusal of the rules of issuance (registry/certificates/awards.py), and its Chinese: (id, field, words, award).
REFUSALS_IN_CHINESE = [
    ("future", "awarded_on", "不得晚于今天", _set(awarded_on=days_from_today(30))),
    ("before-1949", "awarded_on", "不得早于 1949-10-01", _set(awarded_on="1949-09-30")),
    ("valid-until-first", "valid_until", "必须晚于颁发日期 awarded_on", _set(valid_until="2026-06-29")),
    ("unknown-entry", "catalogue_code", "没有职称类目录条目 ENG-NOPE", _set(catalogue_code="ENG-NOPE")),
    ("other-type", "catalogue_code", "没有职业技能等级类目录条目 ENG-EAI", _set(cert_type="skill", level="level_3")),
    ("off-the-ladder", "level", "grandmaster 不是职称的等级", _set(level="grandmaster")),
    ("level-entry-lacks", "level", "目录条目 ENG-EAI 不颁发 clerk 等级", _set(level="clerk")),
    ("entry-not-in-force", "awarded_on", "目录条目 ENG-EAI 在该日期未生效", _set(awarded_on="2025-06-30")),
]


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        flat = {**row, **{f"holder_{key}": value for key, value in row["holder"].items()}}
        writer.writerow(["" if flat.get(column) is None else str(flat[column]) for column in CSV_COLUMNS])
    return buffer.getvalue().encode()


def _message(problem: dict[str, Any], field: str, *, row: int | None = None) -> str:
    [message] = [e["message"] for e in problem["errors"] if e["field"] == field and e.get("row") == row]
    return str(message)


@pytest.mark.parametrize(
    ("field", "chinese", "change"),
    [case[1:] for case in REFUSALS_IN_CHINESE],
    ids=[case[0] for case in REFUSALS_IN_CHINESE],
)
async def test_a_refused_award_is_said_in_chinese_by_single_and_batch_issuance(
    app: FastAPI,
    client: httpx.AsyncClient,
    field: str,
    chinese: str,
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    await create_issuer(client, await admin_token(app, client))
    token = await issuer_token(app, client, ISSUER)
    bad = change(certificate_body(holder={"name": "张三", "id_type": "resident_id", "id_number": resident_id()}))
    good = certificate_body(holder={"name": "李四", "id_type": "resident_id", "id_number": resident_id(sequence=7)})

    single = await client.post("/v1/certificates?lang=zh", json=bad, headers=bearer(token))
    assert _message(assert_problem(single, 422, field=field), field) == chinese
    for media_type, content in (
        ("application/json", json.dumps({"certificates": [good, bad]}).encode()),
        ("text/csv", _csv([good, bad])),
    ):
        headers = {**bearer(token), "Content-Type": media_type, "Idempotency-Key": f"zh-{media_type}"}
        batch = await client.post("/v1/certificate-batches?lang=zh", content=content, headers=headers)
        assert _message(assert_problem(batch, 422, slug="batch-rejected"), field, row=2) == chinese
