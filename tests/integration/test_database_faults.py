"""The database fails under load — every backend terminated, the server stopped hard and started again, every pooled
connection busy — and the registry answers only 2xx, or 503 problem+json with ``Retry-After``: never 500, never a
dropped connection. It recovers by itself (no restart of the app), and no issuance it acknowledged with 201 is lost;
an issuance answered 503 and retried with its Idempotency-Key is issued exactly once.

The storms run against a throw-away PostgreSQL cluster each test starts itself (``cluster_support``), never the shared
server; they print the statuses they saw, per route. The app runs in process: ``httpx.ASGITransport`` raises any
exception that escapes the app — what a real server turns into a dropped connection — and it is counted as
``dropped``. A commit whose answer is lost, and pools with every connection busy, run on both backends.
(``kill -9`` of a real ``registry serve`` mid-batch, then a retry with the same key: ``test_kill.py``.)
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session

from api.app import create_app, dispose
from registry.audit.service import first_broken_record
from registry.config import Settings
from registry.db import transaction
from tests.conftest import MASTER_KEY
from tests.factories import bearer, certificate_body, ready_issuer, resident_id
from tests.integration.cluster_support import ThrowAwayCluster

KINDS = ("verify-token", "verify-number", "page", "status-list", "jwks", "readyz", "issue")
TARGETS = 6  # certificates issued before the storm, for the reads to ask about
HOLDER_NAME = "张三"


@dataclass
class World:
    """The app under test, what it was asked and what it answered."""

    app: FastAPI
    http: httpx.AsyncClient
    issuer: str
    status_list: str = ""
    targets: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, dict[str, Any]] = field(default_factory=dict)  # Idempotency-Key -> body
    acknowledged: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> number answered with 201
    unconfirmed: set[str] = field(default_factory=set)  # Idempotency-Keys answered 503
    seen: Counter[tuple[str, int | str]] = field(default_factory=Counter)
    holders: itertools.count[int] = field(default_factory=itertools.count)

    def figures(self) -> str:
        totals: Counter[str] = Counter()
        by_kind: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        for (kind, status), n in sorted(self.seen.items(), key=str):
            totals[str(status)] += n
            by_kind[kind][str(status)] = n
        return f"{dict(sorted(totals.items()))}, per route {by_kind}"


def _holder(n: int) -> dict[str, str]:
    """Holder ``n`` of this test: an identity number of its own (1,000 sequence numbers per birth date)."""
    birth = (date(1990, 1, 1) + timedelta(days=n // 1000)).strftime("%Y%m%d")
    return {"name": HOLDER_NAME, "id_type": "resident_id", "id_number": resident_id(birth=birth, sequence=n % 1000)}


def _is_clean_503(response: httpx.Response) -> bool:
    return (
        response.headers.get("content-type") == "application/problem+json"
        and response.headers.get("retry-after", "").isdigit()
        and int(response.headers["retry-after"]) > 0
        and response.json()["status"] == 503
    )


async def _request(world: World, kind: str, i: int) -> httpx.Response:
    target = world.targets[i % len(world.targets)]
    http = world.http
    if kind == "verify-token":
        return await http.get(f"/v1/verify/{target['qr_token']}")
    if kind == "verify-number":
        return await http.post("/v1/verify", json={"number": target["number"], "holder_name": HOLDER_NAME})
    if kind == "page":
        return await http.get(f"/v/{target['qr_token']}")
    if kind == "status-list":
        return await http.get(world.status_list)
    if kind == "jwks":
        return await http.get("/.well-known/jwks.json")
    if kind == "readyz":
        return await http.get("/readyz")
    key = f"storm-{next(world.holders)}"
    world.attempts[key] = certificate_body(holder=_holder(int(key.split("-")[1])))
    return await _issue(world, key)


async def _issue(world: World, key: str) -> httpx.Response:
    headers = {**bearer(world.issuer), "Idempotency-Key": key}
    response = await world.http.post("/v1/certificates", json=world.attempts[key], headers=headers)
    if response.status_code == 201:
        world.acknowledged[key] = response.json()["number"]
        world.unconfirmed.discard(key)
    elif response.status_code == 503:
        world.unconfirmed.add(key)
    return response


async def _ask(world: World, kind: str, i: int) -> int | str:
    """One request; its status, ``dropped`` when the app let an exception escape, ``bad-503`` for a 503 that is not
    problem+json with Retry-After."""
    try:
        response = await _request(world, kind, i)
    except Exception:
        status: int | str = "dropped"
    else:
        status = response.status_code
        if status == 503 and not _is_clean_503(response):
            status = "bad-503"
    world.seen[(kind, status)] += 1
    return status


async def _round(world: World, *, per_kind: int) -> list[int | str]:
    """``per_kind`` requests of every kind at once."""
    return list(await asyncio.gather(*(_ask(world, kind, i) for kind in KINDS for i in range(per_kind))))


async def _load(world: World, *, per_kind: int, until: Callable[[], bool], pause: float = 0.0) -> None:
    while not until():
        await _round(world, per_kind=per_kind)
        await asyncio.sleep(pause)


@asynccontextmanager
async def _world(cluster: ThrowAwayCluster, tmp_path: Path, **settings: Any) -> AsyncIterator[World]:
    app = create_app(
        Settings(
            env="test",
            database_url=cluster.url,
            master_key=MASTER_KEY,
            public_base_url="https://registry.test",
            data_dir=tmp_path / "data",
            rate_limits_enabled=False,
            **settings,
        )
    )
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://registry.test") as http:
            world = World(app=app, http=http, issuer=await ready_issuer(app, http))
            for n in range(TARGETS):
                world.attempts[f"target-{n}"] = certificate_body(holder=_holder(100_000 + n))
                response = await _issue(world, f"target-{n}")
                assert response.status_code == 201, response.text
                world.targets.append(response.json())
            list_id = await _fetchval(cluster, "SELECT list_id FROM status_lists WHERE purpose = 'revocation'")
            world.status_list = f"/v1/status-lists/{world.targets[0]['issuer_code']}/{list_id}-revocation"
            assert await _round(world, per_kind=1) == [200] * (len(KINDS) - 1) + [201]
            world.seen.clear()
            yield world
    finally:
        await dispose(app)


async def _fetchval(cluster: ThrowAwayCluster, sql: str) -> Any:
    connection = await asyncpg.connect(cluster.dsn(), timeout=10)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


def _only_2xx_or_clean_503(world: World) -> None:
    wrong = {key: n for key, n in world.seen.items() if not (isinstance(key[1], int) and key[1] in (200, 201, 503))}
    assert not wrong, f"answers other than 2xx or a 503 with Retry-After: {wrong}; all: {world.figures()}"


async def _answers_are_clean(world: World) -> None:
    world.seen.clear()
    statuses = await _round(world, per_kind=3)
    assert all(s in (200, 201) for s in statuses), f"right after the fault: {world.figures()}"


async def _nothing_acknowledged_is_lost(world: World, cluster: ThrowAwayCluster) -> None:
    """Every 201 is stored; every issuance answered 503, retried with its key, is issued — each exactly once. How
    many of those 503s had in fact been committed (their retry is answered with the stored 201) is printed."""
    unconfirmed, replayed = sorted(world.unconfirmed), 0
    for key in unconfirmed:
        retried = await _issue(world, key)
        assert retried.status_code == 201, f"retry of {key} with its Idempotency-Key: {retried.text}"
        replayed += retried.headers.get("idempotent-replayed") == "true"
    print(f"\n{len(unconfirmed)} issuances answered 503, retried with their key: {replayed} of them had been done")
    assert set(world.acknowledged) == set(world.attempts)
    connection = await asyncpg.connect(cluster.dsn(), timeout=10)
    try:
        stored = {r["number"] for r in await connection.fetch("SELECT number FROM certificates")}
        holders = await connection.fetchval("SELECT count(DISTINCT holder_id) FROM certificates")
    finally:
        await connection.close()
    assert set(world.acknowledged.values()) <= stored, "an issuance acknowledged with 201 is not in the database"
    assert len(stored) == holders == len(world.attempts), "an issuance was lost or made twice"
    async with transaction(world.app.state.sessions) as session:
        assert await first_broken_record(session) is None, "the audit chain is broken"


async def _storm(cluster: ThrowAwayCluster, load: asyncio.Task[None], *, every: float) -> list[list[int]]:
    """``pg_terminate_backend`` on every backend of the database, every ``every`` seconds while ``load`` runs: the
    pids terminated each time."""
    terminated = []
    while not load.done():
        await asyncio.sleep(every)
        terminated.append(await cluster.terminate_backends())
    await load
    return terminated


@pytest.mark.slow
async def test_terminating_every_backend_under_load_answers_2xx_or_503_and_loses_no_acknowledged_issuance(
    tmp_path: Path,
) -> None:
    async with ThrowAwayCluster.running() as cluster, _world(cluster, tmp_path) as world:
        started = time.monotonic()
        deadline = started + 4.0
        load = asyncio.create_task(_load(world, per_kind=6, until=lambda: time.monotonic() > deadline))
        terminated = await _storm(cluster, load, every=0.5)
        during = world.figures()
        _only_2xx_or_clean_503(world)
        assert sum(map(len, terminated)) > 0, "the storm terminated no backend"
        # The backends the last pg_terminate_backend signalled exit a moment later, and the app's event loop notices
        # their closed sockets a moment after that: a request in either instant is still in the storm.
        await cluster.wait_until_exited(terminated[-1])
        await asyncio.sleep(0.2)
        await _answers_are_clean(world)
        await _nothing_acknowledged_is_lost(world, cluster)
        print(
            f"\npg_terminate_backend x{len(terminated)} ({sum(map(len, terminated))} backends) in"
            f" {time.monotonic() - started:.1f} s: {during};"
            f" {len(world.attempts) - TARGETS} issuances, {len(world.acknowledged) - TARGETS} acknowledged in all"
        )


DOWN_SECONDS = 5.0


@pytest.mark.slow
async def test_a_database_restart_under_load_answers_2xx_or_503_then_2xx_without_restarting_the_app(
    tmp_path: Path,
) -> None:
    async with ThrowAwayCluster.running() as cluster, _world(cluster, tmp_path) as world:
        restarted = asyncio.Event()
        load = asyncio.create_task(_load(world, per_kind=2, until=restarted.is_set, pause=0.05))
        await asyncio.sleep(0.5)
        await cluster.stop_immediately()
        await asyncio.sleep(DOWN_SECONDS)
        await cluster.start()
        restarted.set()
        await load
        during = world.figures()
        _only_2xx_or_clean_503(world)
        assert any(status == 503 for (_, status) in world.seen), "nothing noticed the database was down"
        assert world.seen[("readyz", 503)] > 0, "/readyz did not say the database was down"
        await _answers_are_clean(world)
        await _nothing_acknowledged_is_lost(world, cluster)
        print(f"\nstop -m immediate for {DOWN_SECONDS:.0f} s, then start: {during}")


# --- a commit whose outcome the registry cannot know -----------------------------------------------------------------


class _AnswerLostAfterCommit(Session):
    """The commit reaches the database, then the connection dies before the registry hears back: the outcome is
    unknown to it, so it must answer 503, and the client's retry must find the work done, not do it again."""


