"""The shipped nginx cache (``deploy/nginx/talent-registry.conf``) in front of a real `registry serve`: scans are
served from the cache, nothing private or posted is ever stored, a revocation gets through within max-age (and the
second nginx rounds its clock to), and a client cannot choose the address the registry's abuse limits count it under.

nginx runs as a child process with its own prefix (tests/integration/nginx_support.py); the test skips without it,
and fails instead under CI (``.ci/run`` installs ``nginx-light``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.config import Settings
from tests.checks import require_tool
from tests.factories import bearer, issued_certificate, ready_issuer, resident_id
from tests.integration.nginx_support import Nginx
from tests.integration.rate_limit_support import clear_of_a_window_end
from tests.integration.server_support import Server, free_port, settings_env

MAX_AGE = 2  # REGISTRY_VERIFY_MAX_AGE_SECONDS of the served registry: short, so the test waits little


@pytest.fixture
def nginx_binary() -> str:
    return require_tool("nginx", "nginx-light")


@asynccontextmanager
async def _serving(settings: Settings, tmp_path: Path, nginx_binary: str, **env: str) -> AsyncIterator[Nginx]:
    """`registry serve` on the test's database (configured by ``env`` besides), and the shipped nginx in front."""
    server = Server({**settings_env(settings), **env}, tmp_path / "server.log")
    await server.start()
    proxy = Nginx(nginx_binary, tmp_path / "nginx", port=free_port(), upstream_port=server.port)
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.stop()
        await server.stop()


@pytest.fixture
async def proxy(settings: Settings, tmp_path: Path, nginx_binary: str) -> AsyncIterator[Nginx]:
    async with _serving(settings, tmp_path, nginx_binary, REGISTRY_VERIFY_MAX_AGE_SECONDS=str(MAX_AGE)) as running:
        yield running


async def _certificate(app: FastAPI, client: httpx.AsyncClient, sequence: int = 1) -> tuple[str, dict[str, Any]]:
    issuer = await ready_issuer(app, client)
    holder = {"name": "张三", "id_type": "resident_id", "id_number": resident_id(sequence=sequence)}
    return issuer, await issued_certificate(client, issuer, holder=holder)


def test_the_shipped_configuration_passes_nginx_t(tmp_path: Path, nginx_binary: str) -> None:
    proxy = Nginx(nginx_binary, tmp_path, port=free_port(), upstream_port=free_port())
    checked = proxy.check()
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


async def test_a_second_scan_is_served_from_the_cache(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path, nginx_binary: str
) -> None:
    _, certificate = await _certificate(app, client)
    # A longer max-age than the other tests': with MAX_AGE's 2 s (s-maxage 1) nginx keeps an answer up to a second,
    # and a slow machine could take that long between the three scans.
    lasting = {"REGISTRY_VERIFY_MAX_AGE_SECONDS": "30"}
    async with (
        _serving(settings, tmp_path, nginx_binary, **lasting) as proxy,
        httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as scanner,
    ):
        first = await scanner.get(f"/v1/verify/{certificate['qr_token']}")
        second = await scanner.get(f"/v1/verify/{certificate['qr_token']}")
        revalidated = await scanner.get(
            f"/v1/verify/{certificate['qr_token']}", headers={"If-None-Match": first.headers["ETag"]}
        )
    assert first.status_code == 200, first.text
    assert first.headers["X-Cache-Status"] == "MISS"
    assert second.status_code == 200
    assert second.headers["X-Cache-Status"] == "HIT"
    assert second.json()["result"] == "valid"
    assert second.headers["ETag"] == first.headers["ETag"]
    # Scanners are told to ask again each time, so a phone's own cache adds nothing to the max-age.
    assert second.headers["Cache-Control"] == "no-cache"
    assert revalidated.status_code == 304
    assert revalidated.headers["X-Cache-Status"] == "HIT"


async def test_a_request_with_credentials_or_cookies_is_never_stored_or_served_from_the_cache(
    app: FastAPI, client: httpx.AsyncClient, proxy: Nginx
) -> None:
    issuer, certificate = await _certificate(app, client)
    scan = f"/v1/verify/{certificate['qr_token']}"
    async with httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as http:
        authorised = [(await http.get(scan, headers=bearer(issuer))).headers["X-Cache-Status"] for _ in range(2)]
        with_cookie = (await http.get(scan, headers={"Cookie": "holder_session=x"})).headers["X-Cache-Status"]
        anonymous = (await http.get(scan)).headers["X-Cache-Status"]
        own = [await http.get(f"/v1/certificates/{certificate['number']}", headers=bearer(issuer)) for _ in range(2)]
    assert authorised == ["BYPASS", "BYPASS"]
    assert with_cookie == "BYPASS"
    assert anonymous == "MISS"  # none of the requests above left an answer in the cache
    assert [r.status_code for r in own] == [200, 200]
    assert all("X-Cache-Status" not in r.headers for r in own), [dict(r.headers) for r in own]  # not a cached route
    assert all("no-store" in r.headers.get("Cache-Control", "no-store") for r in own)


