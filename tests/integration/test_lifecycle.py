"""Certificate lifecycle: status changes and their history, expiry, corrections, evaluation-body suspension, key
rotation and compromise, and the W3C Bitstring Status Lists that publish revocation and suspension."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from tests.conftest import MASTER_KEY
from tests.factories import (
    bearer,
    create_client,
    create_issuer,
    issued_certificate,
    issuer_token,
    resident_id,
    token_for,
)

CODE = "BJ-AI-COMMITTEE"
OTHER = "BJ-OTHER-COMMITTEE"
PROBLEM = "application/problem+json"
MIN_LIST_BITS = 131_072


@dataclass
class World:
    admin: str
    admin_client_id: str
    issuer: str
    issuer_client_id: str


async def _world(app: FastAPI, client: httpx.AsyncClient, **issuer_overrides: Any) -> World:
    admin_id, admin_secret = await create_client(app, role=Role.admin)
    admin = await token_for(client, admin_id, admin_secret)
    await create_issuer(client, admin, **issuer_overrides)
    issuer_id, issuer_secret = await create_client(app, role=Role.issuer, issuer_code=CODE)
    issuer = await token_for(client, issuer_id, issuer_secret)
    return World(admin=admin, admin_client_id=admin_id, issuer=issuer, issuer_client_id=issuer_id)


async def _verify(client: httpx.AsyncClient, certificate: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _action(
    client: httpx.AsyncClient, token: str, number: str, action: str, reason_code: str | None = "fraud"
) -> httpx.Response:
    body: dict[str, Any] = {"reason": f"test {action}"}
    if action == "revoke" and reason_code is not None:
        body["reason_code"] = reason_code
    return await client.post(f"/v1/certificates/{number}/{action}", json=body, headers=bearer(token))


async def _events(client: httpx.AsyncClient, token: str, number: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/certificates/{number}/events", headers=bearer(token))
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    for event in events:
        assert {"event", "reason", "actor", "at"} <= set(event), event
    return events


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert {"type", "title", "status", "detail"} <= set(problem)
    return problem


async def _jwks(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys


def _key(keys: list[dict[str, Any]], kid: str) -> dict[str, Any]:
    matching = [k for k in keys if k["kid"] == kid]
    assert len(matching) == 1, f"{kid} is in the JWKS {len(matching)} times"
    return matching[0]


async def _holder_token(client: httpx.AsyncClient, id_number: str, claim_code: str) -> str:
    body = {"id_type": "resident_id", "id_number": id_number, "claim_code": claim_code}
    response = await client.post("/v1/holder/sessions", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["access_token"]
    return token


# --- status changes ------------------------------------------------------------------------------------------------


async def test_suspend_reinstate_revoke_each_leave_an_event_and_change_verification(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    assert (await _verify(client, certificate))["result"] == "valid"

    suspended = await _action(client, world.issuer, number, "suspend")
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    verification = await _verify(client, certificate)
    assert verification["result"] == "suspended"
    assert verification["signature_valid"] is True

    reinstated = await _action(client, world.issuer, number, "reinstate")
    assert reinstated.status_code == 200, reinstated.text
    assert reinstated.json()["status"] == "active"
    assert (await _verify(client, certificate))["result"] == "valid"

    revoked = await _action(client, world.issuer, number, "revoke", reason_code="fraud")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    verification = await _verify(client, certificate)
    assert verification["result"] == "revoked"
    assert verification["reason"] == "fraud"
    assert "test revoke" not in json.dumps(verification, ensure_ascii=False), "the free-text reason is not public"

    events = await _events(client, world.issuer, number)
    assert [e["event"] for e in events] == ["issued", "suspended", "reinstated", "revoked"]
    assert [e["reason"] for e in events[1:]] == ["test suspend", "test reinstate", "test revoke"]
    assert events[3].get("reason_code") == "fraud"
    assert {e["actor"] for e in events} == {f"client:{world.issuer_client_id}"}
    moments = [datetime.fromisoformat(e["at"]) for e in events]
    assert moments == sorted(moments)
    assert all(m.tzinfo is not None for m in moments)

    # The bureau reads the same history.
    assert [e["event"] for e in await _events(client, world.admin, number)] == [e["event"] for e in events]


async def test_a_suspended_certificate_can_be_revoked(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    assert (await _action(client, world.issuer, number, "suspend")).status_code == 200
    revoked = await _action(client, world.issuer, number, "revoke", reason_code="disciplinary")
    assert revoked.status_code == 200, revoked.text
    verification = await _verify(client, certificate)
    assert verification["result"] == "revoked"
    assert verification["reason"] == "disciplinary"
    assert [e["event"] for e in await _events(client, world.issuer, number)] == ["issued", "suspended", "revoked"]


@pytest.mark.parametrize("action", ["suspend", "reinstate", "revoke"])
async def test_nothing_leaves_revoked(app: FastAPI, client: httpx.AsyncClient, action: str) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    assert (await _action(client, world.issuer, number, "revoke")).status_code == 200
    _assert_problem(await _action(client, world.issuer, number, action), 409)
    assert (await _verify(client, certificate))["result"] == "revoked"
    assert [e["event"] for e in await _events(client, world.issuer, number)] == ["issued", "revoked"]


async def test_an_active_certificate_cannot_be_reinstated(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    _assert_problem(await _action(client, world.issuer, certificate["number"], "reinstate"), 409)
    assert (await _verify(client, certificate))["result"] == "valid"
    assert [e["event"] for e in await _events(client, world.issuer, certificate["number"])] == ["issued"]


async def test_a_superseded_certificate_accepts_no_status_change(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    corrected = await client.post(
        f"/v1/certificates/{number}/correct",
        json={"reason": "wrong level", "level": "senior"},
        headers=bearer(world.issuer),
    )
    assert corrected.status_code == 201, corrected.text
    for action in ("suspend", "reinstate", "revoke"):
        _assert_problem(await _action(client, world.issuer, number, action), 409)
    again = await client.post(
        f"/v1/certificates/{number}/correct",
        json={"reason": "again", "level": "intermediate"},
        headers=bearer(world.issuer),
    )
    _assert_problem(again, 409)
    verification = await _verify(client, certificate)
    assert verification["result"] == "superseded"
    assert verification["superseded_by"] == corrected.json()["number"]
    assert [e["event"] for e in await _events(client, world.issuer, number)] == ["issued", "superseded"]


async def test_another_body_cannot_touch_or_see_the_certificate(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    await create_issuer(client, world.admin, code=OTHER)
    other = await issuer_token(app, client, OTHER)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]

    for action in ("suspend", "reinstate", "revoke"):
        _assert_problem(await _action(client, other, number, action), 404)
    correction = await client.post(
        f"/v1/certificates/{number}/correct", json={"reason": "x", "level": "senior"}, headers=bearer(other)
    )
    _assert_problem(correction, 404)
    _assert_problem(await client.get(f"/v1/certificates/{number}/events", headers=bearer(other)), 404)
    _assert_problem(await client.get(f"/v1/certificates/{number}/credential", headers=bearer(other)), 404)

    assert (await _verify(client, certificate))["result"] == "valid"
    assert [e["event"] for e in await _events(client, world.issuer, number)] == ["issued"]
    own = await client.get(f"/v1/certificates/{number}", headers=bearer(world.issuer))
    assert own.json()["status"] == "active"
    assert own.json()["superseded_by"] is None


async def test_the_bureau_can_revoke_any_certificate(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    revoked = await _action(client, world.admin, certificate["number"], "revoke", reason_code="body_withdrawn")
    assert revoked.status_code == 200, revoked.text
    verification = await _verify(client, certificate)
    assert verification["result"] == "revoked"
    assert verification["reason"] == "body_withdrawn"
    events = await _events(client, world.issuer, certificate["number"])
    assert [e["event"] for e in events] == ["issued", "revoked"]
    assert events[-1]["actor"] == f"client:{world.admin_client_id}"


async def test_revoking_with_a_reason_alone_shows_the_public_reason_code_other(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    response = await client.post(
        f"/v1/certificates/{certificate['number']}/revoke", json={"reason": "复核不通过"}, headers=bearer(world.issuer)
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "revoked"
    verification = await _verify(client, certificate)
    assert (verification["result"], verification["reason"]) == ("revoked", "other")
    events = await _events(client, world.issuer, certificate["number"])
    assert (events[-1]["event"], events[-1]["reason_code"], events[-1]["reason"]) == ("revoked", "other", "复核不通过")


async def test_revoking_with_an_unknown_reason_code_is_refused_naming_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    unknown = await client.post(
        f"/v1/certificates/{certificate['number']}/revoke",
        json={"reason": "x", "reason_code": "because"},
        headers=bearer(world.issuer),
    )
    assert "reason_code" in {error["field"] for error in _assert_problem(unknown, 422)["errors"]}
    assert (await _verify(client, certificate))["result"] == "valid"


async def test_another_body_changing_a_certificate_gets_404_whatever_the_body_says(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await _world(app, client)
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
            _assert_problem(response, 404)
    assert (await _verify(client, certificate))["result"] == "valid"


async def test_the_holder_can_neither_revoke_nor_read_the_history(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    id_number = resident_id(birth="19910203")
    certificate = await issued_certificate(
        client, world.issuer, holder={"name": "李四", "id_type": "resident_id", "id_number": id_number}
    )
    holder = await _holder_token(client, id_number, certificate["claim_code"])
    for action in ("revoke", "suspend", "reinstate"):
        _assert_problem(await _action(client, holder, certificate["number"], action), 403)
    _assert_problem(await client.get(f"/v1/certificates/{certificate['number']}/events", headers=bearer(holder)), 403)
    assert (await _verify(client, certificate))["result"] == "valid"
    # The holder may take the signed credential away.
    credential = await client.get(f"/v1/certificates/{certificate['number']}/credential", headers=bearer(holder))
    assert credential.status_code == 200, credential.text


# --- expiry --------------------------------------------------------------------------------------------------------


async def test_a_certificate_past_its_valid_until_verifies_expired(app: FastAPI, client: httpx.AsyncClient) -> None:
    # No catalogue entry was in force before 2017, so the "long ago" award is 2019 (ENG-AI is in force from 2019-02).
    world = await _world(app, client, valid_from="2000-01-01")
    certificate = await issued_certificate(
        client, world.issuer, catalogue_code="ENG-AI", awarded_on="2019-06-01", valid_until="2021-06-01"
    )
    verification = await _verify(client, certificate)
    assert verification["result"] == "expired"
    assert verification["signature_valid"] is True
    assert verification["certificate"]["valid_until"] == "2021-06-01"


# --- corrections ---------------------------------------------------------------------------------------------------


async def test_a_correction_supersedes_the_original(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
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

    old = await _verify(client, original)
    assert old["result"] == "superseded"
    assert old["superseded_by"] == successor["number"]
    new = await _verify(client, successor)
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

    old_events = await _events(client, world.issuer, original["number"])
    assert [e["event"] for e in old_events] == ["issued", "superseded"]
    assert old_events[-1]["reason"] == "level was entered wrongly"
    assert [e["event"] for e in await _events(client, world.issuer, successor["number"])] == ["issued"]


async def test_a_revoked_certificate_cannot_be_corrected(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    assert (await _action(client, world.issuer, certificate["number"], "revoke")).status_code == 200
    response = await client.post(
        f"/v1/certificates/{certificate['number']}/correct",
        json={"reason": "x", "level": "senior"},
        headers=bearer(world.issuer),
    )
    _assert_problem(response, 409)
    assert (await _verify(client, certificate))["result"] == "revoked"


async def test_a_correction_outside_the_filed_scope_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    # ENG-EAI has an 'assistant' level, but this body is filed only for intermediate and above.
    response = await client.post(
        f"/v1/certificates/{certificate['number']}/correct",
        json={"reason": "x", "level": "assistant"},
        headers=bearer(world.issuer),
    )
    _assert_problem(response, 403)
    assert (await _verify(client, certificate))["result"] == "valid"
    assert [e["event"] for e in await _events(client, world.issuer, certificate["number"])] == ["issued"]


async def test_a_correction_must_change_something(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    response = await client.post(
        f"/v1/certificates/{certificate['number']}/correct", json={"reason": "x"}, headers=bearer(world.issuer)
    )
    problem = _assert_problem(response, 422)
    assert problem.get("errors"), problem
    assert (await _verify(client, certificate))["result"] == "valid"


async def test_a_correction_cannot_end_validity_before_the_award(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)  # awarded 2026-06-30
    response = await client.post(
        f"/v1/certificates/{certificate['number']}/correct",
        json={"reason": "validity", "valid_until": "2020-01-01"},
        headers=bearer(world.issuer),
    )
    problem = _assert_problem(response, 422)
    assert "valid_until" in {error["field"] for error in problem.get("errors", [])}, problem
    assert (await _verify(client, certificate))["result"] == "valid"


# --- evaluation bodies ---------------------------------------------------------------------------------------------


async def test_a_suspended_body_cannot_issue_but_its_certificates_stay_valid(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await _world(app, client)
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
    _assert_problem(refused, 403)
    assert (await _verify(client, certificate))["result"] == "valid"

    twice = await client.post(f"/v1/issuers/{CODE}/suspend", json={"reason": "again"}, headers=bearer(world.admin))
    _assert_problem(twice, 409)

    reinstated = await client.post(
        f"/v1/issuers/{CODE}/reinstate", json={"reason": "cleared"}, headers=bearer(world.admin)
    )
    assert reinstated.status_code == 200, reinstated.text
    assert reinstated.json()["status"] == "active"
    await issued_certificate(client, world.issuer)
    again = await client.post(f"/v1/issuers/{CODE}/reinstate", json={"reason": "x"}, headers=bearer(world.admin))
    _assert_problem(again, 409)


async def test_only_the_bureau_suspends_a_body(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    partner = await token_for(client, *await create_client(app, role=Role.partner, region="TJ"))
    for token in (world.issuer, partner):
        for action in ("suspend", "reinstate"):
            response = await client.post(f"/v1/issuers/{CODE}/{action}", json={"reason": "x"}, headers=bearer(token))
            _assert_problem(response, 403)
        _assert_problem(await client.post(f"/v1/issuers/{CODE}/keys/rotate", headers=bearer(token)), 403)
    assert (await client.get(f"/v1/issuers/{CODE}")).json()["status"] == "active"
    await issued_certificate(client, world.issuer)


async def test_a_body_whose_filing_has_lapsed_cannot_issue(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client, valid_from="2020-01-01", valid_until="2025-12-31")
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
    _assert_problem(response, 403)


# --- keys ----------------------------------------------------------------------------------------------------------


async def test_rotation_keeps_old_certificates_valid_and_signs_new_ones_with_a_new_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await _world(app, client)
    first = await issued_certificate(client, world.issuer)
    before = await _jwks(client)

    rotated = await client.post(f"/v1/issuers/{CODE}/keys/rotate", headers=bearer(world.admin))
    assert rotated.status_code == 201, rotated.text
    new_kid = rotated.json()["kid"]
    assert rotated.json()["status"] == "active"
    second = await issued_certificate(client, world.issuer)

    assert second["kid"] == new_kid
    assert second["kid"] != first["kid"]
    for certificate in (first, second):
        verification = await _verify(client, certificate)
        assert verification["result"] == "valid", verification
        assert verification["signature_valid"] is True

    after = await _jwks(client)
    assert len(after) == len(before) + 1
    assert {k["kid"] for k in after} - {k["kid"] for k in before} == {new_kid}
    old = _key(after, first["kid"])
    assert old["status"] == "retired"
    assert old["valid_until"] is not None
    assert datetime.fromisoformat(old["valid_until"]) >= datetime.fromisoformat(first["issued_at"])
    new = _key(after, new_kid)
    assert new["status"] == "active"
    assert new["valid_until"] is None
    assert new["issuer_code"] == CODE
    issuer = (await client.get(f"/v1/issuers/{CODE}")).json()
    assert set(issuer["signing_keys"]) >= {first["kid"], new_kid}


async def test_keys_rotate_command_starts_a_new_key(app: FastAPI, client: httpx.AsyncClient, database_url: str) -> None:
    world = await _world(app, client)
    first = await issued_certificate(client, world.issuer)
    env = {"REGISTRY_DATABASE_URL": database_url, "REGISTRY_MASTER_KEY": MASTER_KEY, "REGISTRY_ENV": "test"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "keys",
        "rotate",
        "--issuer",
        CODE,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    printed = json.loads(out.decode())
    new_kid = printed["kid"]
    assert printed["issuer"] == CODE
    assert new_kid != first["kid"]

    second = await issued_certificate(client, world.issuer)
    assert second["kid"] == new_kid
    keys = await _jwks(client)
    assert _key(keys, first["kid"])["status"] == "retired"
    assert _key(keys, new_kid)["status"] == "active"
    for certificate in (first, second):
        assert (await _verify(client, certificate))["result"] == "valid"

    unknown = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "keys",
        "rotate",
        "--issuer",
        "NOPE-1",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(unknown.communicate(), timeout=120)
    assert unknown.returncode == 1
    assert "NOPE-1" in err.decode()


async def test_a_compromised_key_casts_doubt_only_from_the_compromise_on(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await _world(app, client)
    first = await issued_certificate(client, world.issuer)
    await asyncio.sleep(1.1)  # issued_at has whole seconds: the two must not share one
    second = await issued_certificate(client, world.issuer)
    assert first["kid"] == second["kid"]
    assert datetime.fromisoformat(second["issued_at"]) > datetime.fromisoformat(first["issued_at"])
    kid = first["kid"]

    response = await client.post(
        f"/v1/issuers/{CODE}/keys/{kid}/compromise",
        json={"compromised_from": second["issued_at"]},
        headers=bearer(world.admin),
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "compromised"

    before = await _verify(client, first)
    assert before["result"] == "valid", before
    assert before["signature_valid"] is True
    after = await _verify(client, second)
    assert after["result"] == "unknown", after
    assert after["reason"] == "signing_key_compromised"

    keys = await _jwks(client)
    marked = _key(keys, kid)
    assert marked["status"] == "compromised"
    assert datetime.fromisoformat(marked["compromised_from"]) == datetime.fromisoformat(second["issued_at"])

    third = await issued_certificate(client, world.issuer)
    assert third["kid"] != kid
    assert _key(keys, third["kid"])["status"] == "active"
    assert (await _verify(client, third))["result"] == "valid"


async def test_only_the_bureau_marks_a_key_compromised(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    response = await client.post(
        f"/v1/issuers/{CODE}/keys/{certificate['kid']}/compromise",
        json={"compromised_from": certificate["issued_at"]},
        headers=bearer(world.issuer),
    )
    _assert_problem(response, 403)
    missing = await client.post(
        f"/v1/issuers/{CODE}/keys/{CODE}-20260101-deadbeef/compromise",
        json={"compromised_from": certificate["issued_at"]},
        headers=bearer(world.admin),
    )
    _assert_problem(missing, 404)
    assert (await _verify(client, certificate))["result"] == "valid"


# --- status lists --------------------------------------------------------------------------------------------------


def _b64url_json(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def _decode_bitstring(encoded: str) -> bytes:
    """Independent of the app: multibase 'u' (base64url, no padding) of the GZIP-compressed bitstring."""
    assert encoded.startswith("u"), encoded[:10]
    payload = encoded[1:]
    assert "=" not in payload
    return gzip.decompress(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _bit(bits: bytes, index: int) -> bool:
    # Index 0 is the most significant (left-most) bit of the first byte.
    return (bits[index // 8] >> (7 - index % 8)) & 1 == 1


def _verify_jws(token: str, keys: list[dict[str, Any]]) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "vc+jwt"
    assert header["alg"] == "EdDSA"
    jwk = _key(keys, header["kid"])
    public = jwt.PyJWK({k: jwk[k] for k in ("kty", "crv", "x")}, algorithm="EdDSA").key
    claims: dict[str, Any] = jwt.decode(
        token, key=public, algorithms=["EdDSA"], options={"verify_aud": False, "verify_exp": False}
    )
    return claims


async def _credential(client: httpx.AsyncClient, token: str, number: str) -> str:
    response = await client.get(f"/v1/certificates/{number}/credential", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vc+jwt")
    return response.text.strip()


async def _status_bit(client: httpx.AsyncClient, entry: dict[str, Any]) -> bool:
    response = await client.get(entry["statusListCredential"])
    assert response.status_code == 200, response.text
    claims = _verify_jws(response.text.strip(), await _jwks(client))
    assert claims["id"] == entry["statusListCredential"]
    subject = claims["credentialSubject"]
    assert subject["type"] == "BitstringStatusList"
    assert subject["statusPurpose"] == entry["statusPurpose"]
    bits = _decode_bitstring(subject["encodedList"])
    assert len(bits) * 8 >= MIN_LIST_BITS
    return _bit(bits, int(entry["statusListIndex"]))


async def test_status_lists_publish_suspension_and_revocation(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    token = await _credential(client, world.issuer, number)
    claims = _verify_jws(token, await _jwks(client))
    assert claims["credentialSubject"]["certificateNumber"] == number

    entries = {e["statusPurpose"]: e for e in claims["credentialStatus"]}
    assert set(entries) == {"revocation", "suspension"}
    assert len(claims["credentialStatus"]) == 2
    for purpose, entry in entries.items():
        assert entry["type"] == "BitstringStatusListEntry"
        assert entry["statusListCredential"].startswith(f"https://registry.test/v1/status-lists/{CODE}/")
        assert 0 <= int(entry["statusListIndex"]) < MIN_LIST_BITS
        assert entry["statusListCredential"].endswith(purpose)
    assert entries["revocation"]["statusListIndex"] == entries["suspension"]["statusListIndex"]
    revocation, suspension = entries["revocation"], entries["suspension"]

    assert await _status_bit(client, revocation) is False
    assert await _status_bit(client, suspension) is False

    assert (await _action(client, world.issuer, number, "suspend")).status_code == 200
    assert await _status_bit(client, suspension) is True
    assert await _status_bit(client, revocation) is False

    assert (await _action(client, world.issuer, number, "reinstate")).status_code == 200
    assert await _status_bit(client, suspension) is False
    assert await _status_bit(client, revocation) is False

    assert (await _action(client, world.issuer, number, "revoke")).status_code == 200
    assert await _status_bit(client, revocation) is True
    assert await _status_bit(client, suspension) is False


async def test_a_status_list_change_touches_only_its_own_bit(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    first = await issued_certificate(client, world.issuer)
    second = await issued_certificate(client, world.issuer)
    first_entries = {
        e["statusPurpose"]: e
        for e in _verify_jws(await _credential(client, world.issuer, first["number"]), await _jwks(client))[
            "credentialStatus"
        ]
    }
    second_entries = {
        e["statusPurpose"]: e
        for e in _verify_jws(await _credential(client, world.issuer, second["number"]), await _jwks(client))[
            "credentialStatus"
        ]
    }
    assert first_entries["revocation"]["statusListIndex"] != second_entries["revocation"]["statusListIndex"] or (
        first_entries["revocation"]["statusListCredential"] != second_entries["revocation"]["statusListCredential"]
    )
    assert (await _action(client, world.issuer, first["number"], "revoke")).status_code == 200
    assert await _status_bit(client, first_entries["revocation"]) is True
    assert await _status_bit(client, second_entries["revocation"]) is False


async def test_status_lists_are_cacheable_and_unknown_lists_are_404(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _world(app, client)
    certificate = await issued_certificate(client, world.issuer)
    claims = _verify_jws(await _credential(client, world.issuer, certificate["number"]), await _jwks(client))
    url = claims["credentialStatus"][0]["statusListCredential"]

    first = await client.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/vc+jwt")
    cache_control = first.headers["cache-control"]
    assert "max-age=" in cache_control
    assert int(cache_control.split("max-age=")[1].split(",")[0]) > 0
    etag = first.headers["etag"]
    assert etag

    header = _b64url_json(first.text.split(".")[0])
    assert header["typ"] == "vc+jwt"

    same = await client.get(url)
    assert same.headers["etag"] == etag
    unchanged = await client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag

    revocation_url = next(
        e["statusListCredential"] for e in claims["credentialStatus"] if e["statusPurpose"] == "revocation"
    )
    revocation_etag = (await client.get(revocation_url)).headers["etag"]
    assert (await _action(client, world.issuer, certificate["number"], "revoke")).status_code == 200
    changed = await client.get(revocation_url, headers={"If-None-Match": revocation_etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != revocation_etag

    list_name = revocation_url.rsplit("/", 1)[1]
    for path in (
        f"/v1/status-lists/{CODE}/ffffffffffff-revocation",
        f"/v1/status-lists/{CODE}/{list_name.rsplit('-', 1)[0]}-nothing",
        f"/v1/status-lists/{CODE}/nothing",
        f"/v1/status-lists/NOPE-1/{list_name}",
    ):
        _assert_problem(await client.get(path), 404)
    await create_issuer(client, world.admin, code=OTHER)
    _assert_problem(await client.get(f"/v1/status-lists/{OTHER}/{list_name}"), 404)
