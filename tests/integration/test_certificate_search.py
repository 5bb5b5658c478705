"""Finding certificates (GET /v1/certificates with filters) and exporting them (GET /v1/certificates/export.csv): an
evaluation body finds its own, the bureau finds every body's for an audited purpose, a holder only exactly."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.certificates import export
from registry.db import transaction
from tests.checks import assert_problem, leaves_no_trace
from tests.factories import (
    admin_token,
    bearer,
    create_issuer,
    issued_certificate,
    issuer_token,
    resident_id,
    with_wrong_check_char,
)
from tests.integration.lifecycle_support import CODE, OTHER, act

PURPOSE = "complaint 2026-118: checking the body's awards"


@dataclass(frozen=True, slots=True)
class Bodies:
    admin: str
    mine: str  # BJ-AI-COMMITTEE's issuer token
    other: str  # BJ-OTHER-COMMITTEE's issuer token


@pytest.fixture
async def bodies(app: FastAPI, client: httpx.AsyncClient) -> Bodies:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    await create_issuer(client, admin, code=OTHER)
    return Bodies(admin=admin, mine=await issuer_token(app, client, CODE), other=await issuer_token(app, client, OTHER))


def holder(name: str = "张三", id_number: str | None = None) -> dict[str, str]:
    return {"name": name, "id_type": "resident_id", "id_number": id_number or resident_id()}


async def listed(client: httpx.AsyncClient, token: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/certificates", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def numbers(client: httpx.AsyncClient, token: str, **params: Any) -> set[str]:
    return {certificate["number"] for certificate in (await listed(client, token, **params))["data"]}


async def audit_records(client: httpx.AsyncClient, admin: str, action: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit", params={"action": action}, headers=bearer(admin))
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["data"]
    return records


async def test_each_filter_narrows_a_bodys_list_to_the_matching_certificates(
    client: httpx.AsyncClient, bodies: Bodies
) -> None:
    ai = await issued_certificate(
        client,
        bodies.mine,
        catalogue_code="ENG-AI",
        level="intermediate",
        awarded_on="2025-03-01",
        evaluation_batch="2025-R1",
    )
    ic = await issued_certificate(
        client,
        bodies.mine,
        catalogue_code="ENG-IC",
        level="senior",
        awarded_on="2026-06-30",
        evaluation_batch="2026-R1",
    )
    eai = await issued_certificate(
        client,
        bodies.mine,
        catalogue_code="ENG-EAI",
        level="associate_senior",
        awarded_on="2026-01-15",
        evaluation_batch="2026-R1",
    )
    assert (await act(client, bodies.mine, eai["number"], "revoke")).status_code == 200
    ai_, ic_, eai_ = ai["number"], ic["number"], eai["number"]

    cases: list[tuple[dict[str, str], set[str]]] = [
        ({}, {ai_, ic_, eai_}),
        ({"status": "revoked"}, {eai_}),
        ({"status": "active"}, {ai_, ic_}),
        ({"catalogue_code": "ENG-AI"}, {ai_}),
        ({"level": "senior"}, {ic_}),
        ({"evaluation_batch": "2026-R1"}, {ic_, eai_}),
        ({"awarded_from": "2026-01-15"}, {ic_, eai_}),  # both ends inclusive
        ({"awarded_to": "2026-01-15"}, {ai_, eai_}),
        ({"awarded_from": "2026-01-15", "awarded_to": "2026-01-15"}, {eai_}),
        ({"evaluation_batch": "2026-R1", "status": "active"}, {ic_}),
        ({"catalogue_code": "ENG-AI", "evaluation_batch": "2026-R1"}, set()),
    ]
    for params, expected in cases:
        assert await numbers(client, bodies.mine, **params) == expected, params


async def test_a_holder_is_found_only_by_exact_name_and_identity_number(
    client: httpx.AsyncClient, bodies: Bodies
) -> None:
    id_number = resident_id()
    first = await issued_certificate(client, bodies.mine, holder=holder("张三", id_number), catalogue_code="ENG-AI")
    second = await issued_certificate(client, bodies.mine, holder=holder("张三", id_number), catalogue_code="ENG-IC")
    namesake = await issued_certificate(client, bodies.mine, holder=holder("张三"))
    query = {"holder_name": "张三", "holder_id_type": "resident_id"}

    assert await numbers(client, bodies.mine, **query, holder_id_number=id_number) == {
        first["number"],
        second["number"],
    }
    # Spaces in the number are not part of it, as at issuance.
    spaced = f"{id_number[:6]} {id_number[6:14]} {id_number[14:]}"
    assert len(await numbers(client, bodies.mine, **query, holder_id_number=spaced)) == 2
    # The same number under another name is not this holder; nor is a partial name.
    for name in ("张四", "张"):
        assert await numbers(client, bodies.mine, **{**query, "holder_name": name}, holder_id_number=id_number) == set()
    assert namesake["number"] not in await numbers(client, bodies.mine, **query, holder_id_number=id_number)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"holder_name": "张三"}, "holder_id_type"),
        ({"holder_id_type": "resident_id", "holder_id_number": "110105198807120011"}, "holder_name"),
        ({"holder_name": "张三", "holder_id_type": "resident_id"}, "holder_id_number"),
        ({"awarded_from": "2026-02-01", "awarded_to": "2026-01-31"}, "awarded_from"),
        ({"awarded_from": "30/06/2026"}, "awarded_from"),
        ({"status": "expired"}, "status"),
        ({"level": "Senior!"}, "level"),
        ({"catalogue_code": "eng ai"}, "catalogue_code"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
    ],
)
async def test_a_bad_filter_is_refused_naming_it(
    app: FastAPI, client: httpx.AsyncClient, bodies: Bodies, params: dict[str, str], field: str
) -> None:
    response = await leaves_no_trace(app, client.get("/v1/certificates", params=params, headers=bearer(bodies.mine)))
    assert_problem(response, 422, field=field)


async def test_an_invalid_holder_identity_number_is_refused_without_echoing_it(
    app: FastAPI, client: httpx.AsyncClient, bodies: Bodies
) -> None:
    wrong = with_wrong_check_char(resident_id())
    params = {"holder_name": "张三", "holder_id_type": "resident_id", "holder_id_number": wrong}
    response = await leaves_no_trace(app, client.get("/v1/certificates", params=params, headers=bearer(bodies.mine)))
    assert_problem(response, 422, field="holder_id_number", secret=wrong)


async def test_a_body_sees_only_its_own_certificates(client: httpx.AsyncClient, bodies: Bodies) -> None:
    mine = await issued_certificate(client, bodies.mine)
    theirs = await issued_certificate(client, bodies.other)

    assert await numbers(client, bodies.other) == {theirs["number"]}
    assert await numbers(client, bodies.other, issuer_code=OTHER) == {theirs["number"]}
    refused = await client.get("/v1/certificates", params={"issuer_code": CODE}, headers=bearer(bodies.other))
    assert_problem(refused, 403)
    assert mine["number"] not in refused.text
    exported = await client.get(
        "/v1/certificates/export.csv", params={"issuer_code": CODE}, headers=bearer(bodies.other)
    )
    assert_problem(exported, 403)


async def test_an_admin_must_say_why_they_read_bodies_certificates(
    app: FastAPI, client: httpx.AsyncClient, bodies: Bodies
) -> None:
    await issued_certificate(client, bodies.mine)
    for path in ("/v1/certificates", "/v1/certificates/export.csv"):
        response = await leaves_no_trace(app, client.get(path, headers=bearer(bodies.admin)))
        assert_problem(response, 422, field="purpose")


async def test_an_admin_with_a_purpose_sees_every_bodys_certificates_and_the_read_is_audited(
    client: httpx.AsyncClient, bodies: Bodies
) -> None:
    id_number = resident_id()
    mine = await issued_certificate(client, bodies.mine, holder=holder("王五", id_number))
    theirs = await issued_certificate(client, bodies.other)

    assert await numbers(client, bodies.admin, purpose=PURPOSE) == {mine["number"], theirs["number"]}
    assert await numbers(client, bodies.admin, purpose=PURPOSE, issuer_code=OTHER) == {theirs["number"]}
    by_holder = {"holder_name": "王五", "holder_id_type": "resident_id", "holder_id_number": id_number}
    assert await numbers(client, bodies.admin, purpose=PURPOSE, **by_holder) == {mine["number"]}

    records = await audit_records(client, bodies.admin, "certificate.listed")
    assert [record["purpose"] for record in records] == [PURPOSE] * 3
    assert [record["object_id"] for record in records] == ["*", OTHER, "*"]
    assert records[1]["details"] == {"filters": {"issuer_code": OTHER}, "returned": [theirs["number"]]}
    holder_filters = records[2]["details"]["filters"]
    assert holder_filters["holder"].startswith("holder:")
    assert id_number not in str(records)
    assert "王五" not in str(records)


async def test_a_body_reading_its_own_certificates_is_not_audited_as_a_bureau_read(
    client: httpx.AsyncClient, bodies: Bodies
) -> None:
    await issued_certificate(client, bodies.mine)
    await listed(client, bodies.mine, purpose="ignored for a body")
    assert await audit_records(client, bodies.admin, "certificate.listed") == []


async def test_a_cursor_is_refused_with_other_filters(client: httpx.AsyncClient, bodies: Bodies) -> None:
    for _ in range(3):
        await issued_certificate(client, bodies.mine, holder=holder())
    first = await listed(client, bodies.mine, status="active", limit=1)
    cursor = first["next_cursor"]
    assert cursor is not None

    same = await listed(client, bodies.mine, status="active", limit=1, cursor=cursor)
    assert same["data"][0]["number"] != first["data"][0]["number"]
    for other_filters in ({}, {"status": "revoked"}, {"status": "active", "level": "senior"}):
        response = await client.get(
            "/v1/certificates", params={**other_filters, "limit": 1, "cursor": cursor}, headers=bearer(bodies.mine)
        )
        assert_problem(response, 422, field="cursor")


async def test_paging_while_the_body_keeps_issuing_neither_repeats_nor_skips(
    client: httpx.AsyncClient, bodies: Bodies
) -> None:
    existing = {(await issued_certificate(client, bodies.mine, holder=holder()))["number"] for _ in range(5)}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, "evaluation_batch": "2026-BJ-AI-01"}
        page = await listed(client, bodies.mine, **params, **({"cursor": cursor} if cursor else {}))
        seen += [certificate["number"] for certificate in page["data"]]
        for _ in range(2):  # issued between page fetches
            await issued_certificate(client, bodies.mine, holder=holder())
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a certificate was listed twice"
    assert existing <= set(seen), "a certificate that existed before paging began was skipped"


def read_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.content.startswith("\ufeff".encode()), "no byte-order mark: Excel would garble Chinese names"
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_export_is_a_csv_attachment_with_masked_identity_numbers_and_neutralised_cells(
    client: httpx.AsyncClient, bodies: Bodies
) -> None:
    id_number = resident_id()
    formula = await issued_certificate(
        client, bodies.mine, holder=holder("=HYPERLINK(1)", id_number), evaluation_batch="-2026-R1"
    )
    plain = await issued_certificate(client, bodies.mine, holder=holder("李四"), catalogue_code="ENG-AI")
    await issued_certificate(client, bodies.other)

    response = await client.get("/v1/certificates/export.csv", headers=bearer(bodies.mine))

    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith(f'attachment; filename="certificates-{CODE}-')
    rows = read_csv(response)
    assert list(rows[0]) == list(export.COLUMNS)
    by_number = {row["number"]: row for row in rows}
    assert set(by_number) == {formula["number"], plain["number"]}
    assert by_number[formula["number"]]["holder_name"] == "'=HYPERLINK(1)"
    assert by_number[formula["number"]]["evaluation_batch"] == "'-2026-R1"
    assert by_number[formula["number"]]["holder_id_masked"] == formula["holder"]["id_masked"]
    assert by_number[plain["number"]]["holder_name"] == "李四"
    assert by_number[plain["number"]]["catalogue_code"] == "ENG-AI"
    assert by_number[plain["number"]]["status"] == "active"
    assert id_number not in response.text


async def test_export_streams_the_same_selection_as_the_list_across_pages(
    client: httpx.AsyncClient, bodies: Bodies, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "PAGE_SIZE", 2)
    active = {(await issued_certificate(client, bodies.mine, holder=holder()))["number"] for _ in range(5)}
    revoked = await issued_certificate(client, bodies.mine, holder=holder())
    assert (await act(client, bodies.mine, revoked["number"], "revoke")).status_code == 200

    response = await client.get("/v1/certificates/export.csv", params={"status": "active"}, headers=bearer(bodies.mine))

    exported = [row["number"] for row in read_csv(response)]
    assert sorted(exported) == sorted(active)
    assert exported == [c["number"] for c in (await listed(client, bodies.mine, status="active"))["data"]]


async def test_an_admins_export_covers_every_body_and_is_audited(client: httpx.AsyncClient, bodies: Bodies) -> None:
    mine = await issued_certificate(client, bodies.mine)
    theirs = await issued_certificate(client, bodies.other)

    response = await client.get(
        "/v1/certificates/export.csv", params={"purpose": PURPOSE}, headers=bearer(bodies.admin)
    )

    assert {row["issuer_code"] for row in read_csv(response)} == {CODE, OTHER}
    assert {row["number"] for row in read_csv(response)} == {mine["number"], theirs["number"]}
    assert 'filename="certificates-all-' in response.headers["content-disposition"]
    records = await audit_records(client, bodies.admin, "certificate.exported")
    assert [(record["purpose"], record["object_id"]) for record in records] == [(PURPOSE, "*")]


async def test_a_round_label_is_stored_and_found_with_its_white_space_collapsed(
    client: httpx.AsyncClient, bodies: Bodies
) -> None:
    """Before, " 2026  R2 " was stored as typed, and a search for "2026 R2" did not find it."""
    issued = await issued_certificate(client, bodies.mine, holder=holder(), evaluation_batch=" 2026\u3000 R2 ")
    assert issued["evaluation_batch"] == "2026 R2"
    for asked in ("2026 R2", "  2026   R2"):
        assert await numbers(client, bodies.mine, evaluation_batch=asked) == {issued["number"]}


async def test_a_label_stored_before_labels_were_collapsed_is_found_as_it_was_typed(
    app: FastAPI, client: httpx.AsyncClient, bodies: Bodies
) -> None:
    """A label is signed, so one stored as typed (before 4 December 2026) is never rewritten: it is found as typed."""
    issued = await issued_certificate(client, bodies.mine, holder=holder(), evaluation_batch="2026 OLD")
    async with transaction(app.state.sessions) as session:
        update = "UPDATE certificates SET evaluation_batch = '2026  OLD' WHERE number = :number"
        await session.execute(text(update), {"number": issued["number"]})
    assert await numbers(client, bodies.mine, evaluation_batch="2026  OLD") == {issued["number"]}
