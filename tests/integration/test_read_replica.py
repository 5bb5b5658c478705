"""Verification reads from a real streaming replica that can fail (issue 15): the replica serves them while it keeps
up, a revocation on the primary reaches verifiers through it within the lag bound, and when it stops — or hangs — the
answers keep coming from the primary (never a 500), the first request alone paying the replica's timeout; when it is
back, reads return to it. With both down: 503 with ``Retry-After``.

Each test builds a throw-away primary and a hot standby of it (``pg_basebackup -R``) on ports of their own
(``cluster_support``), never the shared server, and removes them. Whether a read reached the replica is read from the
replica's own statistics: the scans of the certificates table (``pg_stat_user_tables``) move — nothing else the
registry runs there (the lag measurement) reads that table.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app, dispose
from registry.config import Settings
from tests.conftest import MASTER_KEY
from tests.factories import bearer, issued_certificate, ready_issuer
from tests.integration.cluster_support import ThrowAwayCluster

pytestmark = pytest.mark.slow

MAX_LAG = 2.0  # REGISTRY_READ_MAX_LAG_SECONDS
TIMEOUT = 1.0  # REGISTRY_READ_REPLICA_TIMEOUT_SECONDS
RESET = 1.0  # REGISTRY_READ_REPLICA_RESET_SECONDS
SCANS = 20


@dataclass
class Registry:
    primary: ThrowAwayCluster
    replica: ThrowAwayCluster
    app: FastAPI
    http: httpx.AsyncClient
    issuer: str
    certificate: dict[str, Any]

    @property
    def scan(self) -> str:
        return f"/v1/verify/{self.certificate['qr_token']}"


@asynccontextmanager
async def _registry(tmp_path: Path) -> AsyncIterator[Registry]:
    """Primary and replica, the app reading from the replica, one certificate issued on the primary and seen on the
    replica."""
    async with ThrowAwayCluster.running() as primary, primary.standby() as replica:
        settings = Settings(
            env="test",
            database_url=primary.url,
            database_read_url=replica.url,
            master_key=MASTER_KEY,
            public_base_url="https://registry.test",
            data_dir=tmp_path / "data",
            rate_limits_enabled=False,
            read_max_lag_seconds=MAX_LAG,
            read_lag_check_seconds=0.2,
            read_replica_timeout_seconds=TIMEOUT,
            read_replica_reset_seconds=RESET,
        )
        app = create_app(settings)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="https://registry.test"
            ) as http:
                issuer = await ready_issuer(app, http)
                certificate = await issued_certificate(http, issuer)
                registry = Registry(primary, replica, app, http, issuer, certificate)
                await _until_result(registry, "valid", within=10)
                yield registry
        finally:
            await dispose(app)


async def _until_result(registry: Registry, result: str, *, within: float) -> float:
    """Scan until the answer says ``result`` (a 404 while the replica has not yet replayed the issuance); how long."""
    started = time.monotonic()
    while True:
        answer = await registry.http.get(registry.scan)
        assert answer.status_code in (200, 404), answer.text
        if answer.status_code == 200 and answer.json()["result"] == result:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"no {result!r} answer within {within} s: {answer.text}"
        await asyncio.sleep(0.01)


async def _certificate_scans(cluster: ThrowAwayCluster) -> int:
    connection = await asyncpg.connect(cluster.dsn(), timeout=10)
    try:
        scans = await connection.fetchval(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
            " WHERE relname = 'certificates'"
        )
    finally:
        await connection.close()
    return int(scans or 0)


async def _until_reads_reach(registry: Registry, cluster: ThrowAwayCluster, *, within: float) -> float:
    """Scan (every answer 200) until the cluster's statistics show certificate reads; how long. A backend publishes
    its statistics at most once a second, so scans go on while waiting."""
    before = await _certificate_scans(cluster)
    started = time.monotonic()
    while await _certificate_scans(cluster) <= before:
        answer = await registry.http.get(registry.scan)
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < within, f"no verification read reached port {cluster.port} in {within} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _status_list(registry: Registry) -> str:
    """The path of the revocation status list the certificate is on."""
    connection = await asyncpg.connect(registry.primary.dsn(), timeout=10)
    try:
        list_id = await connection.fetchval("SELECT list_id FROM status_lists WHERE purpose = 'revocation'")
    finally:
        await connection.close()
    return f"/v1/status-lists/{registry.certificate['issuer_code']}/{list_id}-revocation"


async def _replica_report(registry: Registry) -> dict[str, Any]:
    ready = await registry.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert str(registry.replica.port) not in ready.text  # the pools are named, never their URLs
    report: dict[str, Any] = ready.json()["pools"]["replica"]
    return report


async def _timed_scans(registry: Registry) -> list[tuple[int, float]]:
    """``SCANS`` scans one after another: each one's status and seconds."""
    timings = []
    for _ in range(SCANS):
        started = time.monotonic()
        answer = await registry.http.get(registry.scan)
        timings.append((answer.status_code, time.monotonic() - started))
    return timings


