"""What `registry serve` answers itself, before any app runs, to a request its HTTP parser (httptools) cannot read: a
400 problem+json in the reader's language saying what is malformed and how to send it — where uvicorn wrote a
plain-text English "Invalid HTTP request received." — and that every refusal of the server says its language
(``Content-Language``, ``Vary: Accept-Language``). Raw sockets against a real process."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server_support import Server, exchange

HAN = re.compile(r"[\u4e00-\u9fff]")
HEAD = b"Host: registry.test\r\nAccept-Language: zh-CN\r\n"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A fresh `registry serve` on an empty SQLite database (the HTTP layer is the same on both databases)."""
    async with Server.on_empty_sqlite(tmp_path) as running:
        yield running


def _assert_chinese_400(answer: tuple[int, dict[str, str], bytes], *, says: str) -> dict[str, object]:
    status, headers, body = answer
    assert status == 400, body
    assert headers["content-type"] == "application/problem+json", (headers, body)
    assert headers["content-language"] == "zh-CN", headers
    assert headers["vary"] == "Accept-Language", headers
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == 400
    assert problem["type"].endswith("/http-400")
    assert problem["title"] == "请求有误", problem
    assert says in problem["detail"], problem
    return dict(problem)


@pytest.mark.parametrize(
    ("request_bytes", "says"),
    [
        # What `curl "$R/v1/catalogue?q=具身智能"` sends: the query's UTF-8 as it was typed, not percent-encoded.
        ("GET /v1/catalogue?q=具身智能 HTTP/1.1\r\n".encode() + HEAD + b"\r\n", "百分号编码"),
        (b"POST /v1/verify HTTP/1.1\r\n" + HEAD + b"Content-Length: abc\r\n\r\n", "Content-Length"),
        (
            b"POST /v1/verify HTTP/1.1\r\n" + HEAD + b"Content-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            "十六进制",
        ),
        (b"GET /v1/catalogue HTTP/1.1\r\n" + HEAD + b"Bad Name: x\r\n\r\n", "不含空格"),
        (b"GET /v1/cata\x01logue HTTP/1.1\r\n" + HEAD + b"\r\n", "控制字符"),
    ],
    ids=["raw-utf8-query", "bad-content-length", "bad-chunk-size", "space-in-header-name", "control-byte-in-line"],
)
async def test_a_request_the_parser_cannot_read_is_a_problem_in_the_readers_language(
    server: Server, request_bytes: bytes, says: str
) -> None:
    """Before: uvicorn's `400 text/plain "Invalid HTTP request received."`, English only. The Accept-Language is
    found among the bytes received even when the parser stopped before reaching it (a raw UTF-8 address)."""
    problem = _assert_chinese_400(await exchange(server, request_bytes), says=says)
    assert HAN.search(str(problem["detail"])), problem


async def test_the_parsers_refusal_is_in_english_without_accept_language_and_never_echoes_the_request(
    server: Server,
) -> None:
    status, headers, body = await exchange(server, "GET /v1/certificates/测试号 HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    assert status == 400, body
    assert headers["content-language"] == "en"
    problem = json.loads(body)
    assert problem["title"] == "Bad request"
    assert "percent-encoded" in problem["detail"], problem
    assert "%E5%85%B7" in problem["detail"], problem
    assert "测试号".encode() not in body
    assert b"Invalid HTTP request" not in body


async def test_a_malformed_request_pipelined_behind_another_is_refused_after_its_answer(server: Server) -> None:
    """The 400 is not written into the middle of the answer to the request before it, nor does it cut it off."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/catalogue?q=\xe5\x85\xb7 HTTP/1.1\r\n" + HEAD)
        answers = []
        for _ in range(2):
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)).decode("latin-1")
            length = int(re.search(r"(?im)^content-length: (\d+)", head)[1])  # type: ignore[index]
            answers.append((head.split()[1], await asyncio.wait_for(reader.readexactly(length), timeout=10)))
    finally:
        writer.close()

    assert answers[0][0] == "200", answers
    assert json.loads(answers[1][1])["status"] == 400, answers
    assert json.loads(answers[1][1])["title"] == "请求有误", answers  # its Accept-Language, read before the wait


async def _answers_to_reads(server: Server, *reads: bytes) -> bytes:
    """Everything the server sends until it closes, the ``reads`` written a third of a second apart (one read each)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for part in reads:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.3)
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


