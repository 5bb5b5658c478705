"""Batch issuance after an evaluation round: all or nothing, every bad row named, safe to retry."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from registry.db import transaction
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_issuer,
    issued_certificate,
    issuer_token,
    ready_issuer,
    resident_id,
)


async def _count(app: FastAPI, table: str) -> int:
    async with transaction(app.state.sessions) as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


def _rows(count: int) -> list[dict[str, Any]]:
    return [
        certificate_body(holder={"name": f"学员{i}", "id_type": "resident_id", "id_number": resident_id(sequence=i)})
        for i in range(count)
    ]


async def test_a_batch_is_issued_in_row_order_and_every_certificate_verifies(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    rows = _rows(25)
    response = await client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "round-1"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 25
    assert [c["row"] for c in body["certificates"]] == list(range(1, 26))
    for row, issued in zip(rows, body["certificates"], strict=True):
        answer = await client.post(
            "/v1/verify", json={"number": issued["number"], "holder_name": row["holder"]["name"]}
        )
        assert answer.status_code == 200
        assert answer.json()["result"] == "valid"
        assert answer.json()["signature_valid"] is True
    assert await _count(app, "certificates") == 25
    assert await _count(app, "audit_log") >= 25


async def test_one_bad_row_rejects_the_batch_and_every_bad_row_is_listed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    rows = _rows(6)
    rows[1]["holder"]["id_number"] = rows[1]["holder"]["id_number"][:-1] + (
        "0" if rows[1]["holder"]["id_number"][-1] != "0" else "1"
    )
    rows[3]["level"] = "clerk"
    rows[4]["surprise"] = True
    rows[5]["holder"] = dict(rows[0]["holder"])  # same person, entry and level as row 1
    response = await client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "bad"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert {(e["row"], e["field"]) for e in errors} == {
        (2, "holder.id_number"),
        (4, "level"),
        (5, "surprise"),
        (6, "holder.id_number"),
    }
    assert rows[1]["holder"]["id_number"] not in response.text
    assert await _count(app, "certificates") == 0
    assert await _count(app, "holders") == 0


async def test_an_item_that_is_not_an_object_is_a_bad_row_listed_with_the_others(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Before, the first item that was not an object failed the whole body (validation-error, ``certificates.1``,
    counted from 0) and the other rows went unchecked."""
    issuer = await ready_issuer(app, client)
    rows: list[Any] = _rows(6)
    rows[1], rows[2], rows[4] = 5, None, "学员"
    rows[3]["level"] = "clerk"
    response = await client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "items"}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/batch-rejected")
    assert {(e["row"], e["field"]) for e in problem["errors"]} == {(2, "row"), (3, "row"), (4, "level"), (5, "row")}
    assert {e["message"] for e in problem["errors"] if e["field"] == "row"} == {"must be an object"}
    assert await _count(app, "certificates") == 0


async def test_csv_batch_and_dry_run(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "cert_type",
            "catalogue_code",
            "level",
            "holder_name",
            "holder_id_type",
            "holder_id_number",
            "awarded_on",
            "valid_until",
            "evaluation_batch",
        ]
    )
    for i in range(3):
        writer.writerow(
            [
                "title",
                "ENG-BCI",
                "senior",
                f"脑机{i}",
                "resident_id",
                resident_id(sequence=500 + i),
                "2026-07-01",
                "",
                "2026-BCI",
            ]
        )
    headers = {**bearer(issuer), "Idempotency-Key": "csv-1", "Content-Type": "text/csv"}
    dry = await client.post("/v1/certificate-batches?dry_run=true", content=buffer.getvalue(), headers=headers)
    assert dry.status_code == 200
    assert dry.json() == {"dry_run": True, "valid": True, "count": 3}
    assert await _count(app, "certificates") == 0
    issued = await client.post("/v1/certificate-batches", content=buffer.getvalue(), headers=headers)
    assert issued.status_code == 201, issued.text
    assert issued.json()["count"] == 3


async def test_retrying_a_batch_returns_the_same_numbers_and_issues_nothing_twice(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    rows = _rows(10)
    headers = {**bearer(issuer), "Idempotency-Key": "round-2"}
    first = await client.post("/v1/certificate-batches", json={"certificates": rows}, headers=headers)
    again = await client.post("/v1/certificate-batches", json={"certificates": rows}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post("/v1/certificate-batches", json={"certificates": rows[:5]}, headers=headers)
    assert other.status_code == 422
    assert await _count(app, "certificates") == 10


async def test_a_holder_who_already_holds_the_award_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    rows = _rows(2)
    headers = {**bearer(issuer), "Idempotency-Key": "a"}
    assert (
        await client.post("/v1/certificate-batches", json={"certificates": rows[:1]}, headers=headers)
    ).status_code == 201
    response = await client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "b"}
    )
    assert response.status_code == 422
    assert [(e["row"], e["field"]) for e in response.json()["errors"]] == [(1, "holder.id_number")]


