"""An address with a slash too many (``/v1/certificates/``) is redirected to the one that exists, and the redirect
names the path only: never the host the request's ``Host`` header (or a proxy header) named, which a cache in front
of the registry would otherwise keep and hand to everyone (host-header injection)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server_support import Server

EVIL = {"Host": "evil.example"}


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/v1/certificates/", "/v1/certificates"),
        ("/v1/certificates/?status=active&q=%E5%BC%A0", "/v1/certificates?status=active&q=%E5%BC%A0"),
        ("/holder/", "/holder"),
        ("/v/?lang=en", "/v?lang=en"),
        ("/v1/catalogue/", "/v1/catalogue"),
    ],
)
async def test_a_slash_redirect_names_the_path_not_the_host_the_request_named(
    client: httpx.AsyncClient, path: str, location: str
) -> None:
    answer = await client.get(path, headers=EVIL)
    assert answer.status_code == 307, answer.text
    assert answer.headers["location"] == location
    assert "evil.example" not in answer.text


async def test_a_path_that_would_redirect_to_another_host_is_not_found(client: httpx.AsyncClient) -> None:
    for path in ("//v1/certificates/", "///", "/\\evil.example/"):
        answer = await client.get(path, headers=EVIL)
        assert answer.status_code == 404, (path, answer.headers.get("location"))


async def test_an_escaped_twin_is_escaped_again(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v/a%20b%5Cc/")  # a token as it could be mistyped: the page for /v/{token}
    assert answer.status_code == 307
    assert answer.headers["location"] == "/v/a%20b%5Cc"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with Server.on_empty_sqlite(tmp_path) as running:
        yield running


async def test_behind_a_trusted_proxy_the_redirect_still_names_no_host(server: Server) -> None:
    """`registry serve` trusts X-Forwarded-* from 127.0.0.1 (uvicorn's proxy headers): the scheme it sets, and the
    Host or X-Forwarded-Host a client sends through the proxy, reach no Location."""
    forwarded = {**EVIL, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "X-Forwarded-For": "1.2.3.4"}
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/v1/catalogue/?cert_type=title", headers=forwarded)
    assert answer.status_code == 307
    assert answer.headers["location"] == "/v1/catalogue?cert_type=title"
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)  # an absolute-form request target
    try:
        writer.write(
            b"GET http://evil.example/v1/catalogue/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 307 "), head
    assert b"\r\nlocation: /v1/catalogue\r\n" in head.lower(), head
