"""`registry serve` does not let slow clients hold connections: a head never finished, a connection that says nothing,
a body sent a byte at a time are answered 408 (or, with nothing of a request said, just closed) and the connection
closed once REGISTRY_HTTP_HEAD_TIMEOUT_SECONDS or REGISTRY_HTTP_BODY_TIMEOUT_SECONDS has passed; an answer given
before its request's body arrived (413 at the Content-Length) ends the connection rather than keeping it for good.
Raw sockets against a real process whose deadlines are 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.server_support import Server

DEADLINE_SECONDS = 1
WAIT_SECONDS = 5.0  # how long a test waits for what must come about 1-2 s after the deadline's start
HEAD = b"POST /v1/verify HTTP/1.1\r\nHost: registry.test\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """One `registry serve` for the module, on an empty SQLite database it migrates itself, with 1 s deadlines."""
    deadlines = {
        "REGISTRY_HTTP_HEAD_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
        "REGISTRY_HTTP_BODY_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
    }
    running = Server.on_empty_sqlite(tmp_path_factory.mktemp("slow-clients"), deadlines)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def _connect(server: Server, sent: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    if sent:
        writer.write(sent)
        await writer.drain()
    return reader, writer


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection; fails when it is still open after WAIT_SECONDS."""
    try:
        return await asyncio.wait_for(reader.read(), timeout=WAIT_SECONDS)
    except TimeoutError:
        pytest.fail(f"the server still held the connection after {WAIT_SECONDS} s")


def _status_and_problem(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines if line)}
    problem = json.loads(body) if headers.get("content-type") == "application/problem+json" else {}
    return int(status_line.split()[1]), headers, problem


def _assert_408(answer: bytes) -> None:
    status, headers, problem = _status_and_problem(answer)
    assert status == 408, answer[:300]
    assert headers["connection"] == "close"
    assert problem["status"] == 408
    assert str(problem["type"]).endswith("/http-408")


async def test_a_head_never_finished_is_answered_408_and_the_connection_closed(server: Server) -> None:
    started = time.monotonic()
    reader, writer = await _connect(server, b"GET /healthz HTTP/1.1\r\nHost: registry.test\r\n")
    try:
        _assert_408(await _until_closed(reader))
        assert time.monotonic() - started >= DEADLINE_SECONDS * 0.9
    finally:
        writer.close()


async def test_a_connection_that_never_says_anything_is_closed(server: Server) -> None:
    reader, writer = await _connect(server)
    try:
        assert await _until_closed(reader) == b""  # nothing of a request came: nothing to answer
    finally:
        writer.close()


async def test_a_body_sent_a_byte_at_a_time_is_answered_408_and_the_connection_closed(server: Server) -> None:
    reader, writer = await _connect(server, HEAD + b"Content-Length: 1000\r\n\r\n{")
    try:
        answer = asyncio.ensure_future(_until_closed(reader))
        for _ in range(int(WAIT_SECONDS / 0.2)):  # a byte every 0.2 s: 1000 of them would take 200 s
            if answer.done():
                break
            writer.write(b" ")
            await asyncio.sleep(0.2)
        _assert_408(await answer)
    finally:
        writer.close()


async def test_a_body_that_keeps_coming_within_its_deadline_is_answered(server: Server) -> None:
    body = b'{"number": "BJ-T-2026-0000000-0", "holder_name": "x"}'
    reader, writer = await _connect(server, HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
    try:
        await asyncio.sleep(DEADLINE_SECONDS / 2)
        writer.write(body[10:])
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=WAIT_SECONDS)
        assert head.startswith(b"HTTP/1.1 422 "), head  # the route read it: not a number
    finally:
        writer.close()


async def test_a_413_at_the_content_length_ends_the_connection(server: Server) -> None:
    body = b"x" * (2 << 20)
    head = b"POST /v1/issuers HTTP/1.1\r\nHost: registry.test\r\nContent-Type: application/json\r\n"
    reader, writer = await _connect(server, head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    try:
        status, _headers, _problem = _status_and_problem(await _until_closed(reader))
        assert status == 413
    finally:
        writer.close()


async def test_many_slow_heads_are_all_closed_and_the_server_answers_meanwhile(server: Server) -> None:
    held = [await _connect(server, b"GET /healthz HTTP/1.1\r\nHost: registry.test\r\n") for _ in range(200)]
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=WAIT_SECONDS) as http:
            assert (await http.get("/healthz")).status_code == 200
        answers = await asyncio.gather(*(_until_closed(reader) for reader, _writer in held))
        for answer in answers:
            _assert_408(answer)
    finally:
        for _reader, writer in held:
            writer.close()


async def test_an_answer_before_the_body_arrived_says_connection_close(server: Server) -> None:
    """A 404 that never reads its request's body ends the connection; the client is told, so it sends nothing more
    on it (it lost its next request before)."""
    head = b"POST /v1/nothing-here HTTP/1.1\r\nHost: registry.test\r\nContent-Type: application/json\r\n"
    reader, writer = await _connect(server, head + b"Content-Length: 10\r\n\r\n{}")
    try:
        status, headers, _problem = _status_and_problem(await _until_closed(reader))
        assert status == 404
        assert headers["connection"] == "close"
    finally:
        writer.close()


def _hold_the_write_lock(database: str, seconds: float) -> None:
    with contextlib.closing(sqlite3.connect(database, timeout=5, isolation_level=None)) as held:
        held.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        held.execute("ROLLBACK")