async def test_a_post_is_never_cached(app: FastAPI, client: httpx.AsyncClient, proxy: Nginx) -> None:
    _, certificate = await _certificate(app, client)
    question = {"number": certificate["number"], "holder_name": "张三"}
    async with httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as http:
        by_number = [await http.post("/v1/verify", json=question) for _ in range(2)]
        on_scan_route = [await http.post(f"/v1/verify/{certificate['qr_token']}", json={}) for _ in range(2)]
    assert [r.status_code for r in by_number] == [200, 200]
    assert [r.json()["result"] for r in by_number] == ["valid", "valid"]
    assert all(r.headers.get("X-Cache-Status") in (None, "BYPASS") for r in by_number + on_scan_route)
    assert [r.status_code for r in on_scan_route] == [405, 405]


async def test_a_revocation_reaches_scanners_behind_the_cache_within_max_age(
    app: FastAPI, client: httpx.AsyncClient, proxy: Nginx
) -> None:
    issuer, certificate = await _certificate(app, client)
    scan = f"/v1/verify/{certificate['qr_token']}"
    async with httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as scanner:
        cached = await scanner.get(scan)
        assert (cached.headers["X-Cache-Status"], cached.json()["result"]) == ("MISS", "valid")
        revoked = await client.post(
            f"/v1/certificates/{certificate['number']}/revoke",
            json={"reason": "found to be forged", "reason_code": "fraud"},
            headers=bearer(issuer),
        )
        assert revoked.status_code == 200, revoked.text
        soon = await scanner.get(scan)
        # Until max-age runs out a scanner may still get the cached "valid"; anything fetched anew says "revoked".
        if soon.headers["X-Cache-Status"] == "HIT":
            assert soon.json()["result"] == "valid"
        else:
            assert soon.json()["result"] == "revoked"
        # s-maxage is one second under max-age, so nginx's whole-second clock still ends within max-age.
        await asyncio.sleep(MAX_AGE)
        later = await scanner.get(scan)
    assert later.status_code == 200
    assert later.json()["result"] == "revoked"
    assert later.headers["X-Cache-Status"] in ("EXPIRED", "MISS", "REVALIDATED")


async def test_a_forwarded_for_header_from_the_client_does_not_escape_the_abuse_limit(
    settings: Settings, tmp_path: Path, nginx_binary: str
) -> None:
    """nginx replaces X-Forwarded-For with the address it saw: a client that invents a new address per request is
    still counted as itself (an appending proxy would let a client on a trusted address pick any address)."""
    limited = {"REGISTRY_RATE_LIMITS_ENABLED": "true", "REGISTRY_RATE_LIMIT_VERIFY": "3/minute"}
    async with (
        _serving(settings, tmp_path, nginx_binary, **limited) as proxy,
        httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as http,
    ):
        await clear_of_a_window_end()  # the server counts in one-minute windows on the same clock
        statuses = [
            (await http.get(f"/v1/verify/{'A' * 23}{i}", headers={"X-Forwarded-For": f"203.0.113.{i}"})).status_code
            for i in range(6)
        ]
    assert statuses[:3] == [404, 404, 404]  # misses are not cached: every one reached the registry
    assert statuses[3:] == [429, 429, 429]


async def test_the_site_answers_over_ipv6_and_counts_an_ipv6_client_as_its_own(
    settings: Settings, tmp_path: Path, nginx_binary: str
) -> None:
    """The shipped site listens on IPv6 as well as IPv4 (public-service sites in China must answer over IPv6), and
    nginx hands the registry the IPv6 address it saw: a phone over IPv6 is not counted with the IPv4 clients."""
    limited = {"REGISTRY_RATE_LIMITS_ENABLED": "true", "REGISTRY_RATE_LIMIT_VERIFY": "3/minute"}
    async with _serving(settings, tmp_path, nginx_binary, **limited) as proxy:
        await clear_of_a_window_end()
        async with httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as over_ipv4:
            ipv4 = [(await over_ipv4.get(f"/v1/verify/{'B' * 23}{i}")).status_code for i in range(4)]
        async with httpx.AsyncClient(base_url=proxy.base_url6, timeout=10) as over_ipv6:
            ipv6 = [(await over_ipv6.get(f"/v1/verify/{'C' * 23}{i}")).status_code for i in range(4)]
    assert ipv4 == [404, 404, 404, 429]
    assert ipv6 == [404, 404, 404, 429]
