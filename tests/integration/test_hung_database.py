"""A primary that hangs — every PostgreSQL process stopped (SIGSTOP), as in a network partition or a frozen VM: the
connections stay open and nothing answers — is a fault like one that is down: requests are answered 503 problem+json
with ``Retry-After`` once ``REGISTRY_DATABASE_COMMAND_TIMEOUT_SECONDS`` has passed, ``/readyz`` within its own short
deadline, not after the outage; when the server answers again, so does the registry, without a restart.

On a throw-away cluster of the test's own (``cluster_support``), never the shared server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app, dispose
from registry.config import Settings
from tests.conftest import MASTER_KEY
from tests.factories import bearer, certificate_body, issued_certificate, ready_issuer, resident_id
from tests.integration.cluster_support import ThrowAwayCluster

pytestmark = pytest.mark.slow

COMMAND_TIMEOUT_SECONDS = 1.0
# A statement that times out, then the connection thrown away, and a new one that cannot open: a few timeouts at most.
ANSWER_WITHIN_SECONDS = 6.0
READYZ_WITHIN_SECONDS = 2.5  # api.routes.ops.READY_DEADLINE_SECONDS, and a margin
HOLDER_NAME = "张三"  # tests.factories.certificate_body's holder


@dataclass
class Answer:
    response: httpx.Response
    seconds: float


@asynccontextmanager
async def _registry(
    cluster: ThrowAwayCluster, tmp_path: Path, *, command_timeout: float = COMMAND_TIMEOUT_SECONDS
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = Settings(
        env="test",
        database_url=cluster.url,
        master_key=MASTER_KEY,
        public_base_url="https://registry.test",
        data_dir=tmp_path / "data",
        rate_limits_enabled=False,
        database_command_timeout_seconds=command_timeout,
    )
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://registry.test") as http:
            yield app, http
    finally:
        await dispose(app)


async def _timed(request: Awaitable[httpx.Response]) -> Answer:
    started = time.monotonic()
    response = await request
    return Answer(response, time.monotonic() - started)


async def _later(seconds: float, answer: Awaitable[Answer]) -> Answer:
    await asyncio.sleep(seconds)
    return await answer


async def _while_frozen(cluster: ThrowAwayCluster, requests: dict[str, Awaitable[Answer]]) -> dict[str, Any]:
    """Each request, sent while every process of the cluster is stopped: its answer with the time it took, or
    ``None`` for one still unanswered after ANSWER_WITHIN_SECONDS (it is answered after the thaw, and dropped)."""
    cluster.freeze()
    try:
        tasks = {name: asyncio.ensure_future(request) for name, request in requests.items()}
        await asyncio.wait(tasks.values(), timeout=ANSWER_WITHIN_SECONDS)
        late = {name for name, task in tasks.items() if not task.done()}
    finally:
        cluster.thaw()  # also when the test fails: a frozen cluster would hear no pg_ctl stop
    answers = dict(zip(tasks, await asyncio.gather(*tasks.values(), return_exceptions=True), strict=True))
    return {name: None if name in late else answer for name, answer in answers.items()}


def _assert_clean_503(name: str, answer: Any, *, within: float) -> None:
    assert answer is not None, f"{name}: no answer within {ANSWER_WITHIN_SECONDS} s of the database hanging"
    assert isinstance(answer, Answer), f"{name}: {answer!r}"
    response = answer.response
    assert response.status_code == 503, f"{name}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", name
    assert int(response.headers["Retry-After"]) > 0, name
    assert answer.seconds < within, f"{name}: answered after {answer.seconds:.1f} s"


async def test_requests_to_a_hung_primary_get_503_within_the_command_timeout_and_readyz_within_its_deadline(
    tmp_path: Path,
) -> None:
    async with ThrowAwayCluster.running() as cluster, _registry(cluster, tmp_path) as (app, http):
        issuer = await ready_issuer(app, http)
        certificate = await issued_certificate(http, issuer)
        question = {"number": certificate["number"], "holder_name": HOLDER_NAME}
        # Warm: the pools hold open connections to the server that is about to hang, as they would in service.
        assert (await http.get(f"/v1/verify/{certificate['qr_token']}")).status_code == 200
        assert (await http.post("/v1/verify", json=question)).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        issue_headers = {**bearer(issuer), "Idempotency-Key": "during-the-hang"}
        body = certificate_body(holder={"name": "李四", "id_type": "resident_id", "id_number": resident_id(sequence=7)})

        answers = await _while_frozen(
            cluster,
            {
                "readyz": _timed(http.get("/readyz")),
                "verify by token": _timed(http.get(f"/v1/verify/{certificate['qr_token']}")),
                "verify by number": _timed(http.post("/v1/verify", json=question)),
                "issue": _timed(http.post("/v1/certificates", json=body, headers=issue_headers)),
            },
        )

        _assert_clean_503("readyz", answers.pop("readyz"), within=READYZ_WITHIN_SECONDS)
        for name, answer in answers.items():
            _assert_clean_503(name, answer, within=ANSWER_WITHIN_SECONDS)
        # The server answers again: so does the registry, on the same pools, and the issuance's outcome is known.
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get(f"/v1/verify/{certificate['qr_token']}")).status_code == 200
        assert (await http.post("/v1/verify", json=question)).status_code == 200
        retried = await http.post("/v1/certificates", json=body, headers=issue_headers)
        assert retried.status_code == 201, retried.text


async def test_readyz_answers_503_within_its_deadline_while_statements_may_wait_longer(tmp_path: Path) -> None:
    async with (
        ThrowAwayCluster.running() as cluster,
        _registry(cluster, tmp_path, command_timeout=30.0) as (_app, http),
    ):
        assert (await http.get("/readyz")).status_code == 200
        # The second check comes after the first gave up, while the first one's statement still waits on the
        # server: it is not stuck behind it, nor does it take another connection.
        answers = await _while_frozen(
            cluster,
            {
                "first readyz": _timed(http.get("/readyz")),
                "second readyz": _later(READYZ_WITHIN_SECONDS, _timed(http.get("/readyz"))),
            },
        )
        for name, answer in answers.items():
            _assert_clean_503(name, answer, within=READYZ_WITHIN_SECONDS)
        assert (await http.get("/readyz")).status_code == 200
