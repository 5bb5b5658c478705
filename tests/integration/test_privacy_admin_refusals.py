"""An identity number an admin typed where a code or a level goes — pasted into the wrong box, or typed in groups — is
refused naming the field, never echoing the number whole: registering and amending an evaluation body's filing,
acting on a body or key by its code, writing recognition rules, adding catalogue entries, registering and finding API
clients (``errors.said_masked``, as certificate refusals already do). An ordinary code is still named as typed."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from tests.checks import assert_problem
from tests.factories import admin_token, bearer, create_issuer, days_from_today, issuer_body

NUMBER = "11010519491231002X"  # a valid resident ID number (GB 11643) that belongs to nobody
BIRTH = "19491231"  # in every form the number is typed in below, masked or not
# The number as typed into a catalogue code's box (letters, digits, hyphens), and as a level's (lower case, _).
CODES = [NUMBER, "110105-19491231-002X"]
LEVELS = [NUMBER.lower(), "110105_19491231_002x"]
PATHS = [NUMBER, "110105 19491231 002X"]  # as a code in a URL, where a space may be typed as well
REASON = {"reason": "按评审委员会决定"}


def _refused_without_it(response: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    """The problem names each field and says nothing of the number: neither whole nor in groups (its birth date)."""
    problem = assert_problem(response, status)
    named = {error["field"] for error in problem.get("errors", [])}
    assert set(fields) <= named, problem
    # The path the request was sent to (``instance``) is the caller's own URL, set by api.errors, not a refusal.
    said = json.dumps({key: value for key, value in problem.items() if key != "instance"}, ensure_ascii=False)
    assert NUMBER not in said.upper(), said
    assert BIRTH not in said, said
    return problem


@pytest.mark.parametrize("typed", range(2))
async def test_a_body_filed_for_an_identity_number_as_a_code_or_a_level_is_refused_without_it(
    app: FastAPI, client: httpx.AsyncClient, typed: int
) -> None:
    admin = await admin_token(app, client)
    body = issuer_body(catalogue_codes=("ENG-AI", CODES[typed]), levels=("senior", LEVELS[typed]))
    refused = await client.post("/v1/issuers", json=body, headers=bearer(admin))
    problem = _refused_without_it(refused, 422, "scopes.0.catalogue_codes", "scopes.0.levels")
    assert len(problem["errors"]) == 2, problem

    await create_issuer(client, admin)
    amendment = {
        "cert_type": "title",
        "catalogue_codes": [CODES[typed]],
        "levels": [LEVELS[typed]],
        "effective_from": days_from_today(30),
        "basis": "京人社备〔2026〕7号",
    }
    refused = await client.post("/v1/issuers/BJ-AI-COMMITTEE/scopes", json=amendment, headers=bearer(admin))
    _refused_without_it(refused, 422, "catalogue_codes", "levels")


async def test_an_ordinary_code_or_level_is_still_named_as_typed(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    body = issuer_body(catalogue_codes=("ENG-AI", "ENG-NO-SUCH"), levels=("senior", "grand_master"))
    refused = await client.post("/v1/issuers", json=body, headers=bearer(admin))
    problem = assert_problem(refused, 422, field="scopes.0.catalogue_codes", message="ENG-NO-SUCH")
    assert any("grand_master" in error["message"] for error in problem["errors"]), problem
    refused = await client.post("/v1/issuers/NO-SUCH-BODY/suspend", json=REASON, headers=bearer(admin))
    assert "NO-SUCH-BODY" in assert_problem(refused, 404)["detail"]


@pytest.mark.parametrize("typed", range(2))
async def test_an_identity_number_in_place_of_a_body_code_or_kid_in_the_url_is_not_echoed(
    app: FastAPI, client: httpx.AsyncClient, typed: int
) -> None:
    admin = await admin_token(app, client)
    kid = (await create_issuer(client, admin))["signing_keys"][0]
    code = quote(PATHS[typed])
    since = {"compromised_from": "2026-01-01T00:00:00+08:00"}
    withdrawal = {"cert_type": "title", "effective_from": days_from_today(30), "reason": "撤回"}
    amendment = {"cert_type": "title", "catalogue_codes": [], "levels": [], "effective_from": days_from_today(30)}
    for path, body in (
        (f"/v1/issuers/{code}/suspend", REASON),
        (f"/v1/issuers/{code}/reinstate", REASON),
        (f"/v1/issuers/{code}/keys/rotate", None),
        (f"/v1/issuers/{code}/keys/{kid}/compromise", since),
        (f"/v1/issuers/BJ-AI-COMMITTEE/keys/{code}/compromise", since),
        (f"/v1/issuers/{code}/scopes", amendment | {"basis": "京人社备〔2026〕7号"}),
        (f"/v1/issuers/{code}/scopes/withdraw", withdrawal),
    ):
        refused = await client.post(path, json=body, headers=bearer(admin))
        problem = _refused_without_it(refused, 404)
        assert f"{NUMBER[:2]}*" in problem["detail"], (path, problem)


async def test_a_body_registered_under_an_identity_number_is_not_echoed_by_its_conflicts(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """An admin who typed the number as the body's code: the clash and the repeated suspension do not say it back."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin, code=NUMBER)
    again = await client.post("/v1/issuers", json=issuer_body(code=NUMBER), headers=bearer(admin))
    _refused_without_it(again, 409, "code")
    refused = await client.post(f"/v1/issuers/{NUMBER}/reinstate", json=REASON, headers=bearer(admin))
    _refused_without_it(refused, 409)


