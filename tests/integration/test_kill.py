"""`kill -9` in the middle of a 10,000-row batch, restart, retry with the same key: every certificate exactly once.

The service runs as a real process (`registry serve`, one in-process uvicorn worker) on the test's private database.
The batch is sent, and once the whole body has been uploaded the test watches the database from outside for proof
that the server's write transaction is writing the batch and has not committed:

* PostgreSQL: a backend of this database holds ``RowExclusiveLock`` on ``certificates`` — certificate rows are
  being inserted (row locks end with the transaction, so the transaction is still open);
* SQLite: the write-ahead log has grown past its size before the request — the page cache is spilling the
  batch's uncommitted pages (10,000 holders and certificates are far more than the default 2 MB cache).

Then the server gets SIGKILL: no shutdown hook, no rollback, no chance to answer. Polling a signal rather than
sleeping a fixed time keeps the kill inside the write phase however fast or slow the machine; the elapsed times
(dry-run validation, kill point, full issuance on retry) are printed as evidence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from registry.audit.service import first_broken_record
from registry.auth.scopes import Role
from registry.config import Settings
from registry.db import transaction
from tests.factories import admin_token, bearer, certificate_body, create_client, create_issuer, resident_id
from tests.integration.server_support import Server

ROWS = 10_000
IDEMPOTENCY_KEY = "round-2026-BJ-AI-01"
BATCHES = "/v1/certificate-batches"
REQUEST_SECONDS = 180
Probe = Callable[[], Awaitable[bool]]


def _rows() -> list[dict[str, Any]]:
    """10,000 valid rows for 10,000 different people: 10 birth dates x sequence numbers 000-999."""
    rows = []
    for i in range(ROWS):
        number = resident_id(birth=f"198801{i // 1000 + 1:02d}", sequence=i % 1000)
        rows.append(certificate_body(holder={"name": f"学员{i:05d}", "id_type": "resident_id", "id_number": number}))
    assert len({row["holder"]["id_number"] for row in rows}) == ROWS
    return rows


class _Upload:
    """A request body sent in chunks, noting when the last byte has been handed to the server."""

    def __init__(self, body: bytes, chunk: int = 64 * 1024) -> None:
        self.body = body
        self.chunk = chunk
        self.sent_at: float | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), self.chunk):
            yield self.body[start : start + self.chunk]
        # httpx asks for the next chunk only after writing the previous one: the whole body is on the wire.
        self.sent_at = time.monotonic()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


_WRITER_LOCKS = """
    SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
    WHERE l.granted AND l.pid <> pg_backend_pid()
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND c.relname IN ('holders', 'certificates', 'certificate_events', 'audit_log', 'idempotency_records')
      AND l.mode = 'RowExclusiveLock'
"""

_OPEN_TRANSACTIONS = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
"""


async def _count(app: FastAPI, sql: str) -> int:
    async with transaction(app.state.sessions) as session:
        return int((await session.execute(text(sql))).scalar_one())


