"""`registry serve` facing clients directly does not let one that never reads its answers hold its connection, its
request and the unsent answer for good: once an answer waits in the server, some of it must move every
REGISTRY_HTTP_SEND_TIMEOUT_SECONDS, else the connection is reset and the event logged once. A client that reads
slowly but steadily gets every byte. Raw sockets with a tiny receive buffer against a real process (3 s timeout).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server_support import Server

SEND_TIMEOUT_SECONDS = 3
WAIT_SECONDS = 20.0  # how long a test waits for what must come 3-6 s after an answer stopped moving
# A large public answer (the Swagger UI bundle, 1.5 MB, served from the package): a few of them, pipelined, are more
# than the kernel's buffers on both ends hold, so the rest waits in the server.
ASSET = "/docs-assets/swagger-ui-bundle.js"
ANSWERS = 6
STEADY_ANSWERS = 12  # 18 MB read at a few MB/s: the answers wait in the server for several timeouts in all
DROPPED = "took none of its answer"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """One `registry serve` for the module, on an empty SQLite database it migrates itself, with a 3 s send timeout."""
    env = {"REGISTRY_HTTP_SEND_TIMEOUT_SECONDS": str(SEND_TIMEOUT_SECONDS)}
    running = Server.on_empty_sqlite(tmp_path_factory.mktemp("slow-readers"), env)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def _requests(count: int) -> bytes:
    """``count`` pipelined requests for ASSET, the last asking the server to close once it is answered."""
    one = f"GET {ASSET} HTTP/1.1\r\nHost: registry.test\r\n".encode()
    return (one + b"\r\n") * (count - 1) + one + b"Connection: close\r\n\r\n"


def _receiver(server: Server, buffer: int = 2048) -> socket.socket:
    """A client whose receive buffer is ``buffer`` bytes (by default as small as the kernel allows), set before
    connecting (it sizes the window, and the kernel grows it no more)."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    client.connect(("127.0.0.1", server.port))
    return client


def _server_end_open(server: Server, client: socket.socket) -> bool:
    """Whether the server process still has its end of ``client``'s connection (Linux: /proc/net/tcp), in any state
    but TIME_WAIT (06) or CLOSE (07)."""
    ours = client.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if int(local.split(":")[1], 16) == server.port and int(remote.split(":")[1], 16) == ours:
            return state not in ("06", "07")
    return False


def _dropped_lines(server: Server) -> list[dict[str, object]]:
    lines = (json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{"))
    return [line for line in lines if DROPPED in str(line.get("message"))]


def _answers(received: bytes) -> list[tuple[int, int]]:
    """The (status, body length) of each complete answer in ``received``, in order; the bodies must be whole."""
    found = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
        length = int(headers["content-length"])
        assert len(rest) >= length, "an answer was cut short"
        found.append((int(lines[0].split()[1]), length))
        received = rest[length:]
    return found


def _read_to_the_end(client: socket.socket, received: bytearray) -> None:
    while chunk := client.recv(1 << 16):
        received += chunk


async def test_a_client_that_never_reads_is_reset_once_its_answer_stops_moving(server: Server) -> None:
    before = len(_dropped_lines(server))
    client = _receiver(server)
    try:
        client.sendall(_requests(ANSWERS))
        started = time.monotonic()
        for _ in range(int(WAIT_SECONDS / 0.2)):  # never reading
            if not _server_end_open(server, client):
                break
            await asyncio.sleep(0.2)
        assert not _server_end_open(server, client), f"the server still held the connection after {WAIT_SECONDS} s"
        assert time.monotonic() - started >= SEND_TIMEOUT_SECONDS * 0.9
        client.settimeout(WAIT_SECONDS)
        received = bytearray()
        with pytest.raises(ConnectionResetError):  # what the kernel kept for it, then the reset: never the rest
            _read_to_the_end(client, received)
        assert len(received) < 2 << 20
    finally:
        client.close()
    await asyncio.sleep(0.5)  # the request's task ends on the reset; its log lines are written by then
    dropped = _dropped_lines(server)[before:]
    assert [line["level"] for line in dropped] == ["WARNING"]  # once, for the one connection
    assert str(dropped[0]["message"]) == f"dropped a connection whose client {DROPPED} in {SEND_TIMEOUT_SECONDS} s"
    assert "Exception in ASGI application" not in server.log.read_text()  # the answer stopped without an error
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_a_client_that_reads_slowly_but_steadily_gets_every_answer_whole(server: Server) -> None:
    before = len(_dropped_lines(server))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
        size = len((await http.get(ASSET)).content)
    client = _receiver(server, 128 << 10)
    client.setblocking(False)
    loop = asyncio.get_running_loop()
    received = bytearray()
    try:
        client.sendall(_requests(STEADY_ANSWERS))
        started = time.monotonic()
        paused = False
        while chunk := await asyncio.wait_for(loop.sock_recv(client, 128 << 10), timeout=WAIT_SECONDS):
            received += chunk
            if not paused and len(received) > size:
                paused = True
                await asyncio.sleep(SEND_TIMEOUT_SECONDS / 2)  # a pause shorter than the timeout
            await asyncio.sleep(0.05)  # 2.5 MB/s at most: the answers wait in the server most of the time
        assert time.monotonic() - started > SEND_TIMEOUT_SECONDS  # it was slower than the timeout in all
    finally:
        client.close()
    assert _answers(bytes(received)) == [(200, size)] * STEADY_ANSWERS
    assert _dropped_lines(server)[before:] == []
