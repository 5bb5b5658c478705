"""The bureau withdraws a scheduled amendment of a body's filed scope before it takes effect: the version it added goes,
the versions it closed run on as they were filed, and the withdrawal is audited. Once in force, it is only amended."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlmodel import col

from registry.audit.service import Actor
from registry.db import transaction
from registry.issuers import amendments
from registry.issuers.models import Issuer
from registry.issuers.schemas import ScopeAmendment
from tests.checks import assert_problem, leaves_no_trace
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer, certificate_body, create_issuer, issuer_token

POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has one write lock: nothing to race
CODE = "BJ-AI-COMMITTEE"
FILED = date(2027, 3, 10)
EFFECTIVE = date(2027, 4, 1)
LATER = date(2027, 6, 1)
ORIGINAL = ["ENG-AI", "ENG-BCI", "ENG-EAI", "ENG-IC"]  # the default committee's title filing


def _amendment(effective: date = EFFECTIVE, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cert_type": "title",
        "catalogue_codes": ["ENG-AI", "ENG-ROBOT"],
        "levels": ["senior"],
        "effective_from": effective.isoformat(),
        "basis": "京人社备〔2027〕3号",
    }
    return body | overrides


def _withdrawal(effective: date = EFFECTIVE, **overrides: Any) -> dict[str, Any]:
    return {"cert_type": "title", "effective_from": effective.isoformat(), "reason": "备案文件撤回"} | overrides


async def _amended(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock, *days: date, **issuer: Any
) -> str:
    """The default committee registered and its title filing amended from each of ``days`` on FILED; admin token."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin, **issuer)
    registry_clock.set_today(FILED)
    for day in days or (EFFECTIVE,):
        amended = await client.post(f"/v1/issuers/{CODE}/scopes", json=_amendment(day), headers=bearer(admin))
        assert amended.status_code == 201, amended.text
    return admin


async def _withdraw(client: httpx.AsyncClient, admin: str, effective: date = EFFECTIVE) -> httpx.Response:
    return await client.post(f"/v1/issuers/{CODE}/scopes/withdraw", json=_withdrawal(effective), headers=bearer(admin))


def _spans(body: dict[str, Any]) -> list[tuple[list[str], str, str | None]]:
    return [(s["catalogue_codes"], s["valid_from"], s["valid_until"]) for s in body["scopes"]]


