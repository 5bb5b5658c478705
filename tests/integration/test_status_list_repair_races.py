"""`registry status-lists repair` of several bodies' lists beside a status change or an issuance in one of them, on
PostgreSQL: every writer takes the list's rows first, then the audit chain's lock; the repair must too."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from cli.status_lists import Outcome, list_states, repair_lists
from registry.audit.service import _CHAIN_LOCK
from registry.certificates import status_lists
from registry.config import Settings
from registry.db import transaction
from tests.checks import run_sql
from tests.factories import bearer, certificate_body, create_issuer, issued_certificate, issuer_token
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.lifecycle_support import OTHER, act, set_up
from tests.integration.test_status_list_seal import _slot

POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has one write lock: nothing to race


async def _waiters(app: FastAPI) -> int:
    """How many transactions of this test's database wait for a lock (the audit chain's, or a row's)."""
    async with transaction(app.state.sessions) as session:
        query = (
            "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database()"
        )
        return int((await session.execute(text(query))).scalar_one())


async def _until_waiters(app: FastAPI, count: int) -> None:
    deadline = time.monotonic() + 20
    while await _waiters(app) < count:
        assert time.monotonic() < deadline, f"fewer than {count} transactions ever waited for a lock"
        await asyncio.sleep(0.02)


async def _served(client: httpx.AsyncClient, list_id: str, index: int) -> tuple[bool, bool]:
    """(revoked, suspended) at ``index`` of the other body's list, as served."""
    said = []
    for purpose in ("revocation", "suspension"):
        response = await client.get(f"/v1/status-lists/{OTHER}/{list_id}-{purpose}")
        assert response.status_code == 200, response.text
        claims = jwt.decode(response.text.strip(), options={"verify_signature": False})
        said.append(status_lists.bit(status_lists.decode(claims["credentialSubject"]["encodedList"]), index))
    return said[0], said[1]


async def _repair_everything(app: FastAPI) -> list[Outcome]:
    """What `registry status-lists repair --yes` (every body) does in its writing transaction."""
    context = app.state.context
    async with transaction(app.state.sessions) as session:
        states = await list_states(context, session, None)
        assert states is not None
        return await repair_lists(context, session, [state for state in states if state.broken])


@POSTGRESQL_ONLY
@pytest.mark.parametrize("writer", ["revocation", "issuance"])
async def test_a_repair_of_two_bodies_lists_and_a_write_in_the_second_do_not_deadlock(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, writer: str
) -> None:
    """A repair of every body audits the first list it seals (the audit chain's lock, held to its commit) before it
    locks the second list's rows; a revocation in the second list (or an issuance into it) locks those rows, then asks
    for the chain's lock. Each waits on the other: PostgreSQL ends one of them with a deadlock (40P01), here the API
    request (503, though nothing it asked conflicts with the repair), else the command (exit 4, "send it again").
    Another audit writer holds the chain for a moment so both are under way at once; any audited request does so in
    production. Appending the repairs' audit records after the last list's rows are locked (or locking every withheld
    list first) keeps the order every writer takes: list rows, then the chain."""
    world = await set_up(app, client)
    await create_issuer(client, world.admin, code=OTHER)
    other = await issuer_token(app, client, OTHER)
    await issued_certificate(client, world.issuer)
    number = (await issued_certificate(client, other))["number"]
    await run_sql(app, "UPDATE status_lists SET seal = NULL")  # both bodies' lists withheld

    async with transaction(app.state.sessions) as chain:  # another audit writer, for a moment
        await chain.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
        repair = asyncio.create_task(_repair_everything(app))
        await _until_waiters(app, 1)  # the repair has sealed the first body's list and waits to audit it
        if writer == "revocation":
            write = asyncio.create_task(act(client, other, number, "revoke"))
        else:
            write = asyncio.create_task(client.post("/v1/certificates", json=certificate_body(), headers=bearer(other)))
        await _until_waiters(app, 2)  # the write waits too: to audit, holding the second list's rows
    outcomes = await asyncio.wait_for(asyncio.gather(repair, write, return_exceptions=True), timeout=60)

    repaired, written = outcomes
    assert not isinstance(repaired, BaseException), f"the repair failed: {repaired!r}"
    assert isinstance(written, httpx.Response), written
    assert written.status_code in (200, 201), (written.status_code, written.headers.get("Retry-After"), written.text)
    env = {**registry_env(settings.database_url), "LC_ALL": "C"}
    code, out, err = await run_registry("status-lists", "check", env=env)
    assert code == 0, (out, err)
    code, out, err = await run_registry("audit", "verify", env=env)
    assert code == 0, (out, err)
    list_id, index = await _slot(app, number)
    expected = (True, False) if writer == "revocation" else (False, False)
    assert await _served(client, list_id, index) == expected  # served, and saying what the certificate's row says
