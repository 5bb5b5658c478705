"""Certificate lifecycle: status changes and their history, expiry, corrections and evaluation-body suspension.
Keys and status lists: test_keys_and_status_lists.py."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.verification.readpool import driver_dsn
from tests.checks import assert_problem
from tests.factories import (
    admin_token,
    bearer,
    create_client,
    create_issuer,
    issued_certificate,
    issuer_token,
    resident_id,
    token_for,
)
from tests.integration.lifecycle_support import (
    CODE,
    OTHER,
    act,
    history,
    holder_token,
    set_up,
    verified,
)

MIN_LIST_BITS = 131_072


# --- status changes ------------------------------------------------------------------------------------------------


async def test_suspend_reinstate_revoke_each_leave_an_event_and_change_verification(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    assert (await verified(client, certificate))["result"] == "valid"

    suspended = await act(client, world.issuer, number, "suspend")
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    verification = await verified(client, certificate)
    assert verification["result"] == "suspended"
    assert verification["signature_valid"] is True

    reinstated = await act(client, world.issuer, number, "reinstate")
    assert reinstated.status_code == 200, reinstated.text
    assert reinstated.json()["status"] == "active"
    assert (await verified(client, certificate))["result"] == "valid"

    revoked = await act(client, world.issuer, number, "revoke", reason_code="fraud")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    verification = await verified(client, certificate)
    assert verification["result"] == "revoked"
    assert verification["reason"] == "fraud"
    assert "test revoke" not in json.dumps(verification, ensure_ascii=False), "the free-text reason is not public"

    events = await history(client, world.issuer, number)
    assert [e["event"] for e in events] == ["issued", "suspended", "reinstated", "revoked"]
    assert [e["reason"] for e in events[1:]] == ["test suspend", "test reinstate", "test revoke"]
    assert events[3].get("reason_code") == "fraud"
    assert {e["actor"] for e in events} == {f"client:{world.issuer_client_id}"}
    moments = [datetime.fromisoformat(e["at"]) for e in events]
    assert moments == sorted(moments)
    assert all(m.tzinfo is not None for m in moments)

    # The bureau reads the same history.
    assert [e["event"] for e in await history(client, world.admin, number)] == [e["event"] for e in events]


async def test_a_suspended_certificate_can_be_revoked(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    assert (await act(client, world.issuer, number, "suspend")).status_code == 200
    revoked = await act(client, world.issuer, number, "revoke", reason_code="disciplinary")
    assert revoked.status_code == 200, revoked.text
    verification = await verified(client, certificate)
    assert verification["result"] == "revoked"
    assert verification["reason"] == "disciplinary"
    assert [e["event"] for e in await history(client, world.issuer, number)] == ["issued", "suspended", "revoked"]


@pytest.mark.parametrize("action", ["suspend", "reinstate", "revoke"])
async def test_nothing_leaves_revoked(app: FastAPI, client: httpx.AsyncClient, action: str) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    assert (await act(client, world.issuer, number, "revoke")).status_code == 200
    assert_problem(await act(client, world.issuer, number, action), 409)
    assert (await verified(client, certificate))["result"] == "revoked"
    assert [e["event"] for e in await history(client, world.issuer, number)] == ["issued", "revoked"]


async def test_an_active_certificate_cannot_be_reinstated(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    assert_problem(await act(client, world.issuer, certificate["number"], "reinstate"), 409)
    assert (await verified(client, certificate))["result"] == "valid"
    assert [e["event"] for e in await history(client, world.issuer, certificate["number"])] == ["issued"]


async def test_a_superseded_certificate_accepts_no_status_change(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    corrected = await client.post(
        f"/v1/certificates/{number}/correct",
        json={"reason": "wrong level", "level": "senior"},
        headers=bearer(world.issuer),
    )
    assert corrected.status_code == 201, corrected.text
    for action in ("suspend", "reinstate", "revoke"):
        assert_problem(await act(client, world.issuer, number, action), 409)
    again = await client.post(
        f"/v1/certificates/{number}/correct",
        json={"reason": "again", "level": "intermediate"},
        headers=bearer(world.issuer),
    )
    assert_problem(again, 409)
    verification = await verified(client, certificate)
    assert verification["result"] == "superseded"
    assert verification["superseded_by"] == corrected.json()["number"]
    assert [e["event"] for e in await history(client, world.issuer, number)] == ["issued", "superseded"]


async def test_another_body_cannot_touch_or_see_the_certificate(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    await create_issuer(client, world.admin, code=OTHER)
    other = await issuer_token(app, client, OTHER)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]

    for action in ("suspend", "reinstate", "revoke"):
        assert_problem(await act(client, other, number, action), 404)
    correction = await client.post(
        f"/v1/certificates/{number}/correct", json={"reason": "x", "level": "senior"}, headers=bearer(other)
    )
    assert_problem(correction, 404)
    assert_problem(await client.get(f"/v1/certificates/{number}/events", headers=bearer(other)), 404)
    assert_problem(await client.get(f"/v1/certificates/{number}/credential", headers=bearer(other)), 404)

    assert (await verified(client, certificate))["result"] == "valid"
    assert [e["event"] for e in await history(client, world.issuer, number)] == ["issued"]
    own = await client.get(f"/v1/certificates/{number}", headers=bearer(world.issuer))
    assert own.json()["status"] == "active"
    assert own.json()["superseded_by"] is None


async def test_the_bureau_can_revoke_any_certificate(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    revoked = await act(client, world.admin, certificate["number"], "revoke", reason_code="body_withdrawn")
    assert revoked.status_code == 200, revoked.text
    verification = await verified(client, certificate)
    assert verification["result"] == "revoked"
    assert verification["reason"] == "body_withdrawn"
    events = await history(client, world.issuer, certificate["number"])
    assert [e["event"] for e in events] == ["issued", "revoked"]
    assert events[-1]["actor"] == f"client:{world.admin_client_id}"


async def test_revoking_with_a_reason_alone_shows_the_public_reason_code_other(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    response = await client.post(
        f"/v1/certificates/{certificate['number']}/revoke", json={"reason": "复核不通过"}, headers=bearer(world.issuer)
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "revoked"
    verification = await verified(client, certificate)
    assert (verification["result"], verification["reason"]) == ("revoked", "other")
    events = await history(client, world.issuer, certificate["number"])
    assert (events[-1]["event"], events[-1]["reason_code"], events[-1]["reason"]) == ("revoked", "other", "复核不通过")


async def test_revoking_with_an_unknown_reason_code_is_refused_naming_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    unknown = await client.post(
        f"/v1/certificates/{certificate['number']}/revoke",
        json={"reason": "x", "reason_code": "because"},
        headers=bearer(world.issuer),
    )
    assert "reason_code" in {error["field"] for error in assert_problem(unknown, 422)["errors"]}
    assert (await verified(client, certificate))["result"] == "valid"


async def test_another_body_changing_a_certificate_gets_404_whatever_the_body_says(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    await create_issuer(client, world.admin, code=OTHER)
    other = await token_for(client, *await create_client(app, role=Role.issuer, issuer_code=OTHER))
    certificate = await issued_certificate(client, world.issuer)
    bodies: list[dict[str, Any]] = [{"reason": "fraud"}, {}, {"reason_code": "because"}, {"reason": "x", "extra": 1}]
    for action in ("revoke", "suspend", "reinstate", "correct", "events"):
        for body in bodies:
            path = f"/v1/certificates/{certificate['number']}/{action}"
            if action == "events":
                response = await client.get(path, headers=bearer(other))
            else:
                response = await client.post(path, json=body, headers=bearer(other))
            assert response.status_code == 404, (action, body, response.text)
            assert_problem(response, 404)
    assert (await verified(client, certificate))["result"] == "valid"


async def test_the_holder_can_neither_revoke_nor_read_the_history(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    id_number = resident_id(birth="19910203")
    certificate = await issued_certificate(
        client, world.issuer, holder={"name": "李四", "id_type": "resident_id", "id_number": id_number}
    )
    holder = await holder_token(client, id_number, certificate["claim_code"])
    for action in ("revoke", "suspend", "reinstate"):
        assert_problem(await act(client, holder, certificate["number"], action), 403)
    assert_problem(await client.get(f"/v1/certificates/{certificate['number']}/events", headers=bearer(holder)), 403)
    assert (await verified(client, certificate))["result"] == "valid"
    # The holder may take the signed credential away.
    credential = await client.get(f"/v1/certificates/{certificate['number']}/credential", headers=bearer(holder))
    assert credential.status_code == 200, credential.text


# --- expiry --------------------------------------------------------------------------------------------------------


async def test_a_certificate_past_its_valid_until_verifies_expired(app: FastAPI, client: httpx.AsyncClient) -> None:
    # No catalogue entry was in force before 2017, so the "long ago" award is 2019 (ENG-AI is in force from 2019-02).
    world = await set_up(app, client, valid_from="2000-01-01")
    certificate = await issued_certificate(
        client, world.issuer, catalogue_code="ENG-AI", awarded_on="2019-06-01", valid_until="2021-06-01"
    )
    verification = await verified(client, certificate)
    assert verification["result"] == "expired"
    assert verification["signature_valid"] is True
    assert verification["certificate"]["valid_until"] == "2021-06-01"


# --- corrections ---------------------------------------------------------------------------------------------------


async def test_a_correction_supersedes_the_original(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    original = await issued_certificate(client, world.issuer)
    response = await client.post(
        f"/v1/certificates/{original['number']}/correct",
        json={"reason": "level was entered wrongly", "level": "senior"},
        headers=bearer(world.issuer),
    )
    assert response.status_code == 201, response.text
    successor: dict[str, Any] = response.json()
    assert successor["number"] != original["number"]
    assert successor["supersedes"] == original["number"]
    assert successor["level"] == "senior"
    assert successor["holder"] == original["holder"]
    assert successor["catalogue_code"] == original["catalogue_code"]
    assert successor["qr_token"] != original["qr_token"]
    assert successor["claim_code"]

    old = await verified(client, original)
    assert old["result"] == "superseded"
    assert old["superseded_by"] == successor["number"]
    new = await verified(client, successor)
    assert new["result"] == "valid"
    assert new["supersedes"] == original["number"]
    assert new["certificate"]["level"] == "senior"

    old_record = (await client.get(f"/v1/certificates/{original['number']}", headers=bearer(world.issuer))).json()
    new_record = (await client.get(f"/v1/certificates/{successor['number']}", headers=bearer(world.issuer))).json()
    assert old_record["status"] == "superseded"
    assert old_record["superseded_by"] == successor["number"]
    assert old_record["level"] == "associate_senior"
    assert new_record["status"] == "active"
    assert new_record["supersedes"] == original["number"]

    old_events = await history(client, world.issuer, original["number"])
    assert [e["event"] for e in old_events] == ["issued", "superseded"]
    assert old_events[-1]["reason"] == "level was entered wrongly"
    assert [e["event"] for e in await history(client, world.issuer, successor["number"])] == ["issued"]


async def test_a_revoked_certificate_cannot_be_corrected(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    assert (await act(client, world.issuer, certificate["number"], "revoke")).status_code == 200
    response = await client.post(
        f"/v1/certificates/{certificate['number']}/correct",
        json={"reason": "x", "level": "senior"},
        headers=bearer(world.issuer),
    )
    assert_problem(response, 409)
    assert (await verified(client, certificate))["result"] == "revoked"


async def test_a_correction_outside_the_filed_scope_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    # ENG-EAI has an 'assistant' level, but this body is filed only for intermediate and above.
    response = await client.post(
        f"/v1/certificates/{certificate['number']}/correct",
        json={"reason": "x", "level": "assistant"},
        headers=bearer(world.issuer),
    )
    assert_problem(response, 403)
    assert (await verified(client, certificate))["result"] == "valid"
    assert [e["event"] for e in await history(client, world.issuer, certificate["number"])] == ["issued"]


async def test_a_correction_must_change_something(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    response = await client.post(
        f"/v1/certificates/{certificate['number']}/correct", json={"reason": "x"}, headers=bearer(world.issuer)
    )
    problem = assert_problem(response, 422)
    assert problem.get("errors"), problem
    assert (await verified(client, certificate))["result"] == "valid"


async def test_a_correction_cannot_end_validity_before_the_award(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)  # awarded 2026-06-30
    response = await client.post(
        f"/v1/certificates/{certificate['number']}/correct",
        json={"reason": "validity", "valid_until": "2020-01-01"},
        headers=bearer(world.issuer),
    )
    problem = assert_problem(response, 422)
    assert "valid_until" in {error["field"] for error in problem.get("errors", [])}, problem
    assert (await verified(client, certificate))["result"] == "valid"


# --- evaluation bodies ---------------------------------------------------------------------------------------------


async def test_a_suspended_body_cannot_issue_but_its_certificates_stay_valid(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)

    suspended = await client.post(
        f"/v1/issuers/{CODE}/suspend", json={"reason": "under investigation"}, headers=bearer(world.admin)
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    assert (await client.get(f"/v1/issuers/{CODE}")).json()["status"] == "suspended"

    refused = await client.post(
        "/v1/certificates",
        json={
            "cert_type": "title",
            "catalogue_code": "ENG-EAI",
            "level": "associate_senior",
            "holder": {"name": "王五", "id_type": "resident_id", "id_number": resident_id()},
            "awarded_on": "2026-06-30",
        },
        headers=bearer(world.issuer),
    )
    assert_problem(refused, 403)
    assert (await verified(client, certificate))["result"] == "valid"

    twice = await client.post(f"/v1/issuers/{CODE}/suspend", json={"reason": "again"}, headers=bearer(world.admin))
    assert_problem(twice, 409)

    reinstated = await client.post(
        f"/v1/issuers/{CODE}/reinstate", json={"reason": "cleared"}, headers=bearer(world.admin)
    )
    assert reinstated.status_code == 200, reinstated.text
    assert reinstated.json()["status"] == "active"
    await issued_certificate(client, world.issuer)
    again = await client.post(f"/v1/issuers/{CODE}/reinstate", json={"reason": "x"}, headers=bearer(world.admin))
    assert_problem(again, 409)


async def test_only_the_bureau_suspends_a_body(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    partner = await token_for(client, *await create_client(app, role=Role.partner, region="TJ"))
    for token in (world.issuer, partner):
        for action in ("suspend", "reinstate"):
            response = await client.post(f"/v1/issuers/{CODE}/{action}", json={"reason": "x"}, headers=bearer(token))
            assert_problem(response, 403)
        assert_problem(await client.post(f"/v1/issuers/{CODE}/keys/rotate", headers=bearer(token)), 403)
    assert (await client.get(f"/v1/issuers/{CODE}")).json()["status"] == "active"
    await issued_certificate(client, world.issuer)


async def test_a_body_whose_filing_has_lapsed_cannot_issue(app: FastAPI, client: httpx.AsyncClient) -> None:
    # Entries in force while the filing ran: a filing that ends before an entry begins is refused (422).
    world = await set_up(
        app, client, valid_from="2020-01-01", valid_until="2025-12-31", catalogue_codes=("ENG-AI", "ENG-IC")
    )
    response = await client.post(
        "/v1/certificates",
        json={
            "cert_type": "title",
            "catalogue_code": "ENG-AI",
            "level": "senior",
            "holder": {"name": "赵六", "id_type": "resident_id", "id_number": resident_id()},
            "awarded_on": "2025-06-01",
        },
        headers=bearer(world.issuer),
    )
    assert_problem(response, 403)


async def test_only_the_bureau_lifts_its_own_suspension(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    certificate = await issued_certificate(client, issuer)
    path = f"/v1/certificates/{certificate['number']}"
    assert (await client.post(f"{path}/suspend", json={"reason": "inquiry"}, headers=bearer(admin))).status_code == 200
    by_body = await client.post(f"{path}/reinstate", json={"reason": "all fine"}, headers=bearer(issuer))
    assert by_body.status_code == 403
    corrected = await client.post(f"{path}/correct", json={"reason": "x", "level": "senior"}, headers=bearer(issuer))
    assert corrected.status_code == 409
    by_bureau = await client.post(f"{path}/reinstate", json={"reason": "cleared"}, headers=bearer(admin))
    assert by_bureau.status_code == 200


async def test_another_body_is_answered_at_once_while_the_owner_is_changing_the_certificate(
    app: FastAPI, client: httpx.AsyncClient, backend: str, database_url: str
) -> None:
    """The 404 for a certificate another body may not see is decided before any row lock is taken: it does not wait
    for (and so does not reveal) the owner's change in progress."""
    if backend == "sqlite":
        pytest.skip("SQLite has no row locks: every writer waits for the one database write lock")
    world = await set_up(app, client)
    await create_issuer(client, world.admin, code=OTHER)
    other = await token_for(client, *await create_client(app, role=Role.issuer, issuer_code=OTHER))
    certificate = await issued_certificate(client, world.issuer)
    owner = await asyncpg.connect(driver_dsn(database_url))
    try:
        async with owner.transaction():
            await owner.execute("SELECT 1 FROM certificates WHERE number = $1 FOR UPDATE", certificate["number"])
            path = f"/v1/certificates/{certificate['number']}/suspend"
            answer = await asyncio.wait_for(client.post(path, json={"reason": "x"}, headers=bearer(other)), timeout=5)
            assert_problem(answer, 404)
    finally:
        await owner.close()