async def test_a_withdrawn_amendment_leaves_the_filing_as_it_was_and_is_audited(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin = await _amended(app, client, registry_clock)
    withdrawn = await _withdraw(client, admin)
    assert withdrawn.status_code == 200, withdrawn.text
    assert _spans(withdrawn.json()) == [(ORIGINAL, "2020-01-01", None)]
    assert _spans((await client.get(f"/v1/issuers/{CODE}")).json()) == [(ORIGINAL, "2020-01-01", None)]
    audit = await client.get("/v1/audit", params={"action": "issuer.scope_withdrawn"}, headers=bearer(admin))
    (record,) = audit.json()["data"]
    assert record["object_id"] == CODE
    assert record["details"]["effective_from"] == EFFECTIVE.isoformat()
    assert record["details"]["reason"] == "备案文件撤回"
    assert record["details"]["withdrawn"]["catalogue_codes"] == ["ENG-AI", "ENG-ROBOT"]
    assert record["details"]["restored"][0]["valid_until"] is None
    # On the day it would have begun, the body awards under the filing it kept, not the withdrawn one.
    registry_clock.set_today(EFFECTIVE)
    token = await issuer_token(app, client, CODE)
    kept = certificate_body(catalogue_code="ENG-EAI", awarded_on=EFFECTIVE.isoformat())
    assert (await client.post("/v1/certificates", json=kept, headers=bearer(token))).status_code == 201
    dropped = certificate_body(catalogue_code="ENG-ROBOT", level="senior", awarded_on=EFFECTIVE.isoformat())
    assert_problem(await client.post("/v1/certificates", json=dropped, headers=bearer(token)), 403)


async def test_a_closed_version_gets_back_the_last_day_it_was_filed_with(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin = await _amended(app, client, registry_clock, valid_until="2030-12-31")
    withdrawn = await _withdraw(client, admin)
    assert withdrawn.status_code == 200, withdrawn.text
    assert _spans(withdrawn.json()) == [(ORIGINAL, "2020-01-01", "2030-12-31")]


async def test_a_scheduled_end_of_the_filing_is_withdrawn_too(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    registry_clock.set_today(FILED)
    ending = _amendment(catalogue_codes=[], levels=[])
    assert (await client.post(f"/v1/issuers/{CODE}/scopes", json=ending, headers=bearer(admin))).status_code == 201
    withdrawn = await _withdraw(client, admin)
    assert withdrawn.status_code == 200, withdrawn.text
    assert _spans(withdrawn.json()) == [(ORIGINAL, "2020-01-01", None)]


async def test_the_latest_amendment_is_withdrawn_first_and_then_the_one_before(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin = await _amended(app, client, registry_clock, EFFECTIVE, LATER)
    first = client.post(f"/v1/issuers/{CODE}/scopes/withdraw", json=_withdrawal(EFFECTIVE), headers=bearer(admin))
    assert_problem(await leaves_no_trace(app, first), 409, field="effective_from", message=LATER.isoformat())
    latest = await _withdraw(client, admin, LATER)
    assert latest.status_code == 200, latest.text
    assert _spans(latest.json()) == [
        (ORIGINAL, "2020-01-01", (EFFECTIVE - timedelta(days=1)).isoformat()),
        (["ENG-AI", "ENG-ROBOT"], EFFECTIVE.isoformat(), None),
    ]
    before = await _withdraw(client, admin, EFFECTIVE)
    assert before.status_code == 200, before.text
    assert _spans(before.json()) == [(ORIGINAL, "2020-01-01", None)]
    assert_problem(await _withdraw(client, admin, EFFECTIVE), 404)  # withdrawn once
    # Nothing withdrawn holds the filing: it is amended again from the same day.
    again = await client.post(f"/v1/issuers/{CODE}/scopes", json=_amendment(), headers=bearer(admin))
    assert again.status_code == 201, again.text


async def test_an_amendment_in_force_is_not_withdrawn(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin = await _amended(app, client, registry_clock)
    registry_clock.set_today(EFFECTIVE)
    refused = client.post(f"/v1/issuers/{CODE}/scopes/withdraw", json=_withdrawal(), headers=bearer(admin))
    assert_problem(await leaves_no_trace(app, refused), 409, message=EFFECTIVE.isoformat())


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (f"/v1/issuers/{CODE}/scopes/withdraw", _withdrawal(LATER), 404),  # no amendment from that day
        (f"/v1/issuers/{CODE}/scopes/withdraw", _withdrawal(cert_type="skill"), 404),
        ("/v1/issuers/NO-SUCH-BODY/scopes/withdraw", _withdrawal(), 404),
        (f"/v1/issuers/{CODE}/scopes/withdraw", _withdrawal(reason=""), 422),
        (f"/v1/issuers/{CODE}/scopes/withdraw", _withdrawal(effective_from="2027-4-1"), 422),
    ],
)
async def test_a_withdrawal_of_nothing_scheduled_or_a_bad_one_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    registry_clock: RegistryClock,
    path: str,
    body: dict[str, Any],
    status: int,
) -> None:
    admin = await _amended(app, client, registry_clock)
    assert_problem(await leaves_no_trace(app, client.post(path, json=body, headers=bearer(admin))), status)


async def test_only_the_bureau_withdraws_an_amendment(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    await _amended(app, client, registry_clock)
    token = await issuer_token(app, client, CODE)
    refused = client.post(f"/v1/issuers/{CODE}/scopes/withdraw", json=_withdrawal(), headers=bearer(token))
    assert_problem(await leaves_no_trace(app, refused), 403)
    assert_problem(await client.post(f"/v1/issuers/{CODE}/scopes/withdraw", json=_withdrawal()), 401)


# --- races (PostgreSQL) ------------------------------------------------------------------------------------------


async def _waits_then(app: FastAPI, request: asyncio.Task[httpx.Response]) -> None:
    await asyncio.sleep(0.5)
    assert not request.done(), "the withdrawal did not wait for the body's row lock"


@POSTGRESQL_ONLY
async def test_a_withdrawal_waiting_for_an_amendment_under_way_sees_it_and_withdraws_nothing(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    """Without the body's row lock, the withdrawal removed the amended version while an amendment from LATER closed
    it: the old version was reopened beside the new one, two versions in force at once."""
    admin = await _amended(app, client, registry_clock)
    later = ScopeAmendment.model_validate(_amendment(LATER))
    async with transaction(app.state.sessions) as session:
        await amendments.amend_scope(session, actor=Actor(id="test"), code=CODE, body=later)
        withdrawal = asyncio.create_task(_withdraw(client, admin))
        await _waits_then(app, withdrawal)
    assert_problem(await withdrawal, 409, field="effective_from")
    assert _spans((await client.get(f"/v1/issuers/{CODE}")).json()) == [
        (ORIGINAL, "2020-01-01", (EFFECTIVE - timedelta(days=1)).isoformat()),
        (["ENG-AI", "ENG-ROBOT"], EFFECTIVE.isoformat(), (LATER - timedelta(days=1)).isoformat()),
        (["ENG-AI", "ENG-ROBOT"], LATER.isoformat(), None),
    ]


@POSTGRESQL_ONLY
async def test_a_withdrawal_that_waited_past_the_first_day_withdraws_nothing(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    """The day is read once the body's row is held: an issuance on the first day (which shares that row) either
    came before and sees the withdrawal refused, or comes after and sees the version gone."""
    admin = await _amended(app, client, registry_clock)
    async with transaction(app.state.sessions) as session:
        await session.execute(select(Issuer).where(col(Issuer.code) == CODE).with_for_update())
        withdrawal = asyncio.create_task(_withdraw(client, admin))
        await _waits_then(app, withdrawal)
        registry_clock.set_today(EFFECTIVE)
    assert_problem(await withdrawal, 409, message=EFFECTIVE.isoformat())
    async with transaction(app.state.sessions) as session:
        count = (await session.execute(text("SELECT count(*) FROM issuer_filed_scopes"))).scalar_one()
    assert count == 2