async def test_a_malformed_request_behind_two_pipelined_ones_leaves_both_answered(server: Server) -> None:
    """Two good GETs and a request with a raw UTF-8 character in its address, in one write: each GET is answered, in
    order, and the 400 comes third. Before: 200 then 400, the second GET never run and the 400 in its place (a
    malformed head has no request of its own yet, and the one before it was removed from the pipeline)."""
    good = b"GET /v1/catalogue?limit=1 HTTP/1.1\r\nHost: registry.test\r\n\r\n"
    malformed = "GET /v1/catalogue?q=具 HTTP/1.1\r\nHost: registry.test\r\n\r\n".encode()
    answer = await _answers_to_reads(server, good + good + malformed)

    statuses = [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]  # bodies end without CRLF
    assert statuses == [200, 200, 400], answer[-400:]


async def test_a_malformed_header_after_a_read_ending_in_accept_language_is_refused_in_that_language(
    server: Server,
) -> None:
    """The head in two reads, the first ending with ``Accept-Language: zh-CN``: the 400 for the malformed header in
    the second is Chinese. Before: English, since llhttp had not reported that header line (it waits for the byte
    after its CRLF) and only the refused read was searched."""
    first = b"GET /v1/catalogue HTTP/1.1\r\nHost: registry.test\r\nAccept-Language: zh-CN\r\n"
    answer = await _answers_to_reads(server, first, b"Bad Name: x\r\n\r\n")

    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert b"\r\ncontent-language: zh-CN\r\n" in head, answer
    assert json.loads(body)["title"] == "请求有误", body


async def test_the_servers_own_refusals_say_which_language_they_are_in(server: Server) -> None:
    """Before: the 431 the server makes was in Chinese for `Accept-Language: zh-CN` but carried neither
    `Content-Language` nor `Vary: Accept-Language`, so a cache could hand the Chinese answer to an English reader."""
    padding = b"X-Padding: " + b"a" * 40_000 + b"\r\n"
    status, headers, body = await exchange(server, b"GET /v1/catalogue HTTP/1.1\r\n" + HEAD + padding + b"\r\n")

    assert status == 431, body
    assert HAN.search(json.loads(body)["title"])
    assert headers["content-language"] == "zh-CN", headers
    assert headers["vary"] == "Accept-Language", headers
    english = await exchange(server, b"GET /v1/catalogue HTTP/1.1\r\nHost: x\r\n" + padding + b"\r\n")
    assert english[1]["content-language"] == "en"


async def test_a_flood_of_malformed_requests_is_logged_once_and_counted(server: Server) -> None:
    """Before: uvicorn wrote "Invalid HTTP request received." for every one, so a flood wrote the log without bound.
    Now they are summarised as the server's other refusals are: the first logged, the rest counted for a line a
    minute later; the metric counts every one."""

    async def refused_400() -> float:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            metrics = (await client.get("/metrics")).text
        found = re.search(r'^registry_http_server_refusals_total\{status="400"\} (\S+)$', metrics, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    malformed = [
        b"GET /v1/cata\x01logue HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /v1/catalogue HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n",
    ]
    before = await refused_400()
    for number in range(50):
        status, _headers, body = await exchange(server, malformed[number % len(malformed)])
        assert status == 400, body

    assert await refused_400() == before + 50
    messages = [json.loads(line)["message"] for line in server.log.read_text().splitlines() if line.startswith("{")]
    uvicorns = [said for said in messages if "Invalid HTTP request" in said]
    assert not uvicorns, uvicorns[:3]
    logged = [said for said in messages if "the HTTP parser could not read" in said]
    assert len(logged) == 1, logged[:5]  # all within a minute: the rest go into the next line, a minute on
    assert logged[0].startswith("refused a request the HTTP parser could not read (400): Invalid "), logged