@event.listens_for(_AnswerLostAfterCommit, "after_commit")
def _connection_dies(session: Session) -> None:
    raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")


async def test_an_issuance_whose_commit_outcome_is_unknown_answers_503_and_its_retry_issues_nothing_twice(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    sessions = app.state.sessions
    app.state.sessions = async_sessionmaker(
        app.state.engine, sync_session_class=_AnswerLostAfterCommit, expire_on_commit=False, autoflush=False
    )
    body = certificate_body()
    headers = {**bearer(issuer), "Idempotency-Key": "unknown-outcome-1"}
    try:
        lost = await client.post("/v1/certificates", json=body, headers=headers)
    finally:
        app.state.sessions = sessions
    assert lost.status_code == 503, lost.text
    assert _is_clean_503(lost)
    retried = await client.post("/v1/certificates", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.headers["idempotent-replayed"] == "true"  # the first attempt's work, not a second issuance
    async with transaction(app.state.sessions) as session:
        stored = (await session.execute(text("SELECT number FROM certificates"))).scalars().all()
    assert stored == [retried.json()["number"]]


# --- every connection busy ------------------------------------------------------------------------------------------


async def _hold_every_connection(app: FastAPI) -> list[Any]:
    """Check out pooled connections until the pool has none to give (its timeout is short in these tests)."""
    held = []
    while True:
        try:
            held.append(await app.state.engine.connect())
        except sqlalchemy.exc.TimeoutError:
            return held


@pytest.fixture
async def busy_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings.model_copy(update={"database_pool_timeout_seconds": 0.5, "database_read_pool_size": 2})
    )
    yield application
    await dispose(application)


async def test_requests_that_find_every_database_connection_busy_get_503_not_500(busy_app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=busy_app), base_url="https://registry.test") as http:
        issuer = await ready_issuer(busy_app, http)
        held = await _hold_every_connection(busy_app)
        try:
            issue = await http.post("/v1/certificates", json=certificate_body(), headers=bearer(issuer))
            jwks = await http.get("/.well-known/jwks.json")
            ready = await http.get("/readyz")
        finally:
            for connection in held:
                await connection.close()
        for response in (issue, jwks, ready):
            assert response.status_code == 503, response.text
            assert _is_clean_503(response)
            assert response.json()["detail"] == "every database connection is busy"
        assert (await http.post("/v1/certificates", json=certificate_body(), headers=bearer(issuer))).status_code == 201
        assert (await http.get("/.well-known/jwks.json")).status_code == 200