async def test_a_late_pipelined_body_never_answers_for_the_request_before_it(server: Server) -> None:
    """Two requests in one write: a sign-in, slow because another process holds the database's write lock, then a
    verification whose body stalls. Its 408 was written as the answer to the sign-in (whose own answer was lost);
    now the sign-in is answered first, and the 408 comes once the second request's turn has come and gone."""
    database = server.env["REGISTRY_DATABASE_URL"].split(":///", 1)[1]
    holder = asyncio.create_task(asyncio.to_thread(_hold_the_write_lock, database, 2.5))
    await asyncio.sleep(0.3)
    body = json.dumps({"id_type": "resident_id", "id_number": "11010519491231002X", "claim_code": "AAAA-BBBB-CCCC"})
    first = (
        b"POST /v1/holder/sessions HTTP/1.1\r\nHost: registry.test\r\nContent-Type: application/json\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body.encode()
    )
    second = HEAD + b'Content-Length: 40\r\n\r\n{"number"'
    reader, writer = await _connect(server, first + second)
    try:
        answers = await asyncio.wait_for(reader.read(), timeout=WAIT_SECONDS + 5)
    finally:
        writer.close()
        await holder
    statuses = [int(part.split(b" ", 1)[0]) for part in answers.split(b"HTTP/1.1 ")[1:]]
    assert len(statuses) == 2, answers[:800]
    assert statuses[0] != 408, answers[:400]  # the sign-in's own answer comes first
    assert statuses[1] == 408, answers[:800]


# --- a browser opening a page gets the problem page, when its Accept has arrived -------------------------------------

BROWSER_ACCEPT = b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"


def _page(answer: bytes) -> tuple[int, dict[str, str], str]:
    status, headers, _problem = _status_and_problem(answer)
    assert headers["content-type"].startswith("text/html"), answer[:400]
    assert headers["connection"] == "close"
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert "Accept" in headers["vary"]
    return status, headers, answer.partition(b"\r\n\r\n")[2].decode()


async def test_a_browser_whose_page_head_stalled_after_its_accept_gets_the_page_in_its_language(
    server: Server,
) -> None:
    head = b"GET /v/abc?lang=en HTTP/1.1\r\nHost: registry.test\r\n" + BROWSER_ACCEPT + b"Accept-Language: zh\r\nX-"
    reader, writer = await _connect(server, head)
    try:
        status, headers, text = _page(await _until_closed(reader))
    finally:
        writer.close()
    assert status == 408
    assert headers["content-language"] == "en"  # the page's ?lang=, as on the pages, not Accept-Language
    assert "Request timeout" in text
    assert "the request did not arrive within 1 s" in text
    assert text.index("the request did not arrive") < text.index("请求未在 1 秒内完整送达")
    assert 'href="/v?lang=en"' in text


async def test_a_browser_whose_form_body_came_too_slowly_gets_the_holder_page(server: Server) -> None:
    head = b"POST /holder/sign-in HTTP/1.1\r\nHost: registry.test\r\n" + BROWSER_ACCEPT
    head += b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncsrf="
    reader, writer = await _connect(server, head)
    try:
        status, headers, text = _page(await _until_closed(reader))
    finally:
        writer.close()
    assert status == 408
    assert headers["content-language"] == "zh-CN"
    assert "请求超时" in text
    assert "请求未在 1 秒内完整送达" in text
    assert 'href="/holder?lang=zh"' in text


@pytest.mark.parametrize(
    "head",
    [
        # Its Accept has not arrived whole: what it accepts is not known yet.
        b"GET /v/abc HTTP/1.1\r\nHost: registry.test\r\nAccept: text/ht",
        b"GET /holder HTTP/1.1\r\nHost: registry.test\r\n",
        # A client that does not ask for HTML, and a browser outside the pages.
        b"GET /v/abc HTTP/1.1\r\nHost: registry.test\r\nAccept: application/json\r\nX-",
        b"GET /v1/verify/abc HTTP/1.1\r\nHost: registry.test\r\n" + BROWSER_ACCEPT + b"X-",
    ],
)
async def test_a_slow_head_not_known_to_be_a_browsers_page_is_answered_problem_json(
    server: Server, head: bytes
) -> None:
    reader, writer = await _connect(server, head)
    try:
        _assert_408(await _until_closed(reader))
    finally:
        writer.close()


async def test_a_flood_of_slow_clients_is_not_a_flood_of_log_lines(server: Server) -> None:
    held = [await _connect(server, b"GET /healthz HTTP/1.1\r\nHost: registry.test\r\n") for _ in range(60)]
    try:
        for answer in await asyncio.gather(*(_until_closed(reader) for reader, _writer in held)):
            _assert_408(answer)
    finally:
        for _reader, writer in held:
            writer.close()
    logged = server.log.read_text(errors="replace")
    lines = [line for line in logged.splitlines() if "had not arrived" in line]
    # Every 408 of this module so far came within a minute: the first is logged, the rest counted for the next line.
    assert 1 <= len(lines) <= 2, lines[:5]


async def test_the_servers_own_refusals_are_counted(server: Server) -> None:
    """A 408 never reaches the app, so the request counter cannot see it: its own counter does."""

    async def refused_408() -> float:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            metrics = (await client.get("/metrics")).text
        found = re.search(r'^registry_http_server_refusals_total\{status="408"\} (\S+)$', metrics, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    before = await refused_408()
    reader, writer = await _connect(server, b"GET /healthz HTTP/1.1\r\nHost: registry.test\r\n")
    try:
        _assert_408(await _until_closed(reader))
    finally:
        writer.close()
    assert await refused_408() == before + 1
