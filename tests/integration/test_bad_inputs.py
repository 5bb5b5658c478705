"""Bad inputs are refused precisely and leave no trace.

Bad awards (identity numbers, catalogue, levels, dates, filed scope, duplicates) are one table sent through every
way of issuing: tests/integration/test_bad_awards.py. Here, everything else. Every test sends one bad request and
checks four things: the status code; an RFC 9457 problem+json body naming the failing field; that a rejected identity
number is never echoed back; and that nothing at all was written (row counts of every table a request can touch are
the same before and after).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.certificates import numbering
from tests.checks import assert_problem, leaves_no_trace, row_counts
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_client,
    create_issuer,
    credit_code,
    issued_certificate,
    issuer_body,
    issuer_token,
    resident_id,
    token_for,
)

ISSUER_CODE = "BJ-AI-COMMITTEE"


async def issue_rejected(
    app: FastAPI, client: httpx.AsyncClient, token: str, body: Any, **headers: str
) -> httpx.Response:
    return await leaves_no_trace(app, client.post("/v1/certificates", json=body, headers={**bearer(token), **headers}))


def holder(id_number: str, *, id_type: str = "resident_id", name: str = "张三") -> dict[str, str]:
    return {"name": name, "id_type": id_type, "id_number": id_number}


def catalogue_entry(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "ENG-QUANTUM",
        "cert_type": "title",
        "series_zh": "工程技术",
        "name_zh": "量子信息",
        "name_en": "Quantum information",
        "levels": ["intermediate", "associate_senior", "senior"],
        "effective_from": "2026-01-01",
    }
    body.update(overrides)
    return body


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> str:
    return await admin_token(app, client)


@pytest.fixture
async def issuer(app: FastAPI, client: httpx.AsyncClient, admin: str) -> str:
    """A token of BJ-AI-COMMITTEE, filed for ENG-AI/IC/EAI/BCI titles at intermediate and above since 2020."""
    await create_issuer(client, admin)
    return await issuer_token(app, client, ISSUER_CODE)


# --- shape of the body ---------------------------------------------------------------------------------------------


async def test_a_two_megabyte_body_is_refused_as_too_large(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(evaluation_batch="B" * (2 << 20), holder=holder(number))
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 413, secret=number)


async def test_a_two_megabyte_body_sent_in_chunks_without_content_length_is_refused_as_too_large(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    payload = json.dumps(certificate_body(evaluation_batch="B" * (2 << 20), holder=holder(number))).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 64 << 10):
            yield payload[start : start + (64 << 10)]

    headers = {**bearer(issuer), "Content-Type": "application/json"}
    response = await leaves_no_trace(app, client.post("/v1/certificates", content=chunks(), headers=headers))
    assert "content-length" not in {name.lower() for name in response.request.headers}
    assert_problem(response, 413, secret=number)


async def test_issuing_with_a_malformed_json_body_is_rejected_without_echoing_it(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    truncated = json.dumps(certificate_body(holder=holder(number)))[:-20]
    headers = {**bearer(issuer), "Content-Type": "application/json"}
    response = await leaves_no_trace(app, client.post("/v1/certificates", content=truncated, headers=headers))
    problem = assert_problem(response, 422, secret=number)
    assert problem["errors"], problem
    # The failure is in the body as a whole, not in a field called "123" (a character offset).
    assert all(error["field"] == "body" for error in problem["errors"]), problem["errors"]


async def test_a_malformed_body_to_change_a_certificate_tells_nothing_about_the_certificate(
    app: FastAPI, client: httpx.AsyncClient, admin: str, issuer: str
) -> None:
    """FastAPI reads a JSON body before it authenticates the caller, so malformed JSON is a 422 even for a caller
    who would get 401 or 404. It must then be the same 422 whatever the number and whoever asks: it reveals nothing."""
    await create_issuer(client, admin, code="BJ-SECOND-BODY")
    other = await issuer_token(app, client, "BJ-SECOND-BODY")
    certificate = await issued_certificate(client, issuer)
    answers = set()
    for number in (certificate["number"], "BJT2026AAAAAAAAA"):
        for headers in (bearer(issuer), bearer(other), {}):
            response = await client.post(
                f"/v1/certificates/{number}/revoke",
                content=b'{"reason": "x"',
                headers={**headers, "Content-Type": "application/json"},
            )
            problem = assert_problem(response, 422)
            answers.add((response.status_code, problem["detail"], json.dumps(problem["errors"])))
    assert len(answers) == 1, answers


async def test_issuing_with_a_json_array_instead_of_an_object_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    response = await issue_rejected(app, client, issuer, [certificate_body(holder=holder(number))])
    assert_problem(response, 422, secret=number)


async def test_an_idempotency_key_with_control_characters_is_rejected_naming_the_header(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(holder=holder(number))
    response = await issue_rejected(app, client, issuer, body, **{"Idempotency-Key": "key with spaces"})
    assert_problem(response, 422, field="Idempotency-Key", secret=number)


async def test_listing_with_a_forged_cursor_is_rejected_naming_cursor(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    response = await leaves_no_trace(
        app, client.get("/v1/certificates", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=bearer(issuer))
    )
    assert_problem(response, 422, field="cursor")


# --- evaluation bodies ---------------------------------------------------------------------------------------------


async def test_registering_a_body_with_a_wrong_credit_code_check_character_is_rejected_naming_credit_code(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    good = credit_code()
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    bad = good[:-1] + next(char for char in alphabet if char != good[-1])
    response = await leaves_no_trace(
        app, client.post("/v1/issuers", json=issuer_body(credit_code=bad), headers=bearer(admin))
    )
    assert_problem(response, 422, field="credit_code", message="check character")


async def test_registering_a_body_under_a_code_already_taken_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    await create_issuer(client, admin, code="BJ-FIRST")
    response = await leaves_no_trace(
        app, client.post("/v1/issuers", json=issuer_body("BJ-FIRST"), headers=bearer(admin))
    )
    assert_problem(response, 409, field="code")


async def test_registering_a_body_with_a_credit_code_already_taken_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    first = await create_issuer(client, admin, code="BJ-FIRST")
    body = issuer_body("BJ-SECOND", credit_code=first["credit_code"])
    response = await leaves_no_trace(app, client.post("/v1/issuers", json=body, headers=bearer(admin)))
    assert_problem(response, 409, field="credit_code")


async def test_registering_a_body_whose_scope_names_an_unknown_catalogue_code_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    body = issuer_body(catalogue_codes=("ENG-AI", "ENG-NOPE"))
    response = await leaves_no_trace(app, client.post("/v1/issuers", json=body, headers=bearer(admin)))
    assert_problem(response, 422, field="scopes.0.catalogue_codes", message="ENG-NOPE")


async def test_registering_a_title_scope_with_a_skill_level_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    body = issuer_body(levels=("intermediate", "level_3"))
    response = await leaves_no_trace(app, client.post("/v1/issuers", json=body, headers=bearer(admin)))
    assert_problem(response, 422, field="scopes.0.levels", message="level_3")


async def test_registering_a_title_scope_naming_a_skill_catalogue_entry_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    body = issuer_body(catalogue_codes=("ENG-AI", "SK-4-01-02-01"))
    response = await leaves_no_trace(app, client.post("/v1/issuers", json=body, headers=bearer(admin)))
    assert_problem(response, 422, field="scopes.0.catalogue_codes")


async def test_registering_a_scope_that_ends_before_it_starts_is_rejected_naming_valid_until(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    body = issuer_body(valid_from="2026-01-01", valid_until="2025-12-31")
    response = await leaves_no_trace(app, client.post("/v1/issuers", json=body, headers=bearer(admin)))
    assert_problem(response, 422, field="scopes.0.valid_until")


async def test_registering_a_body_with_a_lower_case_code_is_rejected_naming_code(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    response = await leaves_no_trace(
        app, client.post("/v1/issuers", json=issuer_body("bj-lower"), headers=bearer(admin))
    )
    assert_problem(response, 422, field="code")


# --- API clients ---------------------------------------------------------------------------------------------------


async def test_creating_an_issuer_client_without_issuer_code_is_rejected_naming_issuer_code(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    body = {"role": "issuer", "name": "评审办"}
    response = await leaves_no_trace(app, client.post("/v1/clients", json=body, headers=bearer(admin)))
    assert_problem(response, 422, field="issuer_code")


async def test_creating_an_issuer_client_for_an_unknown_body_is_rejected_naming_issuer_code(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    body = {"role": "issuer", "name": "评审办", "issuer_code": "BJ-NO-SUCH-BODY"}
    response = await leaves_no_trace(app, client.post("/v1/clients", json=body, headers=bearer(admin)))
    assert_problem(response, 422, field="issuer_code")


async def test_creating_a_partner_client_without_region_is_rejected_naming_region(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    body = {"role": "partner", "name": "天津市人社局"}
    response = await leaves_no_trace(app, client.post("/v1/clients", json=body, headers=bearer(admin)))
    assert_problem(response, 422, field="region")


# --- catalogue -----------------------------------------------------------------------------------------------------


async def test_adding_a_catalogue_entry_under_an_existing_code_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    body = catalogue_entry(code="ENG-AI")
    response = await leaves_no_trace(app, client.post("/v1/catalogue", json=body, headers=bearer(admin)))
    assert_problem(response, 409)


async def test_adding_a_title_entry_without_series_zh_is_rejected_naming_series_zh(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    body = catalogue_entry()
    del body["series_zh"]
    response = await leaves_no_trace(app, client.post("/v1/catalogue", json=body, headers=bearer(admin)))
    assert_problem(response, 422, field="series_zh")


async def test_adding_a_catalogue_entry_with_an_unknown_level_is_rejected_naming_levels(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    body = catalogue_entry(levels=["intermediate", "grandmaster"])
    response = await leaves_no_trace(app, client.post("/v1/catalogue", json=body, headers=bearer(admin)))
    assert_problem(response, 422, field="levels", message="grandmaster")


# --- public verification by number ---------------------------------------------------------------------------------


async def test_verifying_a_number_with_a_wrong_check_character_is_rejected_naming_number(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    certificate = await issued_certificate(client, issuer)
    number: str = certificate["number"]
    typo = number[:-1] + next(char for char in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" if char != number[-1])
    body = {"number": typo, "holder_name": "张三"}
    response = await leaves_no_trace(app, client.post("/v1/verify", json=body))
    assert_problem(response, 422, field="number", message="check character")


async def test_verifying_with_a_wrong_name_answers_exactly_like_an_unknown_number(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    certificate = await issued_certificate(client, issuer)
    unknown = numbering.new_number(region="BJ", cert_type="title", year=2026)
    assert unknown != certificate["number"]

    wrong_name = await leaves_no_trace(
        app, client.post("/v1/verify", json={"number": certificate["number"], "holder_name": "王五"})
    )
    missing = await leaves_no_trace(app, client.post("/v1/verify", json={"number": unknown, "holder_name": "张三"}))

    first = assert_problem(wrong_name, 404)
    second = assert_problem(missing, 404)
    assert first == second
    assert wrong_name.content == missing.content
    assert certificate["number"] not in wrong_name.text


async def test_verifying_with_a_blank_holder_name_is_rejected_naming_holder_name(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    certificate = await issued_certificate(client, issuer)
    body = {"number": certificate["number"], "holder_name": "  "}
    response = await leaves_no_trace(app, client.post("/v1/verify", json=body))
    assert_problem(response, 422, field="holder_name")


# --- idempotency ---------------------------------------------------------------------------------------------------


async def test_retrying_with_the_same_idempotency_key_and_body_returns_the_same_certificate_once(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    body = certificate_body()
    headers = {**bearer(issuer), "Idempotency-Key": "batch-2026-06-30-row-1"}
    before = await row_counts(app)

    first = await client.post("/v1/certificates", json=body, headers=headers)
    assert first.status_code == 201, first.text
    after_first = await row_counts(app)
    second = await client.post("/v1/certificates", json=body, headers=headers)
    assert second.status_code == 201, second.text

    assert second.json()["number"] == first.json()["number"]
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert after_first["certificates"] == before["certificates"] + 1
    assert await row_counts(app) == after_first, "the replay wrote something"


async def test_reusing_an_idempotency_key_with_a_different_body_is_rejected_and_issues_nothing(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    headers = {"Idempotency-Key": "batch-2026-06-30-row-1"}
    first = await client.post("/v1/certificates", json=certificate_body(), headers={**bearer(issuer), **headers})
    assert first.status_code == 201, first.text
    assert (await row_counts(app))["certificates"] == 1

    other_number = resident_id()
    other = certificate_body(holder=holder(other_number, name="李四"))
    response = await issue_rejected(app, client, issuer, other, **headers)
    assert_problem(response, 422, slug="idempotency-key-reused", field="Idempotency-Key", secret=other_number)
    assert first.json()["number"] not in response.text
    assert (await row_counts(app))["certificates"] == 1


async def test_the_same_idempotency_key_from_another_client_is_a_separate_request(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    other_client = await token_for(client, *await create_client(app, role=Role.issuer, issuer_code=ISSUER_CODE))
    headers = {"Idempotency-Key": "shared-looking-key"}
    first = await client.post("/v1/certificates", json=certificate_body(), headers={**bearer(issuer), **headers})
    second = await client.post("/v1/certificates", json=certificate_body(), headers={**bearer(other_client), **headers})
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert first.json()["number"] != second.json()["number"]
    assert (await row_counts(app))["certificates"] == 2