async def test_batches_need_a_key_and_at_most_ten_thousand_rows(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    no_key = await client.post("/v1/certificate-batches", json={"certificates": _rows(1)}, headers=bearer(issuer))
    assert no_key.status_code == 422
    assert no_key.json()["errors"][0]["field"] == "Idempotency-Key"
    too_many = await client.post(
        "/v1/certificate-batches",
        json={"certificates": [{"x": 1}] * 10_001},
        headers={**bearer(issuer), "Idempotency-Key": "big"},
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "certificates"
    xml = await client.post(
        "/v1/certificate-batches",
        content=b"<a/>",
        headers={**bearer(issuer), "Idempotency-Key": "x", "Content-Type": "application/xml"},
    )
    assert xml.status_code == 415


async def test_an_anonymous_upload_is_refused_before_its_body_is_read(client: httpx.AsyncClient) -> None:
    sent = 0

    async def upload() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b"cert_type\n"
        for _ in range(1_000):  # 4 MB, in 4 kB pieces, counted as the server asks for them
            sent += 4_096
            yield b"a\n" * 2_048

    response = await client.post(
        "/v1/certificate-batches", content=upload(), headers={"Content-Type": "text/csv", "Idempotency-Key": "k"}
    )
    assert response.status_code == 401
    assert sent <= 4_096, f"{sent} bytes of an anonymous upload were read before it was refused"


async def test_a_batch_does_not_reveal_another_bodys_certificates(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    await create_issuer(client, admin, code="BJ-SECOND-BODY")
    other = await issuer_token(app, client, "BJ-SECOND-BODY")
    number = resident_id()
    holder = {"name": "陈十三", "id_type": "resident_id", "id_number": number}
    first = await issued_certificate(client, issuer, holder=holder)
    probe = {"certificates": [certificate_body(holder=holder)]}
    headers = {**bearer(other), "Idempotency-Key": "probe"}
    dry_run = await client.post("/v1/certificate-batches?dry_run=true", json=probe, headers=headers)
    # Refusing would tell the second body that someone else awarded this holder the same title: it is not refused.
    assert dry_run.status_code == 200, dry_run.text
    issued = await client.post("/v1/certificate-batches", json=probe, headers=headers)
    assert issued.status_code == 201, issued.text
    assert issued.json()["certificates"][0]["number"] != first["number"]


async def test_batch_indexes_do_not_follow_row_order(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    rows = [
        certificate_body(holder={"name": f"序{i}", "id_type": "resident_id", "id_number": resident_id(sequence=i)})
        for i in range(60)
    ]
    response = await client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "order"}
    )
    assert response.status_code == 201
    async with transaction(app.state.sessions) as session:
        result = await session.execute(text("SELECT number, status_index FROM certificates"))
        by_number: dict[str, int] = {number: index for number, index in result}
    indexes = [by_number[c["number"]] for c in response.json()["certificates"]]
    ascending = sum(1 for a, b in itertools.pairwise(indexes) if a < b)
    assert 10 < ascending < 50  # about half, as for a random order; sorted order would give 59


async def test_status_list_indexes_are_spread_over_the_whole_list(app: FastAPI, client: httpx.AsyncClient) -> None:
    """An index must say nothing about a holder or about when the certificate was issued: indexes are drawn uniformly
    over the list, not the low residues of some table size, and not the low half of the list."""
    issuer = await ready_issuer(app, client)
    rows = [
        certificate_body(holder={"name": f"散{i}", "id_type": "resident_id", "id_number": resident_id(sequence=i)})
        for i in range(800)
    ]
    response = await client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "spread"}
    )
    assert response.status_code == 201, response.text
    async with transaction(app.state.sessions) as session:
        indexes = list((await session.execute(text("SELECT status_index FROM certificates"))).scalars())
    assert len(set(indexes)) == 800
    # For uniform draws, the lower half of every power-of-two residue class holds half of the indexes (standard
    # deviation 0.018 at 800): far outside [0.4, 0.6] means a bias, such as a hash table's iteration order.
    for half in (2**k for k in range(17)):
        share = sum(1 for i in indexes if i % (2 * half) < half) / len(indexes)
        assert 0.4 < share < 0.6, (half, share)
