"""Bad inputs are refused precisely and leave no trace.

Every test sends one bad request and checks four things: the status code; an RFC 9457 problem+json body naming the
failing field; that a rejected identity number is never echoed back; and that nothing at all was written (row counts of
every table a request can touch are the same before and after).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.auth.scopes import Role
from registry.certificates import numbering
from registry.db import transaction
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
    with_wrong_check_char,
)

PROBLEM_JSON = "application/problem+json"
ISSUER_CODE = "BJ-AI-COMMITTEE"

# Literal statements (no string building): every table a rejected request could leave a row in.
_COUNT_STATEMENTS = {
    "certificates": "SELECT count(*) FROM certificates",
    "holders": "SELECT count(*) FROM holders",
    "issuers": "SELECT count(*) FROM issuers",
    "issuer_filed_scopes": "SELECT count(*) FROM issuer_filed_scopes",
    "api_clients": "SELECT count(*) FROM api_clients",
    "audit_log": "SELECT count(*) FROM audit_log",
    "idempotency_records": "SELECT count(*) FROM idempotency_records",
    "catalogue_entries": "SELECT count(*) FROM catalogue_entries",
    "signing_keys": "SELECT count(*) FROM signing_keys",
}


# --- helpers -------------------------------------------------------------------------------------------------------


async def row_counts(app: FastAPI) -> dict[str, int]:
    async with transaction(app.state.sessions) as session:
        return {
            table: int((await session.execute(text(statement))).scalar_one())
            for table, statement in _COUNT_STATEMENTS.items()
        }


async def leaves_no_trace(app: FastAPI, request: Awaitable[httpx.Response]) -> httpx.Response:
    """Send ``request`` (a not-yet-started coroutine) and assert that no table gained or lost a row."""
    before = await row_counts(app)
    response = await request
    after = await row_counts(app)
    assert after == before, f"a rejected request wrote to the database: {before} -> {after}"
    return response


def assert_problem(
    response: httpx.Response,
    status: int,
    *,
    field: str | None = None,
    message: str | None = None,
    slug: str | None = None,
    secret: str | None = None,
) -> dict[str, Any]:
    """An RFC 9457 problem with ``status``; for validation errors ``field`` must be named in ``errors``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    for member in ("type", "title", "status", "detail"):
        assert member in body, f"problem body lacks {member!r}: {body}"
        assert body[member] not in (None, ""), f"problem member {member!r} is empty: {body}"
    assert body["status"] == status
    if slug is not None:
        assert body["type"].endswith("/" + slug), body["type"]
    if field is not None:
        errors = body.get("errors")
        assert isinstance(errors, list), f"no errors list: {body}"
        named = {error["field"]: error["message"] for error in errors}
        assert field in named, f"{field!r} not named in {errors}"
        if message is not None:
            assert message in named[field], named[field]
    if secret is not None:
        assert secret not in response.text, "the rejected identity number was echoed back"
    return body


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


# --- identity numbers ----------------------------------------------------------------------------------------------


async def test_issuing_with_wrong_id_check_character_is_rejected_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = with_wrong_check_char(resident_id())
    response = await issue_rejected(app, client, issuer, certificate_body(holder=holder(number)))
    assert_problem(response, 422, field="holder.id_number", message="check character", secret=number)


async def test_issuing_for_an_impossible_birth_date_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id(birth="19990230")  # right check character, but 30 February never happens
    response = await issue_rejected(app, client, issuer, certificate_body(holder=holder(number)))
    assert_problem(response, 422, field="holder.id_number", message="not a real date", secret=number)


async def test_issuing_for_a_birth_date_in_the_future_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id(birth=(date.today() + timedelta(days=400)).strftime("%Y%m%d"))
    response = await issue_rejected(app, client, issuer, certificate_body(holder=holder(number)))
    assert_problem(response, 422, field="holder.id_number", message="future", secret=number)


async def test_issuing_for_an_id_with_an_unknown_region_prefix_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id(region="990105")  # 99 is no province
    response = await issue_rejected(app, client, issuer, certificate_body(holder=holder(number)))
    assert_problem(response, 422, field="holder.id_number", message="region", secret=number)


async def test_issuing_for_an_id_with_no_prefecture_part_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id(region="110005")  # province 11 exists, prefecture 00 does not
    response = await issue_rejected(app, client, issuer, certificate_body(holder=holder(number)))
    assert_problem(response, 422, field="holder.id_number", secret=number)


async def test_issuing_for_a_legacy_15_digit_id_is_rejected_asking_for_the_18_digit_number(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = "110105880712123"
    response = await issue_rejected(app, client, issuer, certificate_body(holder=holder(number)))
    assert_problem(response, 422, field="holder.id_number", message="18-digit", secret=number)


async def test_issuing_for_an_id_written_in_full_width_digits_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    ascii_number = resident_id()
    number = "".join(chr(ord(char) + 0xFEE0) for char in ascii_number)  # "１１０１…": looks right, is not
    response = await issue_rejected(app, client, issuer, certificate_body(holder=holder(number)))
    assert_problem(response, 422, field="holder.id_number", secret=number)
    assert ascii_number not in response.text


async def test_issuing_for_a_passport_number_of_bad_format_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = "E12#4567"
    body = certificate_body(holder=holder(number, id_type="passport"))
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 422, field="holder.id_number", message="passport", secret=number)


async def test_issuing_for_an_unknown_id_type_is_rejected_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(holder=holder(number, id_type="library_card"))
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 422, field="holder.id_type", secret=number)


# --- the filed scope -----------------------------------------------------------------------------------------------


async def test_issuing_a_level_outside_the_filed_scope_is_forbidden(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(level="assistant", holder=holder(number))  # on ENG-EAI's ladder, not in the filing
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 403, slug="outside-filed-scope", secret=number)


