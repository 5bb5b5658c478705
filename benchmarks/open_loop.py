"""An open-loop load generator: GET requests sent on a fixed timetable, whatever the answers' speed.

    python benchmarks/open_loop.py --url http://127.0.0.1:8000 --tokens /tmp/talent-registry-bench/x.tokens --rate 1000

A closed-loop generator (wrk, ``verify.py``'s saturation runs) sends the next request only when an answer came back,
so a server that stalls for 100 ms is simply asked less meanwhile, and the requests it would have kept waiting are
never measured (coordinated omission). Here request *i* is due at ``start + i / rate``; its latency is measured from
that due time, not from when a connection got round to sending it. A stall therefore shows up in the latency of
every request that fell due during it, as a phone user would see it. (The generator's own lateness is charged to the
server too, so the figures are an upper bound; ``lag`` reports how late the scheduler itself woke.)

Requests go over ``--connections`` persistent HTTP/1.1 connections (raw asyncio streams, no client library on the
hot path). The timetable wakes at most once a millisecond (``TICK_SECONDS``) and sends everything due by then, so a
request may leave up to a millisecond after its due time, and that is counted in its latency; ``lag`` shows it. About
13 % of a core at 2,100 requests/s. A due request waits in a queue until a connection is free; with enough
connections the queue is empty unless the server is slow. Each request asks for a random token from the file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TICK_SECONDS = 0.001


@dataclass(frozen=True, slots=True)
class OpenLoopResult:
    rate: float
    seconds: float
    sent: int
    completed: int
    errors: int
    unfinished: int
    achieved_rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    scheduler_lag_p99_ms: float


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, int(fraction * len(ordered) + 0.999999) - 1))
    return ordered[rank]


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Status code of one HTTP/1.1 response with a Content-Length body (what the registry and uvicorn send)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    host: str, port: int, queue: asyncio.Queue[tuple[float, bytes] | None], tally: _Tally, expect: int
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while True:
        item = await queue.get()
        if item is None:
            break
        due, request = item
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        tally.latencies.append(time.perf_counter() - due)
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status != expect:
            tally.errors += 1
    if writer is not None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _send_on_timetable(
    queue: asyncio.Queue[tuple[float, bytes] | None],
    request: Callable[[], bytes],
    start: float,
    rate: float,
    total: int,
) -> tuple[int, list[float]]:
    """Queue ``total`` requests, one every 1/``rate`` s from ``start``, each stamped with its own due time, whatever
    the answers' speed; returns how many were sent and how late the scheduler woke for each batch."""
    interval = 1.0 / rate
    lags: list[float] = []
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = start + sent * interval
        if due > now:
            # At least a tick: uvloop (libuv) keeps time in whole milliseconds, so a shorter sleep returns at once and
            # the loop spun — 86 % of a core at 2,100 requests/s, taken from the server it measures. What falls due
            # during the tick goes out at its end, stamped with its own due time: the wait is charged to the server.
            await asyncio.sleep(max(due - now, TICK_SECONDS))
            now = time.perf_counter()
        lags.append(now - due)
        # Everything that has fallen due by now goes out, each stamped with its own due time.
        while sent < total and start + sent * interval <= now:
            queue.put_nowait((start + sent * interval, request()))
            sent += 1
    return sent, lags


async def run(
    base_url: str,
    tokens: list[str],
    *,
    rate: float,
    seconds: float,
    connections: int = 64,
    path_prefix: str = "/v1/verify/",
    expect: int = 200,
    seed: int = 0,
) -> OpenLoopResult:
    """Send ``rate`` requests a second for ``seconds`` on a timetable; latency from each request's due time."""
    host_port = base_url.removeprefix("http://").rstrip("/")
    host, _, port = host_port.partition(":")
    chooser = random.Random(seed)  # noqa: S311 - which token to ask for, not a secret
    head = f"GET {path_prefix}".encode()
    tail = f" HTTP/1.1\r\nHost: {host_port}\r\nUser-Agent: open-loop\r\n\r\n".encode()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    tally = _Tally()
    workers = [
        asyncio.create_task(_connection(host, int(port or 80), queue, tally, expect)) for _ in range(connections)
    ]
    start = time.perf_counter() + 0.05
    sent, lags = await _send_on_timetable(
        queue, lambda: head + tokens[chooser.randrange(len(tokens))].encode() + tail, start, rate, int(rate * seconds)
    )
    elapsed_sending = time.perf_counter() - start
    for _ in workers:
        queue.put_nowait(None)  # after every request (FIFO): each connection stops once the queue is drained
    _, pending = await asyncio.wait(workers, timeout=10.0)
    for task in pending:
        task.cancel()
    unfinished = queue.qsize() + len(pending)
    ordered = sorted(tally.latencies)
    lags.sort()
    return OpenLoopResult(
        rate=rate,
        seconds=round(elapsed_sending, 2),
        sent=sent,
        completed=len(ordered),
        errors=tally.errors,
        unfinished=unfinished,
        achieved_rate=round(len(ordered) / max(elapsed_sending, 1e-9), 1),
        p50_ms=round(percentile(ordered, 0.50) * 1000, 2),
        p90_ms=round(percentile(ordered, 0.90) * 1000, 2),
        p99_ms=round(percentile(ordered, 0.99) * 1000, 2),
        p999_ms=round(percentile(ordered, 0.999) * 1000, 2),
        max_ms=round((ordered[-1] if ordered else 0.0) * 1000, 2),
        scheduler_lag_p99_ms=round(percentile(lags, 0.99) * 1000, 2),
    )


def run_blocking(base_url: str, tokens: list[str], *, rate: float, seconds: float, connections: int) -> OpenLoopResult:
    """``run`` on uvloop when installed (uvicorn's own loop: less of the generator's overhead in the figures)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(base_url, tokens, rate=rate, seconds=seconds, connections=connections))
    return uvloop.run(run(base_url, tokens, rate=rate, seconds=seconds, connections=connections))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="http://host:port of the server")
    parser.add_argument("--tokens", type=Path, required=True, help="file of verify tokens, one a line")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    tokens = args.tokens.read_text(encoding="ascii").split()
    result = run_blocking(args.url, tokens, rate=args.rate, seconds=args.duration, connections=args.connections)
    print(result)


if __name__ == "__main__":
    main()