def _figures(timings: list[tuple[int, float]]) -> str:
    later = [seconds for _, seconds in timings[1:]]
    return (
        f"statuses {sorted({status for status, _ in timings})}, first {timings[0][1] * 1000:.0f} ms,"
        f" later max {max(later) * 1000:.0f} ms, total {sum(seconds for _, seconds in timings):.2f} s"
    )


async def test_verification_reads_from_the_replica_and_sees_a_revocation_within_the_lag_bound(tmp_path: Path) -> None:
    async with _registry(tmp_path) as registry:
        await _until_reads_reach(registry, registry.replica, within=15)
        report = await _replica_report(registry)
        assert report["state"] == "ok", report
        assert report["breaker"] == "closed"
        assert 0 <= report["lag_seconds"] <= MAX_LAG

        revoked = await registry.http.post(
            f"/v1/certificates/{registry.certificate['number']}/revoke",
            json={"reason": "found to be forged", "reason_code": "fraud"},
            headers=bearer(registry.issuer),
        )
        assert revoked.status_code == 200, revoked.text
        seen_after = await _until_result(registry, "revoked", within=MAX_LAG)
        assert (await _replica_report(registry))["state"] == "ok"  # it was the replica that said so
        print(f"\nrevocation seen through the replica after {seen_after * 1000:.0f} ms (bound {MAX_LAG:.0f} s)")


async def test_a_replica_stopped_hard_sends_reads_to_the_primary_and_they_return_when_it_is_back(
    tmp_path: Path,
) -> None:
    async with _registry(tmp_path) as registry:
        await _until_reads_reach(registry, registry.replica, within=15)
        status_list = await _status_list(registry)
        assert (await registry.http.get(status_list)).status_code == 200
        await registry.replica.stop_immediately()

        started = time.monotonic()
        listed = await registry.http.get(status_list)  # the first read to meet the replica gone: a status list
        listed_in = time.monotonic() - started
        assert listed.status_code == 200, listed.text
        timings = await _timed_scans(registry)
        by_number = await registry.http.post(
            "/v1/verify", json={"number": registry.certificate["number"], "holder_name": "张三"}
        )
        page = await registry.http.get(f"/v/{registry.certificate['qr_token']}")
        stopped = f"status list first, {listed_in * 1000:.0f} ms; {SCANS} scans, {_figures(timings)}"
        print(f"\nreplica stopped (-m immediate): {stopped}")
        assert [status for status, _ in timings] == [200] * SCANS
        assert sum(seconds for _, seconds in timings) < SCANS * TIMEOUT / 4
        assert (by_number.status_code, page.status_code) == (200, 200)
        report = await _replica_report(registry)
        assert report["state"] == "down", report

        await registry.replica.start()
        back_after = await _until_reads_reach(registry, registry.replica, within=RESET + 15)
        assert (await _replica_report(registry))["state"] == "ok"
        print(f"replica started again: reads back on it after {back_after:.1f} s (breaker reset {RESET:.0f} s)")


async def test_a_replica_that_hangs_costs_one_timeout_not_one_per_request(tmp_path: Path) -> None:
    async with _registry(tmp_path) as registry:
        await _until_reads_reach(registry, registry.replica, within=15)
        registry.replica.freeze()
        try:
            timings = await _timed_scans(registry)
            report = await _replica_report(registry)
        finally:
            registry.replica.thaw()
        print(f"\nreplica hanging (SIGSTOP): {SCANS} scans, {_figures(timings)}")
        assert [status for status, _ in timings] == [200] * SCANS
        assert timings[0][1] < 3 * TIMEOUT
        assert all(seconds < TIMEOUT / 2 for _, seconds in timings[1:]), "a later scan waited for the replica"
        assert sum(seconds for _, seconds in timings) < SCANS * TIMEOUT / 4
        assert report["state"] == "down", report
        await _until_reads_reach(registry, registry.replica, within=RESET + 15)


async def test_with_primary_and_replica_both_down_verification_answers_503_with_retry_after(tmp_path: Path) -> None:
    async with _registry(tmp_path) as registry:
        await _until_reads_reach(registry, registry.replica, within=15)
        await registry.replica.stop_immediately()
        await registry.primary.stop_immediately()
        answers = [await registry.http.get(registry.scan) for _ in range(5)]
        answers.append(
            await registry.http.post(
                "/v1/verify", json={"number": registry.certificate["number"], "holder_name": "张三"}
            )
        )
        answers.append(await registry.http.get("/readyz"))
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert int(answer.headers["retry-after"]) > 0
        await registry.primary.start()  # the clusters' removal expects a running primary
