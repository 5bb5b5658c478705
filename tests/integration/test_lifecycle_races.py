"""Lifecycle changes racing each other on PostgreSQL: a correction beside issuances of the same body, a status list read
while the certificate it names is revoked, a deadlock answered as a moment's contention; and a correction that would
change nothing."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import time
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from sqlalchemy import text

from registry.db import transaction
from registry.faults import database_fault, unavailable
from tests.checks import assert_problem
from tests.factories import bearer, certificate_body, issued_certificate, row_count
from tests.integration.lifecycle_support import act, history, set_up, verified

POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has one write lock: nothing to race


def _payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return claims


async def _status_entry(client: httpx.AsyncClient, token: str, number: str) -> tuple[str, int]:
    """The message list a certificate's credential names, and its index there."""
    response = await client.get(f"/v1/certificates/{number}/credential", headers=bearer(token))
    assert response.status_code == 200, response.text
    entry = _payload(response.text.strip())["credentialStatus"]
    assert entry["statusPurpose"] == "message"
    return entry["statusListCredential"], int(entry["statusListIndex"])


async def _message_value(client: httpx.AsyncClient, url: str, index: int) -> int:
    """The two-bit entry at ``index``: revoked << 1 | suspended (index 0 is the first byte's most significant bit)."""
    response = await client.get(url)
    assert response.status_code == 200, response.text
    encoded: str = _payload(response.text.strip())["credentialSubject"]["encodedList"]
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    first = 2 * index
    return ((bits[first // 8] >> (7 - first % 8)) & 1) << 1 | (bits[(first + 1) // 8] >> (7 - (first + 1) % 8)) & 1


# --- a correction beside issuances --------------------------------------------------------------------------------


@POSTGRESQL_ONLY
async def test_a_correction_and_issuances_of_the_same_body_at_once_all_succeed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The correction takes the body's issuance turn before the original's status-list rows, as issuance does: taken
    the other way round, the two waited on each other and PostgreSQL ended one with a deadlock (500)."""
    world = await set_up(app, client)
    for _trial in range(5):
        original = await issued_certificate(client, world.issuer)
        correction = client.post(
            f"/v1/certificates/{original['number']}/correct",
            json={"reason": "the evaluation batch was mistyped", "evaluation_batch": "2026-BJ-AI-02"},
            headers=bearer(world.issuer),
        )
        issuances = [
            client.post("/v1/certificates", json=certificate_body(), headers=bearer(world.issuer)) for _ in range(3)
        ]
        answers = await asyncio.gather(correction, *issuances)
        assert [a.status_code for a in answers] == [201] * 4, [(a.status_code, a.text[:300]) for a in answers]
        assert (await verified(client, original))["result"] == "superseded"


async def _deadlock(app: FastAPI) -> Exception:
    """A real deadlock: two transactions each hold one advisory lock and ask for the other's. PostgreSQL ends one of
    them with SQLSTATE 40P01; that one's error, as SQLAlchemy raises it to the registry."""
    held = [asyncio.Event(), asyncio.Event()]

    async def take(mine: int, theirs: int) -> None:
        async with transaction(app.state.sessions) as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": 40_000 + mine})
            held[mine].set()
            await held[theirs].wait()
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": 40_000 + theirs})

    outcomes = await asyncio.wait_for(asyncio.gather(take(0, 1), take(1, 0), return_exceptions=True), timeout=30)
    errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(errors) == 1, outcomes
    return errors[0]


@POSTGRESQL_ONLY
async def test_a_deadlock_is_answered_503_with_retry_after_not_500(app: FastAPI, client: httpx.AsyncClient) -> None:
    """PostgreSQL rolled the deadlocked transaction back whole: nothing of it happened, and the request sent again
    succeeds — a moment's contention, answered like the other passing database faults."""
    error = await _deadlock(app)

    async def deadlocked() -> None:
        raise error

    app.add_api_route("/test-only/deadlocked", deadlocked, methods=["POST"])
    answer = await client.post("/test-only/deadlocked")
    problem = assert_problem(answer, 503)
    assert problem["type"].endswith("/service-unavailable")
    assert int(answer.headers["Retry-After"]) >= 1
    assert database_fault(error) is not None


def test_a_serialization_failure_is_a_passing_database_fault_too() -> None:
    """SQLSTATE 40001, as SQLAlchemy wraps it: the transaction was rolled back whole, so it is worth sending again."""
    failure = asyncpg.exceptions.SerializationError("could not serialize access due to concurrent update")
    try:
        try:
            raise failure
        except asyncpg.PostgresError as cause:
            raise sqlalchemy.exc.DBAPIError("UPDATE status_lists", {}, cause) from cause
    except sqlalchemy.exc.DBAPIError as wrapped:
        fault = database_fault(wrapped)
    assert fault is not None
    answer = unavailable(fault)
    assert answer.status == 503
    assert int(answer.headers()["Retry-After"]) >= 1


# --- the message status list during a revocation ------------------------------------------------------------------


@POSTGRESQL_ONLY
async def test_the_message_list_never_shows_a_suspended_certificate_being_revoked_as_valid(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The two-bit entry is composed from the revocation and the suspension row read in one statement, so every list
    served is one that existed: 0b01 (suspended), then 0b10 (revoked). Read in two statements, a revocation committing
    between them showed 0b00 — valid."""
    world = await set_up(app, client)
    seen: dict[int, int] = {}
    deadline = time.monotonic() + 3
    trials = 0
    while trials < 3 or (time.monotonic() < deadline and trials < 8):
        trials += 1
        number = (await issued_certificate(client, world.issuer))["number"]
        assert (await act(client, world.issuer, number, "suspend")).status_code == 200
        url, index = await _status_entry(client, world.issuer, number)
        revoked = asyncio.Event()

        async def fetch_until_revoked(url: str = url, index: int = index, revoked: asyncio.Event = revoked) -> None:
            while not revoked.is_set():
                value = await _message_value(client, url, index)
                seen[value] = seen.get(value, 0) + 1

        fetchers = [asyncio.create_task(fetch_until_revoked()) for _ in range(10)]
        await asyncio.sleep(0.02)
        answer = await act(client, world.issuer, number, "revoke")
        await asyncio.sleep(0.02)
        revoked.set()
        await asyncio.gather(*fetchers)
        assert answer.status_code == 200, answer.text
        assert await _message_value(client, url, index) == 0b10
    assert 0b00 not in seen, f"a suspended, then revoked certificate was served as valid: {seen}"
    assert set(seen) <= {0b01, 0b10}, seen


# --- a correction that changes nothing ----------------------------------------------------------------------------


async def test_a_correction_giving_every_value_on_record_is_refused_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    body = certificate_body()
    certificate = await issued_certificate(client, world.issuer, **body)
    number = certificate["number"]
    same = {key: body[key] for key in ("catalogue_code", "level", "awarded_on", "valid_until", "evaluation_batch")}
    path = f"/v1/certificates/{number}/correct"

    identical = await client.post(
        path, json={"reason": "no change", "holder_name": body["holder"]["name"], **same}, headers=bearer(world.issuer)
    )
    reason_only = await client.post(path, json={"reason": "no change"}, headers=bearer(world.issuer))

    problem = assert_problem(identical, 422)
    assert problem["errors"] == assert_problem(reason_only, 422)["errors"]
    assert problem["errors"] == [{"field": "reason", "message": "a correction must change at least one field"}]
    assert (await verified(client, certificate))["result"] == "valid"
    assert [e["event"] for e in await history(client, world.issuer, number)] == ["issued"]
    assert await row_count(app, "certificates") == 1
    url, index = await _status_entry(client, world.issuer, number)
    assert await _message_value(client, url, index) == 0b00
