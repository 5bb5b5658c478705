"""What the shipped nginx site (``deploy/nginx/talent-registry.conf``) writes to its access log: what the registry's own
log keeps (api/logs.py) — method, path, status — and never a query string, a verification or share-link token, or an
identity number.

nginx runs in the http { } Debian's nginx.conf gives it, whose ``access_log /var/log/nginx/access.log;`` (format
``combined``, the whole request line with its query string) a site without an access_log of its own writes to
(tests/integration/nginx_support.py). It runs as a child process; the tests skip without it, and fail instead under CI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from registry.config import Settings
from tests.checks import require_tool
from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, resident_id
from tests.integration.holder_support import signed_in_holder
from tests.integration.nginx_support import Nginx
from tests.integration.server_support import Server, free_port, settings_env


@pytest.fixture
def nginx_binary() -> str:
    return require_tool("nginx", "nginx-light")


@asynccontextmanager
async def _proxied(settings: Settings, tmp_path: Path, nginx_binary: str) -> AsyncIterator[httpx.AsyncClient]:
    """`registry serve` on the test's database with the shipped nginx in front, and a client talking to nginx. The
    logs are complete once this exits (nginx is stopped gracefully, flushing its buffers)."""
    server = Server(settings_env(settings), tmp_path / "server.log")
    await server.start()
    proxy = Nginx(nginx_binary, tmp_path / "nginx", port=free_port(), upstream_port=server.port)
    try:
        proxy.start()
        async with httpx.AsyncClient(base_url=proxy.base_url) as through:
            yield through
    finally:
        proxy.stop()
        await server.stop()


def _logs(tmp_path: Path) -> tuple[str, str]:
    """The site's own access log and Debian's http-wide one, as written."""
    root = tmp_path / "nginx"
    site, debian = root / "talent-registry.access.log", root / "access.log"
    return (
        site.read_text(encoding="utf-8", errors="replace"),
        debian.read_text(encoding="utf-8", errors="replace") if debian.exists() else "",
    )


async def test_a_body_searching_by_identity_number_leaves_no_query_string_in_the_proxy_access_log(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path, nginx_binary: str
) -> None:
    """A body searching its certificates by holder puts the identity number and name in the query string
    (GET /v1/certificates?holder_id_number=...). The registry's log keeps no query string; nor may the proxy's: the
    site logs method, path and status in its own format, and Debian's ``combined`` log gets none of its requests.
    An identity number typed into a path (a number looked up as a certificate number) is masked too."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin, code="BJ-BODY-A")
    body_a = await issuer_token(app, client, "BJ-BODY-A")
    number = resident_id(birth="19820214")
    await issued_certificate(client, body_a, holder={"name": "赵六", "id_type": "resident_id", "id_number": number})
    async with _proxied(settings, tmp_path, nginx_binary) as through:
        query = {"holder_name": "赵六", "holder_id_type": "resident_id", "holder_id_number": number}
        found = await through.get("/v1/certificates", params=query, headers=bearer(body_a))
        assert found.status_code == 200, found.text
        assert len(found.json()["data"]) == 1
        exported = await through.get("/v1/certificates/export.csv", params=query, headers=bearer(body_a))
        assert exported.status_code == 200, exported.text
        mistyped = await through.get(f"/v1/certificates/{number}", headers=bearer(body_a))
        assert mistyped.status_code == 404, mistyped.text
    site, debian = _logs(tmp_path)
    assert '"GET /v1/certificates HTTP/1.1" 200' in site, site  # the search was logged, by the site's own log
    assert '"GET /v1/certificates/export.csv HTTP/1.1" 200' in site, site
    assert '"GET /v1/certificates/[identity number] HTTP/1.1" 404' in site, site
    assert debian == "", f"Debian's combined log got the site's requests: {debian.strip()}"
    for logged in (site, debian):
        assert number not in logged, f"the proxy logged a full identity number in clear: {logged.strip()}"
        assert "holder_" not in logged, f"the proxy logged a query string: {logged.strip()}"
        assert "%E8%B5%B5" not in logged  # the name, URL-encoded ...
        assert "赵六" not in logged  # ... or in clear


async def test_verification_and_share_link_tokens_are_not_in_the_proxy_access_log(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path, nginx_binary: str
) -> None:
    """A QR token or a share link's token opens the certificate to whoever has it: the registry logs the route's
    template (``/v1/verify/{token}``), never the path sent, and the proxy logs the same templates."""
    holder = await signed_in_holder(app, client)
    link = await client.post(
        "/v1/holder/share-links",
        json={"number": holder.certificate["number"], "purpose": "hiring"},
        headers=holder.headers,
    )
    assert link.status_code == 201, link.text
    share_path = httpx.URL(link.json()["url"]).path
    share_token = share_path.rsplit("/", 1)[-1]
    qr_token = holder.certificate["qr_token"]
    async with _proxied(settings, tmp_path, nginx_binary) as through:
        for path in (f"/v1/verify/{qr_token}", f"/v/{qr_token}", share_path):
            scanned = await through.get(path)
            assert scanned.status_code == 200, (path, scanned.text)
    site, debian = _logs(tmp_path)
    for template in ("/v1/verify/{token}", "/v/{token}", "/s/{token}"):
        assert f'"GET {template} HTTP/1.1" 200' in site, site
    for logged in (site, debian):
        assert qr_token not in logged, f"the proxy logged a QR token: {logged.strip()}"
        assert share_token not in logged, f"the proxy logged a share link's token: {logged.strip()}"


async def test_an_upstream_failure_writes_no_identity_number_or_token_to_the_proxy_logs(
    tmp_path: Path, nginx_binary: str
) -> None:
    """The registry down for a restart: nginx answers 502, and its error log at ``error`` would write the whole
    request line and upstream address of each request (``request: "GET /v1/certificates?holder_id_number=…"``). The
    site logs errors only at ``crit``: neither the search's identity number nor the QR token reaches any log file, and
    the access log still says the upstream failed (``$upstream_status``)."""
    root = tmp_path / "nginx"
    proxy = Nginx(nginx_binary, root, port=free_port(), upstream_port=free_port())  # nothing listens upstream
    proxy.start()
    try:
        async with httpx.AsyncClient(base_url=proxy.base_url) as through:
            search = {"holder_id_number": "110105198202141004", "holder_name": "张三"}
            for path, params in (("/v1/certificates", search), ("/v/QRTOKENSECRET0123456789", {})):
                failed = await through.get(path, params=params)
                assert failed.status_code == 502, (path, failed.text)
    finally:
        proxy.stop()
    logs = {log.name: log.read_text(encoding="utf-8", errors="replace") for log in sorted(root.glob("*.log"))}
    assert "talent-registry.error.log" in logs, sorted(logs)  # the site's own error log, which the harness moved
    for name, text in logs.items():
        assert "110105198202141004" not in text, (name, text)
        assert "QRTOKENSECRET0123456789" not in text, (name, text)
    site = logs["talent-registry.access.log"]
    assert '"GET /v1/certificates HTTP/1.1" 502 502 ' in site, site
    assert '"GET /v/{token} HTTP/1.1" 502 502 ' in site, site
