"""On SQLite (the embedded default) a writer waits for the database's one write lock as long as its busy timeout
(30 s, ``registry.db``); a batch that holds it longer used to leave the request waiting behind it with a 500. It is
told the registry is busy, as on PostgreSQL (tests/integration/test_lock_wait_busy.py): 503 problem+json in the
reader's language with Retry-After, and nothing written. The lock is held by a second connection to the file.
"""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from registry.config import Settings
from registry.faults import RETRY_AFTER_SECONDS, Fault
from tests.checks import assert_problem
from tests.factories import bearer, certificate_body, ready_issuer, row_count

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"])]

BUSY_TIMEOUT_SECONDS = 30  # PRAGMA busy_timeout in registry.db
WRITTEN = ("certificates", "certificate_events", "audit_log", "transparency_leaves", "idempotency_records")


async def test_an_issuance_waiting_past_the_busy_timeout_is_told_the_registry_is_busy_and_nothing_is_written(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await ready_issuer(app, client)
    before = {table: await row_count(app, table) for table in WRITTEN}
    headers = {**bearer(token), "Idempotency-Key": "behind-the-writer", "Accept-Language": "zh"}
    body = certificate_body()
    other = sqlite3.connect(str(make_url(settings.database_url).database), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the write lock, as a batch's transaction holds it to its commit
        started = time.monotonic()
        response = await client.post("/v1/certificates", json=body, headers=headers)
        seconds = time.monotonic() - started
        other.execute("ROLLBACK")
    finally:
        other.close()
    problem = assert_problem(response, 503, slug="service-unavailable")
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS[Fault.locked])
    assert response.headers["Content-Language"] == "zh-CN"
    assert "正忙" in problem["detail"], problem
    assert seconds >= BUSY_TIMEOUT_SECONDS * 0.9
    assert {table: await row_count(app, table) for table in WRITTEN} == before
    again = await client.post("/v1/certificates", json=body, headers=headers)
    assert again.status_code == 201, again.text