@pytest.mark.parametrize("backend", ["postgresql"])  # the verification read pool exists on PostgreSQL only
async def test_scans_that_find_the_verification_pool_busy_get_503_not_500(
    busy_app: FastAPI, settings: Settings
) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=busy_app), base_url="https://registry.test") as http:
        issuer = await ready_issuer(busy_app, http)
        issued = await http.post("/v1/certificates", json=certificate_body(), headers=bearer(issuer))
        path = f"/v1/verify/{issued.json()['qr_token']}"
        assert (await http.get(path)).status_code == 200  # the key ring and caches are filled
        # Long-held connections: another session locks the table, so both pooled connections wait in their query.
        locker = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""), timeout=10)
        try:
            lock = locker.transaction()
            await lock.start()
            await locker.execute("LOCK TABLE certificates IN ACCESS EXCLUSIVE MODE")
            stuck = [asyncio.create_task(http.get(path)) for _ in range(2)]
            await _until(lambda: _waiting(locker, 2))
            busy = await http.get(path)
            await lock.rollback()
            answers = await asyncio.gather(*stuck)
        finally:
            await locker.close()
        assert busy.status_code == 503, busy.text
        assert _is_clean_503(busy)
        assert [a.status_code for a in answers] == [200, 200]
        assert (await http.get(path)).status_code == 200


async def _waiting(connection: asyncpg.Connection, count: int) -> bool:
    waiting = await connection.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return int(waiting) >= count


async def _until(probe: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await probe():
        assert time.monotonic() < deadline, "the condition never came"
        await asyncio.sleep(0.02)