async def test_issuing_a_speciality_outside_the_filed_scope_is_forbidden(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(catalogue_code="ENG-ROBOT", holder=holder(number))  # a real title, not filed for
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 403, slug="outside-filed-scope", secret=number)


async def test_issuing_with_an_award_date_before_the_filing_took_effect_is_forbidden(
    app: FastAPI, client: httpx.AsyncClient, admin: str
) -> None:
    await create_issuer(client, admin, code="BJ-LATE-FILING", valid_from="2026-03-01")
    token = await issuer_token(app, client, "BJ-LATE-FILING")
    number = resident_id()
    # ENG-EAI is in force from 2026-01-01, so only the filing's date can be what is wrong.
    body = certificate_body(awarded_on="2026-02-15", holder=holder(number))
    response = await issue_rejected(app, client, token, body)
    assert_problem(response, 403, slug="outside-filed-scope", secret=number)


# --- catalogue and ladder ------------------------------------------------------------------------------------------


async def test_issuing_a_level_that_is_not_on_the_ladder_is_rejected_naming_level(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    response = await issue_rejected(app, client, issuer, certificate_body(level="grandmaster", holder=holder(number)))
    assert_problem(response, 422, field="level", secret=number)


async def test_issuing_a_skill_level_on_a_title_is_rejected_naming_level(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    response = await issue_rejected(app, client, issuer, certificate_body(level="level_3", holder=holder(number)))
    assert_problem(response, 422, field="level", secret=number)


async def test_issuing_with_cert_type_not_matching_the_catalogue_entry_is_rejected_naming_catalogue_code(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(cert_type="skill", catalogue_code="ENG-EAI", level="level_3", holder=holder(number))
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 422, field="catalogue_code", secret=number)


async def test_issuing_for_an_unknown_catalogue_code_is_rejected_naming_catalogue_code(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    response = await issue_rejected(
        app, client, issuer, certificate_body(catalogue_code="ENG-NOPE", holder=holder(number))
    )
    assert_problem(response, 422, field="catalogue_code", secret=number)


async def test_issuing_an_unknown_cert_type_is_rejected_naming_cert_type(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    response = await issue_rejected(app, client, issuer, certificate_body(cert_type="diploma", holder=holder(number)))
    assert_problem(response, 422, field="cert_type", secret=number)


async def test_issuing_before_the_catalogue_entry_was_in_force_is_rejected_naming_awarded_on(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    # The filing runs from 2020, but ENG-EAI itself only exists from 2026-01-01.
    body = certificate_body(awarded_on="2025-06-30", holder=holder(number))
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 422, field="awarded_on", secret=number)


# --- shape of the body ---------------------------------------------------------------------------------------------


async def test_issuing_with_an_unknown_top_level_field_is_rejected_naming_that_field(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(holder=holder(number), colour="red")
    response = await issue_rejected(app, client, issuer, body)
    problem = assert_problem(response, 422, field="colour", secret=number)
    assert {"field": "colour", "message": "unknown field"} in problem["errors"]


async def test_issuing_with_an_unknown_field_inside_holder_is_rejected_naming_the_nested_field(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(holder={**holder(number), "nickname": "小张"})
    response = await issue_rejected(app, client, issuer, body)
    problem = assert_problem(response, 422, field="holder.nickname", secret=number)
    assert {"field": "holder.nickname", "message": "unknown field"} in problem["errors"]


async def test_issuing_for_a_holder_name_of_65_characters_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(holder=holder(number, name="张" * 65))
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 422, field="holder.name", secret=number)


async def test_issuing_with_an_evaluation_batch_of_65_characters_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(evaluation_batch="B" * 65, holder=holder(number))
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 422, field="evaluation_batch", secret=number)


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


@pytest.mark.parametrize("name", ["", "   ", "\u3000\u3000"], ids=["empty", "spaces", "ideographic-spaces"])
async def test_issuing_for_a_blank_holder_name_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str, name: str
) -> None:
    number = resident_id()
    response = await issue_rejected(app, client, issuer, certificate_body(holder=holder(number, name=name)))
    assert_problem(response, 422, field="holder.name", secret=number)


@pytest.mark.parametrize(
    "name",
    ["张\x00三", "张\x07三", "张\n三", "张\u202e三", "张\u200b三", "张\ufeff三"],
    ids=["nul", "bell", "newline", "rtl-override", "zero-width-space", "bom"],
)
async def test_issuing_for_a_holder_name_with_control_characters_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, issuer: str, name: str
) -> None:
    number = resident_id()
    response = await issue_rejected(app, client, issuer, certificate_body(holder=holder(number, name=name)))
    assert_problem(response, 422, field="holder.name", message="control", secret=number)


async def test_issuing_with_valid_until_before_awarded_on_is_rejected_naming_valid_until(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(awarded_on="2026-06-30", valid_until="2026-06-01", holder=holder(number))
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 422, field="valid_until", secret=number)


async def test_issuing_with_an_award_date_in_the_future_is_rejected_naming_awarded_on(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    body = certificate_body(awarded_on=(date.today() + timedelta(days=30)).isoformat(), holder=holder(number))
    response = await issue_rejected(app, client, issuer, body)
    assert_problem(response, 422, field="awarded_on", message="future", secret=number)


async def test_issuing_with_an_impossible_award_date_is_rejected_naming_awarded_on(
    app: FastAPI, client: httpx.AsyncClient, issuer: str
) -> None:
    number = resident_id()
    response = await issue_rejected(
        app, client, issuer, certificate_body(awarded_on="2026-02-30", holder=holder(number))
    )
    assert_problem(response, 422, field="awarded_on", secret=number)


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
