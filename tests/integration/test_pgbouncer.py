"""The registry behind a real PgBouncer (Debian 12's 1.18, session mode) in front of the test's PostgreSQL database.

PgBouncer refuses every startup parameter it does not know ("unsupported startup parameter: lock_timeout", and
``options`` too), so a registry that sent its lock bound when connecting could open no connection through it: every
write was answered 503. It now connects without it and bounds lock waits per transaction instead
(``registry.db.bound_commands``): writes go through, and a write queued behind a lock another transaction holds is
still answered 503 "busy" with Retry-After, not held and not 500; so does a PgBouncer told to drop the parameter
(``ignore_startup_parameters``). Direct connections keep the free startup parameter and set nothing per transaction.
The PgBouncers here are set up as README.md ("Behind PgBouncer") asks, so that public verification answers too.

PgBouncer runs as a child of the test: its own folder, config, free port and trust authentication; it is started as
``nobody`` when the test runs as root (it refuses root; it reads its files before it changes user), and only the
process the test started is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url

from api.app import create_app, dispose
from registry.config import Settings
from registry.db import LOCK_WAIT_SHARE, create_engine
from registry.faults import RETRY_AFTER_SECONDS, Fault
from tests.checks import assert_problem, require_tool
from tests.factories import bearer, certificate_body, issued_certificate, ready_issuer, row_count
from tests.integration.server_support import free_port
from tests.integration.test_lock_wait_busy import WRITTEN, _issuance_turn

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])  # PgBouncer pools PostgreSQL connections

COMMAND_TIMEOUT_SECONDS = 2.0
LOCK_WAIT_MS = round(COMMAND_TIMEOUT_SECONDS * LOCK_WAIT_SHARE * 1000)  # 1600
STARTUP_SECONDS = 15


def _config(folder: Path, server: URL, port: int, extra: str) -> Path:
    """A session-mode PgBouncer on 127.0.0.1:``port`` for ``server``'s database, logging in to it as ``server``'s
    user; clients are trusted (the user must still be in the auth file). ``extra``: more [pgbouncer] lines."""
    login = f"user={server.username}" + (f" password='{server.password}'" if server.password else "")
    (folder / "users.txt").write_text(f'"{server.username}" ""\n', encoding="utf-8")
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"{server.database} = host={server.host} port={server.port or 5432} dbname={server.database} {login}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        f"pool_mode = session\nlogfile =\npidfile =\n{extra}",
        encoding="utf-8",
    )
    return config


@contextlib.contextmanager
def _pgbouncer(folder: Path, server: URL, extra: str = "") -> Iterator[int]:
    """PgBouncer in the foreground, until the block ends; its port."""
    binary = require_tool("pgbouncer", "pgbouncer")
    port = free_port()
    config = _config(folder, server, port, extra)
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    log = folder / "pgbouncer.log"
    with log.open("wb") as output:
        command = [binary, *user, str(config)]
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603 - our own command
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"pgbouncer exited: {log.read_text(encoding='utf-8')}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert time.monotonic() < deadline, f"pgbouncer did not listen: {log.read_text(encoding='utf-8')}"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def bouncer_url(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The test database's URL, through its own PgBouncer as Debian ships it (nothing asked of its settings: it
    refuses the serving pool's lock_timeout and the verification read pool's read-only sessions)."""
    server = make_url(settings.database_url)
    with _pgbouncer(tmp_path, server) as port:
        yield server.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


@pytest.fixture
async def registry(settings: Settings, bouncer_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with REGISTRY_DATABASE_URL at the PgBouncer and a 2 s statement bound, and its client."""
    update = {"database_url": bouncer_url, "database_command_timeout_seconds": COMMAND_TIMEOUT_SECONDS}
    app = create_app(settings.model_copy(update=update))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://registry.test") as http:
            yield app, http
    finally:
        await dispose(app)


@asynccontextmanager
async def _held_directly(settings: Settings, key: int) -> AsyncIterator[None]:
    """The advisory lock ``key`` held by a direct connection's open transaction (as a batch holds it) for the block."""
    dsn = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    other = await asyncpg.connect(dsn)
    try:
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock($1)", key)
            yield
    finally:
        await other.close()


async def test_an_issuer_issues_revokes_and_reads_a_certificate_and_the_public_verifies_it_through_pgbouncer(
    registry: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = registry
    token = await ready_issuer(app, http)
    certificate = await issued_certificate(http, token)
    number = certificate["number"]
    scanned = await http.get(f"/v1/verify/{certificate['qr_token']}")
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["result"] == "valid"
    revoke = {"reason": "awarded in error", "reason_code": "issued_in_error"}
    revoked = await http.post(f"/v1/certificates/{number}/revoke", json=revoke, headers=bearer(token))
    assert revoked.status_code == 200, revoked.text
    shown = await http.get(f"/v1/certificates/{number}", headers=bearer(token))
    assert shown.status_code == 200, shown.text
    assert shown.json()["status"] == "revoked"


async def test_a_write_queued_behind_a_held_lock_through_pgbouncer_is_told_the_registry_is_busy(
    settings: Settings, registry: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    app, http = registry
    token = await ready_issuer(app, http)
    before = {table: await row_count(app, table) for table in WRITTEN}
    headers = {**bearer(token), "Idempotency-Key": "behind-the-batch"}
    body = certificate_body()
    async with _held_directly(settings, await _issuance_turn(app)):
        response = await http.post("/v1/certificates", json=body, headers=headers)
    problem = assert_problem(response, 503, slug="service-unavailable")
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS[Fault.locked])
    assert "busy" in str(problem["detail"]), problem  # Fault.locked, not "cannot be reached" nor "connection lost"
    assert "nothing was changed" in str(problem["detail"]), problem
    assert {table: await row_count(app, table) for table in WRITTEN} == before
    again = await http.post("/v1/certificates", json=body, headers=headers)  # the turn is free: the same key issues
    assert again.status_code == 201, again.text


async def _settings_sent(url: str, transactions: int) -> list[str]:
    """The SET statements an engine bounded as the registry's is sends over ``transactions`` transactions, each of
    which finds the lock bound in force."""
    engine = create_engine(url, command_timeout=COMMAND_TIMEOUT_SECONDS)
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    try:
        for _transaction in range(transactions):
            async with engine.begin() as connection:
                shown = (await connection.execute(text("SHOW lock_timeout"))).scalar_one()
                assert shown == f"{LOCK_WAIT_MS}ms", (url, shown)
    finally:
        await engine.dispose()
    return [sql for sql in sent if sql.upper().startswith("SET")]


async def test_a_direct_connection_takes_its_lock_bound_when_connecting_and_pgbouncers_per_transaction(
    settings: Settings, bouncer_url: str
) -> None:
    assert await _settings_sent(settings.database_url, 2) == []  # free: sent once, when connecting
    assert await _settings_sent(bouncer_url, 2) == [f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}"] * 2


async def test_a_pgbouncer_told_to_ignore_lock_timeout_still_gets_it_per_transaction(
    settings: Settings, tmp_path: Path
) -> None:
    # What an operator who met "unsupported startup parameter: lock_timeout" would write: PgBouncer then accepts the
    # parameter and drops it, and lock waits would run on to the statement bound (503 "cannot be reached").
    server = make_url(settings.database_url)
    with _pgbouncer(tmp_path, server, "ignore_startup_parameters = lock_timeout\n") as port:
        url = server.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        assert await _settings_sent(url, 2) == [f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}"] * 2