def _rule(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from_region": "BJ",
        "to_region": "TJ",
        "cert_type": "title",
        "catalogue_codes": ["ENG-ROBOT"],
        "decision": "recognised",
        "equivalent": {"catalogue_code": "ENG-AUTOMATION"},
        "basis": {"code": "BJ-HRSS-2026-ROBOT", "title": "《北京市机器人专业职称评价试行办法》"},
        "effective_from": "2026-01-01",
    }
    return body | overrides


@pytest.mark.parametrize("typed", range(2))
async def test_a_recognition_rule_naming_an_identity_number_is_refused_without_it(
    app: FastAPI, client: httpx.AsyncClient, typed: int
) -> None:
    """Codes take the number as it is; a series or a level begins with a letter, so there it is typed after one."""
    admin = await admin_token(app, client)
    series, level = "ID" + CODES[typed].replace("-", ""), "id_" + LEVELS[typed]
    for body, fields in (
        (_rule(catalogue_codes=[CODES[typed]]), ["catalogue_codes[0]"]),
        (_rule(levels=[level]), ["levels[0]", "equivalent.level"]),  # and what the equivalent does not award
        (_rule(series_code=series), ["series_code", "catalogue_codes[0]"]),
        (_rule(equivalent={"catalogue_code": CODES[typed], "level": level}), ["equivalent.catalogue_code"]),
        (_rule(equivalent={"series_code": series, "level": level}), ["equivalent.series_code", "equivalent.level"]),
    ):
        refused = await client.post("/v1/recognition/rules", json=body, headers=bearer(admin))
        _refused_without_it(refused, 422, *fields)


@pytest.mark.parametrize("typed", range(2))
async def test_a_catalogue_entry_with_an_identity_number_as_a_level_or_its_code_is_refused_without_it(
    app: FastAPI, client: httpx.AsyncClient, typed: int
) -> None:
    admin = await admin_token(app, client)
    entry = {
        "code": "ENG-NEW",
        "cert_type": "title",
        "series_zh": "工程技术",
        "name_zh": "具身智能系统",
        "name_en": "Embodied AI systems",
        "levels": ["senior", LEVELS[typed]],
        "effective_from": "2026-12-01",
    }
    refused = await client.post("/v1/catalogue", json=entry, headers=bearer(admin))
    _refused_without_it(refused, 422, "levels")
    entry |= {"code": CODES[typed], "levels": ["senior"], "effective_from": days_from_today(60)}
    added = await client.post("/v1/catalogue", json=entry, headers=bearer(admin))
    assert added.status_code == 201, added.text
    again = await client.post("/v1/catalogue", json=entry, headers=bearer(admin))
    _refused_without_it(again, 409, "code")
    # The entry, found by the code as typed, is named by it too: filed before it is in force, or in a rule.
    filed = await client.post("/v1/issuers", json=issuer_body(catalogue_codes=(CODES[typed],)), headers=bearer(admin))
    _refused_without_it(filed, 422, "scopes.0.catalogue_codes")
    for body, field in (
        (_rule(catalogue_codes=[CODES[typed]], levels=["intermediate"]), "levels[0]"),  # none of them award it
        (_rule(equivalent={"catalogue_code": CODES[typed]}), "equivalent.level"),  # does not award them all
    ):
        refused = await client.post("/v1/recognition/rules", json=body, headers=bearer(admin))
        _refused_without_it(refused, 422, field)


@pytest.mark.parametrize("typed", range(2))
async def test_an_api_client_for_an_identity_number_or_by_one_is_refused_without_it(
    app: FastAPI, client: httpx.AsyncClient, typed: int
) -> None:
    admin = await admin_token(app, client)
    body = {"role": "issuer", "name": "天津评价机构", "issuer_code": CODES[typed]}
    refused = await client.post("/v1/clients", json=body, headers=bearer(admin))
    _refused_without_it(refused, 422, "issuer_code")
    path = quote(PATHS[typed])
    for refused in (
        await client.get(f"/v1/clients/{path}", headers=bearer(admin)),
        await client.post(f"/v1/clients/{path}/disable", json=REASON, headers=bearer(admin)),
        await client.post(f"/v1/clients/{path}/enable", json=REASON, headers=bearer(admin)),
        await client.post(f"/v1/clients/{path}/rotate-secret", headers=bearer(admin)),
    ):
        problem = _refused_without_it(refused, 404)
        assert f"{NUMBER[:2]}*" in problem["detail"], problem
