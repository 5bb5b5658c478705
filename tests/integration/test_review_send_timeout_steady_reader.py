"""Review of 249038c: the send timeout counts an answer as moving only when the server's own write buffer shrinks.
The kernel takes more of it only once a good part of its send buffer has drained (Linux wakes a writer when a third
of the buffer is free), and that buffer grows to megabytes on a path with a large window. A client that reads
steadily — here 128 KiB/s, 64 KiB every half second, never pausing — can then go longer than the timeout between
two moves of the server's buffer, and is reset in the middle of an answer although it never stopped reading: a
phone on a slow link downloading a PDF or a large export would be cut off the same way with the 60 s default at a
few KiB/s.

A real `registry serve` with a 3 s send timeout; the client reads 128 KiB/s (384 KiB per timeout) without a pause.
Now it is reset after about 460 KB of 4.5 MB (3.6 s). Counting the kernel's queue too (SIOCOUTQ, unsent + unacked)
as "waiting" lets it through in 36 s, and a client that never reads is still reset (test_slow_readers.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.server_support import Server
from tests.integration.test_slow_readers import ASSET, _answers, _dropped_lines, _requests

pytestmark = pytest.mark.slow

SEND_TIMEOUT_SECONDS = 3
ANSWERS = 3  # 4.5 MB in all: more than the kernel buffers on both ends hold
STEP_BYTES = 64 << 10
STEP_SECONDS = 0.5


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    env = {"REGISTRY_HTTP_SEND_TIMEOUT_SECONDS": str(SEND_TIMEOUT_SECONDS)}
    running = Server.on_empty_sqlite(tmp_path_factory.mktemp("steady-reader"), env)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def test_a_client_reading_steadily_is_never_cut_off(server: Server) -> None:
    before = len(_dropped_lines(server))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
        size = len((await http.get(ASSET)).content)
    client = socket.create_connection(("127.0.0.1", server.port))
    client.setblocking(False)
    loop = asyncio.get_running_loop()
    received = bytearray()
    try:
        await loop.sock_sendall(client, _requests(ANSWERS))
        while True:
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(client, STEP_BYTES), timeout=20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            await asyncio.sleep(STEP_SECONDS * len(chunk) / STEP_BYTES)  # a steady 128 KiB/s
    finally:
        client.close()
    assert _dropped_lines(server)[before:] == [], f"reset after {len(received)} of {ANSWERS * size} bytes"
    assert _answers(bytes(received)) == [(200, size)] * ANSWERS