async def _wait_until(probe: Probe, *, batch: asyncio.Task[httpx.Response], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await probe():
        if batch.done():
            pytest.fail(f"the batch ended before any sign of its write phase, nothing was killed: {batch.result()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no sign of the batch being written within {seconds} s")
        await asyncio.sleep(0.02)


# Long: one scenario with a real server process: start, wait for proof of work, kill -9, restart, retry, check.
async def test_kill_9_in_the_middle_of_a_batch_then_retry_issues_each_certificate_once(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, backend: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    await create_issuer(client, await admin_token(app, client))
    client_id, client_secret = await create_client(app, role=Role.issuer, issuer_code="BJ-AI-COMMITTEE")
    rows = _rows()
    body = orjson.dumps({"certificates": rows})
    server = Server.for_settings(settings, tmp_path / "server.log")
    pg: asyncpg.Connection | None = None
    batch: asyncio.Task[httpx.Response] | None = None
    try:
        await server.start()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=REQUEST_SECONDS) as http:
            form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
            token_response = await http.post("/oauth/token", data=form)
            assert token_response.status_code == 200, token_response.text
            headers = {
                **bearer(token_response.json()["access_token"]),
                "Idempotency-Key": IDEMPOTENCY_KEY,
                "Content-Type": "application/json",
            }

            # Calibration only, for the printed evidence: the time to upload and validate all 10,000 rows.
            clock = time.monotonic()
            dry = await http.post(BATCHES, params={"dry_run": "true"}, content=body, headers=headers)
            dry_seconds = time.monotonic() - clock
            assert dry.status_code == 200, dry.text
            assert dry.json() == {"dry_run": True, "valid": True, "count": ROWS}

            upload = _Upload(body)
            seen: list[str] = []  # what showed the write phase, for the printed evidence
            if backend == "postgresql":
                pg = await asyncpg.connect(_asyncpg_dsn(settings.database_url), timeout=10)
                connection = pg

                async def writing() -> bool:
                    held = sorted({str(r["relname"]) for r in await connection.fetch(_WRITER_LOCKS)})
                    seen[:] = [f"RowExclusiveLock held on {', '.join(held)}"]
                    return upload.sent_at is not None and "certificates" in held

            else:
                wal = Path(f"{make_url(settings.database_url).database}-wal")
                wal_before = _size(wal)

                async def writing() -> bool:
                    size = _size(wal)
                    seen[:] = [f"WAL grew {wal_before} -> {size} bytes, transaction open"]
                    return upload.sent_at is not None and size > wal_before

            clock = time.monotonic()
            sized = {**headers, "Content-Length": str(len(body))}
            batch = asyncio.create_task(http.post(BATCHES, content=upload, headers=sized))
            await _wait_until(writing, batch=batch, seconds=REQUEST_SECONDS)
            await server.kill_9()
            killed_seconds = time.monotonic() - clock
            assert upload.sent_at is not None
            uploaded_seconds = upload.sent_at - clock
            with pytest.raises(httpx.TransportError):
                await asyncio.wait_for(batch, timeout=30)

        if pg is not None:
            # The killed server's backend aborts when it finds its client gone; until then it holds the
            # transaction-scoped idempotency and audit-chain advisory locks, and a retry would be told 409.
            deadline = time.monotonic() + 30
            while await pg.fetchval(_OPEN_TRANSACTIONS):
                assert time.monotonic() < deadline, "the killed server's transaction is still open after 30 s"
                await asyncio.sleep(0.05)

        certificates_after_kill = await _count(app, "SELECT count(*) FROM certificates")
        assert certificates_after_kill in (0, ROWS), f"a partial batch survived the kill: {certificates_after_kill}"
        committed = certificates_after_kill == ROWS
        if not committed:
            # All or nothing: the holders, audit records and idempotency record written before the kill are gone too.
            assert await _count(app, "SELECT count(*) FROM holders") == 0
            assert await _count(app, "SELECT count(*) FROM certificate_events") == 0
            assert await _count(app, "SELECT count(*) FROM idempotency_records") == 0
            assert await _count(app, "SELECT count(*) FROM audit_log WHERE action = 'certificate.issued'") == 0

        await server.start()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=REQUEST_SECONDS) as http:
            clock = time.monotonic()
            retry = await http.post(BATCHES, content=body, headers=headers)
            retry_seconds = time.monotonic() - clock
            assert retry.status_code == 201, retry.text
            assert (retry.headers.get("idempotent-replayed") == "true") is committed
            again = await http.post(BATCHES, content=body, headers=headers)
            assert again.status_code == 201, again.text
            assert again.headers["idempotent-replayed"] == "true"
            assert again.json() == retry.json()

        answer = retry.json()
        assert answer["count"] == ROWS
        assert [c["row"] for c in answer["certificates"]] == list(range(1, ROWS + 1))
        numbers = [c["number"] for c in answer["certificates"]]
        assert len(set(numbers)) == ROWS
        async with transaction(app.state.sessions) as session:
            result = await session.execute(text("SELECT number, holder_name FROM certificates"))
            stored = {str(number): str(name) for number, name in result}
            distinct = (
                await session.execute(
                    text("SELECT count(*), count(DISTINCT number), count(DISTINCT holder_id) FROM certificates")
                )
            ).one()
            assert await first_broken_record(session) is None
        assert tuple(distinct) == (ROWS, ROWS, ROWS)
        assert set(stored) == set(numbers)
        assert [stored[n] for n in numbers] == [row["holder"]["name"] for row in rows]
        assert await _count(app, "SELECT count(*) FROM holders") == ROWS
        assert await _count(app, "SELECT count(*) FROM certificate_events WHERE event = 'issued'") == ROWS
        assert await _count(app, "SELECT count(*) FROM audit_log WHERE action = 'certificate.issued'") == ROWS
        assert await _count(app, "SELECT count(*) FROM idempotency_records") == 1

        print(
            f"\n[{backend}] dry run (upload + validate {ROWS} rows) {dry_seconds:.2f} s;"
            f" real batch: body uploaded at {uploaded_seconds:.2f} s, SIGKILL at {killed_seconds:.2f} s ({seen[0]});"
            f" {'committed before the kill' if committed else 'nothing committed'};"
            f" full batch on retry {retry_seconds:.2f} s; test {time.monotonic() - started:.1f} s"
        )
    finally:
        if batch is not None and not batch.done():
            batch.cancel()
        await server.stop()
        if pg is not None:
            await pg.close()
