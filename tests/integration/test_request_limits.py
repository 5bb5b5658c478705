"""`registry serve` bounds the request head: a request line over 8 KiB gets 414, a head (request line and headers)
over 32 KiB gets 431, both as problem+json and with the connection closed; a 256 MB header is cut off after at most
one read past the limit, so the server's memory does not grow with it. Raw sockets against a real process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.server import MAX_REQUEST_HEAD_BYTES, MAX_REQUEST_LINE_BYTES
from tests.integration.server_support import Server, exchange

MiB = 1 << 20


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A fresh `registry serve` on an empty SQLite database it migrates itself (the HTTP layer is the same on both)."""
    async with Server.on_empty_sqlite(tmp_path) as running:
        yield running


def _get(path: str = "/healthz", headers: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: registry.test\r\n" + headers + b"\r\n"


def _assert_refused(answer: tuple[int, dict[str, str], bytes], status: int) -> None:
    code, headers, body = answer
    assert code == status, (code, body)
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["type"].endswith(f"/http-{status}")
    assert str(MAX_REQUEST_HEAD_BYTES if status == 431 else MAX_REQUEST_LINE_BYTES) in problem["detail"]


def _memory_kib(pid: int) -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


async def test_a_64_kib_header_is_refused_with_431_and_the_server_answers_on(server: Server) -> None:
    _assert_refused(await exchange(server, _get(headers=b"X-Padding: " + b"a" * (64 * 1024) + b"\r\n")), 431)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_many_small_headers_adding_up_past_the_limit_are_refused_with_431(server: Server) -> None:
    many = b"".join(b"X-Header-%05d: value\r\n" % index for index in range(3000))  # ~75 KiB, each line tiny
    _assert_refused(await exchange(server, _get(headers=many)), 431)


async def test_a_request_line_over_8_kib_is_refused_with_414(server: Server) -> None:
    _assert_refused(await exchange(server, _get("/v1/catalogue?q=" + "x" * (9 * 1024))), 414)


async def test_a_head_just_under_the_limits_and_a_large_body_are_answered_as_usual(server: Server) -> None:
    code, headers, _ = await exchange(server, _get("/healthz?" + "x" * 7000, b"X-Padding: " + b"a" * 20_000 + b"\r\n"))
    assert code == 200
    assert headers["x-request-id"]
    # 2 MiB of body sent with its head in one go: bodies are not the head's business (this one is refused for want
    # of a token, after its head was read in full).
    upload = b"POST /v1/certificate-batches HTTP/1.1\r\nHost: registry.test\r\nContent-Type: text/csv\r\n"
    upload += b"Content-Length: %d\r\n\r\n" % (2 * MiB) + b"x" * (2 * MiB)
    code, _, _ = await exchange(server, upload)
    assert code == 401


async def test_large_bodies_one_after_another_on_one_connection_are_not_taken_for_heads(server: Server) -> None:
    """The read that ends one request's body and the next request's head belong to different messages."""
    secret = b"a" * 900_000
    body = b"grant_type=client_credentials&client_id=trc_00000000000000000000&client_secret=" + secret
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(base_url=server.base_url, limits=httpx.Limits(max_connections=1)) as http:
        statuses = [(await http.post("/oauth/token", content=body, headers=headers)).status_code for _ in range(3)]
        statuses.append((await http.get("/healthz")).status_code)
    assert statuses == [422, 422, 422, 200]  # refused for what the bodies say (a secret too long), not their size


async def test_a_256_mb_header_is_cut_off_without_the_server_holding_it(server: Server) -> None:
    before = _memory_kib(server.pid)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    answer = asyncio.create_task(reader.read(4096))
    sent = 0
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: registry.test\r\nX-Padding: ")
    try:
        while sent < 256 * MiB and not answer.done():
            writer.write(b"a" * MiB)
            await writer.drain()
            sent += MiB
            # drain() returns at once while the kernel takes the bytes: yield, so the answer is seen when it comes
            await asyncio.sleep(0.001)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server closed the connection: what it answered before that is in ``answer``
    response = await asyncio.wait_for(answer, timeout=10)
    writer.close()
    after = _memory_kib(server.pid)
    assert response.startswith(b"HTTP/1.1 431 "), response[:200]
    assert sent < 64 * MiB, f"the server kept reading: {sent // MiB} MiB sent before it answered"
    grown = (after["VmHWM"] - before["VmHWM"]) // 1024
    assert grown < 32, f"the server's peak memory grew by {grown} MiB"


BROWSER_ACCEPT = b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"


async def test_a_browser_opening_a_page_with_too_large_a_head_gets_the_page_in_its_language(server: Server) -> None:
    padding = b"Cookie: " + b"a" * (40 * 1024) + b"\r\n"  # its Accept came first: it is known to want HTML
    code, headers, body = await exchange(server, _get("/holder", BROWSER_ACCEPT + padding))
    assert code == 431, body[:300]
    assert headers["content-type"].startswith("text/html")
    assert headers["connection"] == "close"
    assert headers["content-language"] == "zh-CN"  # the page's language: Chinese unless ?lang=en
    assert "Accept" in headers["vary"]
    text = body.decode()
    assert "请求头过大" in text
    assert f"请求行与请求头不能超过 {MAX_REQUEST_HEAD_BYTES} 字节" in text
    assert 'href="/holder?lang=zh"' in text
    english = await exchange(server, _get("/v/abc?lang=en", BROWSER_ACCEPT + padding))
    assert english[0] == 431
    assert english[1]["content-language"] == "en"
    assert english[2].decode().index("Request header fields too large") < english[2].decode().index("请求头过大")


async def test_a_browser_whose_accept_comes_after_the_limit_or_outside_the_pages_gets_problem_json(
    server: Server,
) -> None:
    padding = b"X-Padding: " + b"a" * (40 * 1024) + b"\r\n"
    _assert_refused(await exchange(server, _get("/holder", padding + BROWSER_ACCEPT)), 431)  # not arrived
    _assert_refused(await exchange(server, _get("/v1/catalogue", BROWSER_ACCEPT + padding)), 431)
    # A 414 is refused in the request line, before any header (Accept included) can have arrived.
    _assert_refused(await exchange(server, _get("/v/" + "x" * (9 * 1024), BROWSER_ACCEPT)), 414)
