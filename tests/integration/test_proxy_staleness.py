"""The shipped nginx cache (``deploy/nginx/talent-registry.conf``) never hands out an answer past its lifetime: not
while the registry hangs (a revoked certificate must not go on looking "valid" through the cache), not as a revalidated
answer whose ``checked_at`` is older than max-age; and a cached answer does not carry one caller's X-Request-ID to
every later scanner.

nginx runs as a child process (tests/integration/nginx_support.py); the test skips without it, and fails instead under
CI (``.ci/run`` installs ``nginx-light``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from registry.config import Settings
from tests.checks import require_tool
from tests.factories import bearer, issued_certificate, ready_issuer, resident_id
from tests.integration.nginx_support import Nginx
from tests.integration.server_support import Server, free_port, settings_env

MAX_AGE = 2  # REGISTRY_VERIFY_MAX_AGE_SECONDS: s-maxage 1, and nginx's whole-second clock adds at most one more
HUNG_SCANS = 6  # scans sent while the registry hangs, half a second apart
SCAN_WAIT = 4.0  # how long a scanner waits for an answer through the proxy (nginx gives up on the registry at 15 s)


@pytest.fixture
def nginx_binary() -> str:
    return require_tool("nginx", "nginx-light")


@asynccontextmanager
async def _serving(
    settings: Settings, tmp_path: Path, nginx_binary: str, **env: str
) -> AsyncIterator[tuple[Server, Nginx]]:
    env = {**settings_env(settings), "REGISTRY_VERIFY_MAX_AGE_SECONDS": str(MAX_AGE), **env}
    server = Server(env, tmp_path / "server.log")
    await server.start()
    proxy = Nginx(nginx_binary, tmp_path / "nginx", port=free_port(), upstream_port=server.port)
    try:
        proxy.start()
        yield server, proxy
    finally:
        proxy.stop()
        with suppress(ProcessLookupError):
            server.resume()  # a test that paused it may have failed before resuming
        await server.stop()


async def _certificate(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    issuer = await ready_issuer(app, client)
    holder = {"name": "张三", "id_type": "resident_id", "id_number": resident_id(sequence=1)}
    return issuer, await issued_certificate(client, issuer, holder=holder)


async def _scan(scanner: httpx.AsyncClient, path: str) -> str:
    """What one scanner is told: the result, the status when there is no result, or "no answer" when it gives up."""
    try:
        answer = await scanner.get(path, timeout=SCAN_WAIT)
    except httpx.TimeoutException:
        return "no answer"
    if answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json"):
        return f"{answer.json()['result']} ({answer.headers.get('X-Cache-Status')})"
    return f"{answer.status_code} ({answer.headers.get('X-Cache-Status')})"


async def test_a_hanging_registry_never_lets_the_cache_say_valid_for_a_revoked_certificate(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path, nginx_binary: str
) -> None:
    """The cache held "valid"; the certificate is revoked and the registry then hangs. Once max-age has run out, every
    scan through the proxy gets an error or no answer: none may be given the expired "valid" while another request
    tries to refresh it (``proxy_cache_use_stale updating`` did that, for as long as the registry hung)."""
    issuer, certificate = await _certificate(app, client)
    path = f"/v1/verify/{certificate['qr_token']}"
    async with (
        _serving(settings, tmp_path, nginx_binary) as (server, proxy),
        httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as scanner,
    ):
        cached = await scanner.get(path)
        assert (cached.headers["X-Cache-Status"], cached.json()["result"]) == ("MISS", "valid")
        revoked = await client.post(
            f"/v1/certificates/{certificate['number']}/revoke",
            json={"reason": "found to be forged", "reason_code": "fraud"},
            headers=bearer(issuer),
        )
        assert revoked.status_code == 200, revoked.text
        told = await _hung_scans(server, scanner, path, lifetime=MAX_AGE)  # s-maxage 1, +1 s of nginx's rounding
        after = await scanner.get(path)
    assert not [t for t in told if t.startswith("valid")], told
    assert after.status_code == 200
    assert after.json()["result"] == "revoked"


async def _hung_scans(server: Server, scanner: httpx.AsyncClient, path: str, *, lifetime: float) -> list[str]:
    """What scanners are told once the cached answer has expired (``lifetime`` seconds after it was cached) and the
    registry hangs: the first scan starts a refresh that hangs, the others come while it does."""
    server.pause()
    try:
        await asyncio.sleep(lifetime + 0.2)
        scans = []
        for _ in range(HUNG_SCANS):
            scans.append(asyncio.create_task(_scan(scanner, path)))
            await asyncio.sleep(0.5)
        return list(await asyncio.gather(*scans))
    finally:
        server.resume()


async def test_a_hanging_registry_never_lets_the_cache_hand_out_an_expired_status_list(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path, nginx_binary: str
) -> None:
    """The same for the status lists, which credentials are checked against: an expired list (one that may still
    show a revoked credential as valid) is not handed out while the registry hangs."""
    issuer, certificate = await _certificate(app, client)
    credential = await client.get(f"/v1/certificates/{certificate['number']}/credential", headers=bearer(issuer))
    assert credential.status_code == 200, credential.text
    payload = credential.text.strip().split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    path = urlsplit(claims["credentialStatus"]["statusListCredential"]).path
    # A list valid for 62 s may be cached for 2 s (its validity counts from the minute it is served in).
    lists = {"REGISTRY_STATUS_LIST_VALIDITY_SECONDS": "62"}
    async with (
        _serving(settings, tmp_path, nginx_binary, **lists) as (server, proxy),
        httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as fetcher,
    ):
        cached = await fetcher.get(path)
        assert (cached.status_code, cached.headers["X-Cache-Status"]) == (200, "MISS"), cached.text
        assert cached.headers["Cache-Control"] == f"public, max-age={MAX_AGE}"
        # max-age with no s-maxage: nginx's whole-second clock may keep it one second longer.
        told = await _hung_scans(server, fetcher, path, lifetime=MAX_AGE + 1)
    assert not [t for t in told if t.startswith("200") or t.startswith("valid")], told


async def test_an_answer_from_the_cache_was_checked_within_max_age(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path, nginx_binary: str
) -> None:
    """Scans over several lifetimes of the cached answer: each one's ``checked_at`` is at most max-age old. A 304 to
    nginx's revalidation keeps the body nginx has, so an ETag that left ``checked_at`` out let it grow without end."""
    _, certificate = await _certificate(app, client)
    path = f"/v1/verify/{certificate['qr_token']}"
    ages: list[tuple[float, str]] = []
    async with (
        _serving(settings, tmp_path, nginx_binary) as (_, proxy),
        httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as scanner,
    ):
        started = time.monotonic()
        while time.monotonic() - started < 3 * MAX_AGE + 1:
            answer = await scanner.get(path)
            assert answer.status_code == 200, answer.text
            received = time.time()
            checked = datetime.fromisoformat(answer.json()["checked_at"]).timestamp()
            ages.append((round(received - checked, 2), answer.headers["X-Cache-Status"]))
            await asyncio.sleep(0.2)
    assert {status for _, status in ages} >= {"MISS", "HIT"}, ages
    assert max(age for age, _ in ages) < MAX_AGE + 0.5, ages


