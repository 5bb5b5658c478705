"""The bureau lists the evaluation bodies it registered and amends their filed scope (备案范围): an amendment is a new
version from its effective date, and every certificate is still judged by the version in force on its award date."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.db import transaction
from tests.checks import assert_problem, leaves_no_trace
from tests.conftest import RegistryClock
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_issuer,
    issued_certificate,
    issuer_body,
    issuer_token,
)

FILED = date(2027, 3, 10)  # the day the bureau records the amendment
EFFECTIVE = date(2027, 4, 1)  # the day the amended scope takes effect
LAST_OLD_DAY = EFFECTIVE - timedelta(days=1)
# ENG-EAI is dropped from the committee's title filing, ENG-ROBOT added; the other entries and the levels stay.
AMENDED_CODES = ["ENG-AI", "ENG-BCI", "ENG-IC", "ENG-ROBOT"]
LEVELS = ["associate_senior", "intermediate", "senior"]


def _amendment(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cert_type": "title",
        "catalogue_codes": AMENDED_CODES,
        "levels": LEVELS,
        "effective_from": EFFECTIVE.isoformat(),
        "basis": "京人社备〔2027〕3号",
    }
    body.update(overrides)
    return body


async def _amended_committee(app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock) -> tuple[str, str]:
    """The default committee registered, its title filing amended on FILED; an admin and an issuer token."""
    admin = await admin_token(app, client)
    code = (await create_issuer(client, admin))["code"]
    registry_clock.set_today(FILED)
    amended = await client.post(f"/v1/issuers/{code}/scopes", json=_amendment(), headers=bearer(admin))
    assert amended.status_code == 201, amended.text
    return admin, await issuer_token(app, client, code)


async def _issue(client: httpx.AsyncClient, token: str, *, catalogue_code: str, awarded_on: date) -> httpx.Response:
    body = certificate_body(catalogue_code=catalogue_code, awarded_on=awarded_on.isoformat())
    return await client.post("/v1/certificates", json=body, headers=bearer(token))


def _without_key_discovery(document: dict[str, Any]) -> dict[str, Any]:
    """The public issuer document minus what only it carries for key discovery (its ``id`` and each key's JWK):
    what the admin list and an amendment answer with."""
    return {name: value for name, value in document.items() if name not in ("id", "keys")}


async def _verified(client: httpx.AsyncClient, certificate: dict[str, Any]) -> str:
    response = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert response.status_code == 200, response.text
    result: str = response.json()["result"]
    return result


# --- listing -----------------------------------------------------------------------------------------------------


async def _three_bodies(client: httpx.AsyncClient, admin: str) -> None:
    await create_issuer(client, admin, code="BJ-AI-COMMITTEE")
    await create_issuer(client, admin, code="HE-EMPLOYER", region="HE", kind="employer", catalogue_codes=("ENG-IC",))
    skill = {"code": "TJ-SKILL-ORG", "cert_type": "skill", "kind": "evaluation_organisation", "region": "TJ"}
    await create_issuer(client, admin, catalogue_codes=("SK-6-31-01-03",), levels=("level_3",), **skill)


async def _codes(client: httpx.AsyncClient, admin: str, **params: Any) -> list[str]:
    response = await client.get("/v1/issuers", params=params, headers=bearer(admin))
    assert response.status_code == 200, response.text
    return [body["code"] for body in response.json()["data"]]


async def test_bureau_lists_every_body_in_code_order_as_the_public_page_shows_each(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    await _three_bodies(client, admin)
    listed = await client.get("/v1/issuers", headers=bearer(admin))
    assert listed.status_code == 200, listed.text
    assert [b["code"] for b in listed.json()["data"]] == ["BJ-AI-COMMITTEE", "HE-EMPLOYER", "TJ-SKILL-ORG"]
    assert listed.json()["next_cursor"] is None
    one = await client.get("/v1/issuers/HE-EMPLOYER")
    assert listed.json()["data"][1] == _without_key_discovery(one.json())


async def test_bureau_filters_bodies_by_kind_region_status_entry_and_credit_code(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    await _three_bodies(client, admin)
    suspended = await client.post("/v1/issuers/HE-EMPLOYER/suspend", json={"reason": "核查"}, headers=bearer(admin))
    assert suspended.status_code == 200, suspended.text
    assert await _codes(client, admin, kind="employer") == ["HE-EMPLOYER"]
    assert await _codes(client, admin, region="TJ") == ["TJ-SKILL-ORG"]
    assert await _codes(client, admin, status="suspended") == ["HE-EMPLOYER"]
    assert await _codes(client, admin, catalogue_code="ENG-IC") == ["BJ-AI-COMMITTEE", "HE-EMPLOYER"]
    assert await _codes(client, admin, catalogue_code="ENG-EAI", region="BJ") == ["BJ-AI-COMMITTEE"]
    assert await _codes(client, admin, catalogue_code="ENG-ROBOT") == []
    credit_code = (await client.get("/v1/issuers/TJ-SKILL-ORG")).json()["credit_code"]
    assert await _codes(client, admin, credit_code=credit_code) == ["TJ-SKILL-ORG"]
    assert_problem(await client.get("/v1/issuers", params={"kind": "guild"}, headers=bearer(admin)), 422, field="kind")


async def test_bureau_pages_through_bodies_with_the_cursor(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    await _three_bodies(client, admin)
    first = await client.get("/v1/issuers", params={"limit": 2}, headers=bearer(admin))
    assert [b["code"] for b in first.json()["data"]] == ["BJ-AI-COMMITTEE", "HE-EMPLOYER"]
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    assert await _codes(client, admin, limit=2, cursor=cursor) == ["TJ-SKILL-ORG"]
    forged = await client.get("/v1/issuers", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=bearer(admin))
    assert_problem(forged, 422, field="cursor")


async def test_only_the_bureau_lists_bodies(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    assert_problem(await client.get("/v1/issuers", headers=bearer(issuer)), 403)
    assert_problem(await client.get("/v1/issuers"), 401)
    amended = client.post("/v1/issuers/BJ-AI-COMMITTEE/scopes", json=_amendment(), headers=bearer(issuer))
    assert_problem(await leaves_no_trace(app, amended), 403)


# --- amending the filed scope ------------------------------------------------------------------------------------


async def test_an_amendment_adds_a_version_and_only_closes_the_one_it_replaces(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    registry_clock.set_today(FILED)
    amended = await client.post("/v1/issuers/BJ-AI-COMMITTEE/scopes", json=_amendment(), headers=bearer(admin))
    assert amended.status_code == 201, amended.text
    old, new = amended.json()["scopes"]
    assert old["catalogue_codes"] == ["ENG-AI", "ENG-BCI", "ENG-EAI", "ENG-IC"]
    assert (old["valid_from"], old["valid_until"], old["basis"]) == ("2020-01-01", LAST_OLD_DAY.isoformat(), None)
    assert new == {
        "cert_type": "title",
        "catalogue_codes": AMENDED_CODES,
        "levels": LEVELS,
        "valid_from": EFFECTIVE.isoformat(),
        "valid_until": None,
        "basis": "京人社备〔2027〕3号",
    }
    assert _without_key_discovery((await client.get("/v1/issuers/BJ-AI-COMMITTEE")).json()) == amended.json()
    async with transaction(app.state.sessions) as session:
        rows = (await session.execute(text("SELECT * FROM issuer_filed_scopes ORDER BY id"))).mappings().all()
    assert len(rows) == 2
    first = {
        k: json.loads(v) if k in {"catalogue_codes", "levels"} and isinstance(v, str) else v for k, v in rows[0].items()
    }
    # the filing as first recorded: the closing date is the only change
    assert first["catalogue_codes"] == ["ENG-AI", "ENG-BCI", "ENG-EAI", "ENG-IC"]
    assert first["levels"] == LEVELS
    assert str(first["valid_from"]) == "2020-01-01"
    assert str(first["valid_until"]) == LAST_OLD_DAY.isoformat()
    assert first["basis"] is None
    assert first["filed_at"] is None
    assert rows[1]["filed_at"] is not None
    audit = await client.get("/v1/audit", params={"action": "issuer.scope_amended"}, headers=bearer(admin))
    (record,) = audit.json()["data"]
    assert record["object_id"] == "BJ-AI-COMMITTEE"
    assert record["details"]["before"][0]["valid_until"] is None
    assert record["details"]["after"]["catalogue_codes"] == AMENDED_CODES


async def test_a_second_amendment_from_the_same_day_or_earlier_is_refused_while_one_is_scheduled(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin, _ = await _amended_committee(app, client, registry_clock)
    for day in (EFFECTIVE, EFFECTIVE - timedelta(days=5)):
        again = client.post(
            "/v1/issuers/BJ-AI-COMMITTEE/scopes",
            json=_amendment(effective_from=day.isoformat()),
            headers=bearer(admin),
        )
        assert_problem(await leaves_no_trace(app, again), 409, field="effective_from")
    later = _amendment(effective_from=(EFFECTIVE + timedelta(days=30)).isoformat(), catalogue_codes=["ENG-AI"])
    succeeded = await client.post("/v1/issuers/BJ-AI-COMMITTEE/scopes", json=later, headers=bearer(admin))
    assert succeeded.status_code == 201, succeeded.text
    assert [s["valid_until"] for s in succeeded.json()["scopes"]] == [
        LAST_OLD_DAY.isoformat(),
        (EFFECTIVE + timedelta(days=29)).isoformat(),
        None,
    ]


async def test_an_amendment_with_empty_lists_ends_the_filing_for_that_type(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    registry_clock.set_today(FILED)
    withdrawal = _amendment(catalogue_codes=[], levels=[])
    ended = await client.post("/v1/issuers/BJ-AI-COMMITTEE/scopes", json=withdrawal, headers=bearer(admin))
    assert ended.status_code == 201, ended.text
    assert [s["valid_until"] for s in ended.json()["scopes"]] == [LAST_OLD_DAY.isoformat()]
    skill = client.post(
        "/v1/issuers/BJ-AI-COMMITTEE/scopes", json={**withdrawal, "cert_type": "skill"}, headers=bearer(admin)
    )
    assert_problem(await leaves_no_trace(app, skill), 409)  # no skill filing to end


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"effective_from": FILED.isoformat()}, "effective_from"),  # today: already-issued awards would be re-judged
        ({"effective_from": (FILED - timedelta(days=1)).isoformat()}, "effective_from"),
        # a mistyped year: it would stand ahead of every later amendment, withdrawn only by undoing them all
        ({"effective_from": "2207-01-01"}, "effective_from"),
        ({"effective_from": (FILED + timedelta(days=3 * 365 + 1)).isoformat()}, "effective_from"),
        ({"basis": ""}, "basis"),
        ({"basis": "号" * 257}, "basis"),
        ({"catalogue_codes": ["ENG-NOPE"]}, "catalogue_codes"),
        ({"catalogue_codes": ["SK-6-31-01-03"]}, "catalogue_codes"),  # a skill entry in a title filing
        ({"levels": ["level_3"]}, "levels"),  # a skill level in a title filing
        ({"levels": []}, "levels"),
        ({"cert_type": "diploma"}, "cert_type"),
        ({"valid_until": "2030-01-01"}, "valid_until"),
    ],
)
async def test_a_bad_amendment_is_refused_naming_the_field_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock, change: dict[str, Any], field: str
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    registry_clock.set_today(FILED)
    body = {**_amendment(), **change}
    refused = client.post("/v1/issuers/BJ-AI-COMMITTEE/scopes", json=body, headers=bearer(admin))
    assert_problem(await leaves_no_trace(app, refused), 422, field=field)


async def test_amending_an_unknown_body_is_not_found(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    assert_problem(await client.post("/v1/issuers/NO-SUCH-BODY/scopes", json=_amendment(), headers=bearer(admin)), 404)


# --- issuance and verification judge each award date by the version in force on it --------------------------------


async def test_a_dropped_entry_is_awarded_up_to_the_old_versions_last_day_and_those_certificates_stay_valid(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    token = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    before_amendment = await issued_certificate(client, token, catalogue_code="ENG-EAI", awarded_on="2026-06-30")
    registry_clock.set_today(FILED)
    amended = await client.post("/v1/issuers/BJ-AI-COMMITTEE/scopes", json=_amendment(), headers=bearer(admin))
    assert amended.status_code == 201, amended.text
    registry_clock.set_today(LAST_OLD_DAY)
    last_day = await _issue(client, token, catalogue_code="ENG-EAI", awarded_on=LAST_OLD_DAY)
    assert last_day.status_code == 201, last_day.text
    registry_clock.set_today(EFFECTIVE)
    on_effective_day = await _issue(client, token, catalogue_code="ENG-EAI", awarded_on=EFFECTIVE)
    assert_problem(on_effective_day, 403, slug="outside-filed-scope")
    # An award of the old version's last day is not issued once the filing for that entry has ended.
    late = await _issue(client, token, catalogue_code="ENG-EAI", awarded_on=LAST_OLD_DAY)
    assert_problem(late, 403, slug="outside-filed-scope")
    registry_clock.set_today(EFFECTIVE + timedelta(days=10))
    assert await _verified(client, before_amendment) == "valid"
    assert await _verified(client, last_day.json()) == "valid"


async def test_an_added_entry_is_awarded_from_the_effective_date_and_not_before(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    _, token = await _amended_committee(app, client, registry_clock)
    assert_problem(await _issue(client, token, catalogue_code="ENG-ROBOT", awarded_on=FILED), 403)
    registry_clock.set_today(EFFECTIVE)
    day_before = await _issue(client, token, catalogue_code="ENG-ROBOT", awarded_on=LAST_OLD_DAY)
    assert_problem(day_before, 403, slug="outside-filed-scope", field="awarded_on")
    on_the_day = await _issue(client, token, catalogue_code="ENG-ROBOT", awarded_on=EFFECTIVE)
    assert on_the_day.status_code == 201, on_the_day.text
    assert await _verified(client, on_the_day.json()) == "valid"


async def test_a_kept_entry_is_awarded_across_the_amendment_without_a_gap(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    _, token = await _amended_committee(app, client, registry_clock)
    registry_clock.set_today(EFFECTIVE)
    for day in (LAST_OLD_DAY, EFFECTIVE):
        response = await _issue(client, token, catalogue_code="ENG-AI", awarded_on=day)
        assert response.status_code == 201, response.text
        assert await _verified(client, response.json()) == "valid"


async def test_a_body_name_the_e_certificate_cannot_print_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The body's name is printed on every PDF and around its seal: a character no font draws would be a box."""
    admin = await admin_token(app, client)
    refused = client.post("/v1/issuers", json=issuer_body(name="北京市具身智能评审委员会🤖"), headers=bearer(admin))
    problem = assert_problem(await leaves_no_trace(app, refused), 422, field="name")
    assert "U+1F916" in problem["detail"], problem
    accepted = await client.post("/v1/issuers", json=issuer_body(name="北京市𤭢评审委员会"), headers=bearer(admin))
    assert accepted.status_code == 201, accepted.text
