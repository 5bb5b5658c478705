"""On PostgreSQL a request queued behind a lock that other work holds (a large batch holds its body's issuance turn and
the audit chain's to its commit) is told the registry is busy: 503 problem+json in the reader's language with
Retry-After, once the wait reaches ``registry.db.LOCK_WAIT_SHARE`` of REGISTRY_DATABASE_COMMAND_TIMEOUT_SECONDS —
not "the database cannot be reached" when that bound runs out, not a 500, and nothing written. A shorter wait is
simply waited out. The lock is held from a second connection of the test, as the batch's transaction holds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.app import create_app, dispose
from registry.audit.service import _CHAIN_LOCK
from registry.config import Settings
from registry.db import LOCK_WAIT_SHARE, transaction
from registry.faults import RETRY_AFTER_SECONDS, Fault
from tests.checks import assert_problem
from tests.factories import bearer, certificate_body, issued_certificate, ready_issuer, row_count

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])  # SQLite: one write lock, taken at BEGIN

COMMAND_TIMEOUT_SECONDS = 2.0
LOCK_WAIT_SECONDS = COMMAND_TIMEOUT_SECONDS * LOCK_WAIT_SHARE
WRITTEN = ("certificates", "certificate_events", "audit_log", "transparency_leaves", "idempotency_records")


@pytest.fixture
async def registry(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with a 2 s statement bound (so lock waits end at 1.6 s), and its client."""
    app = create_app(settings.model_copy(update={"database_command_timeout_seconds": COMMAND_TIMEOUT_SECONDS}))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://registry.test") as http:
            yield app, http
    finally:
        await dispose(app)


@asynccontextmanager
async def _held(settings: Settings, key: int) -> AsyncIterator[None]:
    """The advisory lock ``key`` held by another connection's open transaction for the block (for as long as the
    request under test waits: past the statement bound, without the lock bound)."""
    dsn = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    other = await asyncpg.connect(dsn)
    try:
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock($1)", key)
            yield
    finally:
        await other.close()


async def _issuance_turn(app: FastAPI, code: str = "BJ-AI-COMMITTEE") -> int:
    """The advisory lock a body's issuances (and its batches, to their commit) take first
    (registry.certificates.awards._one_issuance_at_a_time)."""
    async with transaction(app.state.sessions) as session:
        issuer_id = (await session.execute(text("SELECT id FROM issuers WHERE code = :c"), {"c": code})).scalar_one()
    return int.from_bytes(hashlib.sha256(f"issuance:{issuer_id}".encode()).digest()[:8], "big", signed=True)


async def _counts(app: FastAPI) -> dict[str, int]:
    return {table: await row_count(app, table) for table in WRITTEN}


async def _timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


def _assert_busy(response: httpx.Response, seconds: float) -> dict[str, object]:
    problem = assert_problem(response, 503, slug="service-unavailable")
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS[Fault.locked])
    assert seconds >= LOCK_WAIT_SECONDS * 0.9, f"answered after {seconds:.2f} s: it did not wait its turn"
    assert "cannot be reached" not in problem["detail"]  # what the statement bound, run out, said of a lock wait
    return problem


async def test_an_issuance_behind_a_batchs_turn_is_told_the_registry_is_busy_in_its_language_and_nothing_is_written(
    settings: Settings, registry: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    app, http = registry
    token = await ready_issuer(app, http)
    before = await _counts(app)
    headers = {**bearer(token), "Idempotency-Key": "behind-the-batch", "Accept-Language": "zh-CN"}
    body = certificate_body()
    async with _held(settings, await _issuance_turn(app)):
        response, seconds = await _timed(http.post("/v1/certificates", json=body, headers=headers))
    problem = _assert_busy(response, seconds)
    assert response.headers["Content-Language"] == "zh-CN"
    assert problem["title"] == "暂时无法提供服务"
    assert "正忙" in str(problem["detail"]), problem
    assert "重新发送" in str(problem["detail"]), problem
    assert await _counts(app) == before  # nothing of it written, not even its Idempotency-Key
    again = await http.post("/v1/certificates", json=body, headers=headers)  # the turn is free: the same key issues
    assert again.status_code == 201, again.text
    assert await row_count(app, "certificates") == before["certificates"] + 1


async def test_a_revocation_behind_a_batchs_audit_append_is_told_the_registry_is_busy_and_changes_nothing(
    settings: Settings, registry: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    app, http = registry
    token = await ready_issuer(app, http)
    number = (await issued_certificate(http, token))["number"]
    before = await _counts(app)
    revoke = {"reason": "awarded in error", "reason_code": "issued_in_error"}
    async with _held(settings, _CHAIN_LOCK):
        response, seconds = await _timed(
            http.post(f"/v1/certificates/{number}/revoke", json=revoke, headers=bearer(token))
        )
    problem = _assert_busy(response, seconds)
    assert response.headers["Content-Language"] == "en"
    assert "busy" in str(problem["detail"]), problem
    assert "nothing was changed" in str(problem["detail"]), problem
    assert await _counts(app) == before
    shown = await http.get(f"/v1/certificates/{number}", headers=bearer(token))
    assert shown.json()["status"] == "active"
    again = await http.post(f"/v1/certificates/{number}/revoke", json=revoke, headers=bearer(token))
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "revoked"


async def test_a_wait_shorter_than_the_bound_is_waited_out(
    settings: Settings, registry: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    app, http = registry
    token = await ready_issuer(app, http)
    turn = await _issuance_turn(app)

    async def hold_briefly() -> None:
        async with _held(settings, turn):
            started.set()
            await asyncio.sleep(LOCK_WAIT_SECONDS / 2)

    started = asyncio.Event()
    holder = asyncio.ensure_future(hold_briefly())
    await started.wait()
    response = await http.post("/v1/certificates", json=certificate_body(), headers=bearer(token))
    await holder
    assert response.status_code == 201, response.text