_NGINX_ID = re.compile(r"[0-9a-f]{32}")


async def test_a_cached_answer_does_not_carry_another_callers_request_id(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path, nginx_binary: str
) -> None:
    """Every answer carries nginx's id of this request, the one the registry logged for the request it answered; a
    caller's own X-Request-ID is neither stored with the cached answer nor passed to the registry."""
    _, certificate = await _certificate(app, client)
    path = f"/v1/verify/{certificate['qr_token']}"
    chosen = {"X-Request-ID": "attacker-chosen-id"}
    async with (
        _serving(settings, tmp_path, nginx_binary) as (server, proxy),
        httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as scanner,
    ):
        first = await scanner.get(path, headers=chosen)
        second = await scanner.get(path)
        third = await scanner.get(path, headers=chosen)
        missing = await scanner.get("/v1/verify/" + "A" * 24, headers=chosen)
        uncached = await scanner.get("/readyz", headers=chosen)
    answers = [first, second, third, missing, uncached]
    assert [a.headers.get("X-Cache-Status") for a in answers[:3]] == ["MISS", "HIT", "HIT"]
    ids = [a.headers["X-Request-ID"] for a in answers]
    assert all(_NGINX_ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids), ids
    logged = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    logged_ids = {entry.get("request_id") for entry in logged}
    assert {first.headers["X-Request-ID"], missing.headers["X-Request-ID"]} <= logged_ids
    assert "attacker-chosen-id" not in logged_ids


async def test_a_miss_and_an_answer_without_caching_headers_are_never_kept(
    settings: Settings, tmp_path: Path, nginx_binary: str
) -> None:
    """What the config's comment says: nginx keeps only what the registry lets caches keep. A verification miss is
    marked no-store; the JWKS, in a caching location, is kept only if the registry sends it with a max-age."""
    path = "/v1/verify/" + "B" * 24
    async with (
        _serving(settings, tmp_path, nginx_binary) as (_, proxy),
        httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as scanner,
    ):
        misses = [await scanner.get(path) for _ in range(2)]
        keys = [await scanner.get("/.well-known/jwks.json") for _ in range(2)]
    assert [m.status_code for m in misses] == [404, 404]
    assert [m.headers["Cache-Control"] for m in misses] == ["no-store", "no-store"]
    assert [m.headers["X-Cache-Status"] for m in misses] == ["MISS", "MISS"]
    assert [k.status_code for k in keys] == [200, 200]
    kept = "max-age" in keys[0].headers.get("Cache-Control", "") and "no-store" not in keys[0].headers["Cache-Control"]
    assert keys[1].headers["X-Cache-Status"] == ("HIT" if kept else "MISS"), dict(keys[1].headers)
