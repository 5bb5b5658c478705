"""Batch issuance over HTTP against the no-HTTP floor, on PostgreSQL, in one run.

    python benchmarks/batch.py                 # 10 batches of 10,000 rows (100,000 certificates)
    python benchmarks/batch.py --batches 4 --max-seconds 120

* **HTTP**: the real service (``registry serve --workers 2``) on a fresh database ``<prefix>``; an evaluation body's
  client POSTs 10,000-row JSON batches to ``/v1/certificate-batches`` (a fresh Idempotency-Key each), one at a time
  (``--concurrency`` for more). Timed from sending the request to having the whole 201 response; bodies are encoded
  before the clock starts.
* **floor** (``batch_floor``): the same rows, in this process, on a fresh database ``<prefix>_floor``: blind index,
  AES-GCM encryption and masking of the identity number, canonical payload and Ed25519 signature, claim code and its
  keyed hash, number and token — with the registry's own functions — then ``COPY`` into ``holders`` and
  ``certificates``, one transaction per batch. No HTTP, no validation, no events, audit or idempotency record.

One batch at a time, the two sides take turns — an HTTP batch, then the same rows through the floor — so that both
meet the machine in the same state; the ratio of each such pair is printed beside the ratio of the totals. With
``--concurrency`` > 1 every HTTP batch runs first, then the floor.

Prints certificates/s for both and the ratio; targets: >= 5,000/s over HTTP and >= 0.8 of the floor (issue 15).
The service signs large batches in one worker process per core (its default); ``REGISTRY_BATCH_WORKERS=0 python
benchmarks/batch.py`` keeps the signing in the serving process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
import batch_floor
import batch_steps
import bench_common as common
import httpx
import load
import orjson
from batch_floor import Timing

from registry.gc_tuning import settle_garbage_collector

TARGET_RATE = 5_000.0
TARGET_SHARE = 0.8  # issue 15: batches on every core


@dataclass(frozen=True, slots=True)
class Outcome:
    label: str
    batches: int
    certificates: int
    seconds: float
    rate: float
    per_batch_rates: list[float]
    load_before: float
    cpu_ms_per_1000: tuple[float, float] | None = None  # (service or floor process, PostgreSQL), per 1,000 rows

    def best_rate(self, cores: int) -> float | None:
        """Certificates/s with every core busy all the time on this CPU work: what no scheduling can beat."""
        if self.cpu_ms_per_1000 is None or sum(self.cpu_ms_per_1000) <= 0:
            return None
        return cores * 1_000_000 / sum(self.cpu_ms_per_1000)


# --- HTTP ----------------------------------------------------------------------------------------------------------


async def prepare_http_database(url: str, key: str) -> tuple[str, str]:
    """A fresh registry with the benchmark's evaluation body and one issuer client; returns its credentials."""
    ctx, engine, _issuer = await load.fresh_registry(url, key)
    try:
        return await load.issuer_client(ctx, engine, name="batch benchmark")
    finally:
        await engine.dispose()


def access_token(client: httpx.Client, client_id: str, client_secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    response = client.post("/oauth/token", data=form)
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def post_batch(client: httpx.Client, token: str, body: bytes, rows: int) -> float:
    """POST one batch; the seconds from sending it to holding the whole 201 answer with ``rows`` certificates."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": f"bench-{uuid.uuid4()}",
    }
    started = time.perf_counter()
    response = client.post("/v1/certificate-batches", content=body, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"batch answered {response.status_code}: {response.text[:500]}")
    if response.json()["count"] != rows:
        raise RuntimeError("the batch answer does not list every row")
    return elapsed


async def analyze(url: str) -> None:
    connection = await asyncpg.connect(common.driver_dsn(url))
    try:
        await connection.execute("ANALYZE certificates, holders, certificate_events, audit_log")
    finally:
        await connection.close()


class HttpSide:
    """The service's client side: one batch at a time (``one``), timed, with the CPU both servers spent on it.

    With ``analyze_between``, ANALYZE runs after each batch, outside its timing: what autovacuum does within a minute
    or so. Without it, a registry that starts empty keeps the generic plans its prepared statements got while the
    tables were empty (sequential scans for the batch path's IN-list look-ups), and every batch is slower than the
    one before.
    """

    timeout = httpx.Timeout(600.0, connect=10.0)

    def __init__(self, server: common.Server, url: str, credentials: tuple[str, str], *, analyze_between: bool) -> None:
        self.server, self.url, self.credentials, self.analyze_between = server, url, credentials, analyze_between
        with httpx.Client(base_url=server.base_url, timeout=self.timeout) as client:
            token = access_token(client, *credentials)
            warm = orjson.dumps({"certificates": common.make_rows(500, offset=10_000_000, batch_label="2026-BJ-WARM")})
            post_batch(client, token, warm, 500)  # first-request costs (imports, pools, key unwrap) are not the subject
        if analyze_between:
            asyncio.run(analyze(url))
        self.database_pid = asyncio.run(common.postmaster_pid(url))

    def cpu(self) -> tuple[float, float]:
        database = common.tree_cpu_seconds(self.database_pid) if self.database_pid is not None else 0.0
        return common.tree_cpu_seconds(self.server.process.pid), database

    def one(self, item: tuple[bytes, int], *, measure_cpu: bool = True) -> Timing:
        with httpx.Client(base_url=self.server.base_url, timeout=self.timeout) as client:
            token = access_token(client, *self.credentials)
            before = self.cpu()
            seconds = post_batch(client, token, item[0], item[1])
            after = self.cpu()
        print(f"  HTTP batch of {item[1]:,}: {seconds:6.2f} s  {item[1] / seconds:8,.0f} certificates/s", flush=True)
        if self.analyze_between:
            asyncio.run(analyze(self.url))
        if not measure_cpu:
            return Timing(rows=item[1], seconds=seconds)
        return Timing(item[1], seconds, after[0] - before[0], after[1] - before[1])


def run_interleaved(
    http: HttpSide,
    floor_url: str,
    key: str,
    work: list[tuple[tuple[bytes, int], list[dict[str, Any]]]],
    deadline: float,
) -> tuple[list[Timing], list[Timing]]:
    """One HTTP batch, then the same rows through the floor, and so on: both sides see the machine as it is at that
    moment (a shared host's speed drifts by a third within the hour, more than the difference measured)."""
    http_timings: list[Timing] = []
    floor_timings: list[Timing] = []
    with asyncio.Runner() as runner:
        floor = runner.run(batch_floor.Floor.open(floor_url, key))
        settle_garbage_collector()  # the floor runs with the same collector settings as the service's workers
        try:
            for body, rows in work:
                if time.monotonic() > deadline:
                    break
                http_timings.append(http.one(body))
                floor_timings.append(runner.run(floor.batch(rows)))
        finally:
            runner.run(floor.close())
    return http_timings, floor_timings


def run_concurrent(
    http: HttpSide, bodies: list[tuple[bytes, int]], *, concurrency: int, deadline: float
) -> tuple[list[Timing], float]:
    """``concurrency`` batches in flight at once; their timings and the wall-clock seconds of the whole."""

    def one(item: tuple[bytes, int]) -> Timing | None:
        return None if time.monotonic() > deadline else http.one(item, measure_cpu=False)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        timings = [t for t in pool.map(one, bodies) if t is not None]
    return timings, time.perf_counter() - started


def run_floor(floor_url: str, key: str, batches: list[list[dict[str, Any]]], deadline: float) -> list[Timing]:
    """Every batch through the floor, one after another (after concurrent HTTP batches, which cannot interleave)."""
    timings: list[Timing] = []
    with asyncio.Runner() as runner:
        floor = runner.run(batch_floor.Floor.open(floor_url, key))
        settle_garbage_collector()
        try:
            timings.extend(runner.run(floor.batch(rows)) for rows in batches if time.monotonic() <= deadline)
        finally:
            runner.run(floor.close())
    return timings


# --- the run -------------------------------------------------------------------------------------------------------


@contextmanager
def running_service(url: str, key: str, data_dir: Path) -> Iterator[common.Server]:
    server = common.start_registry("batch", url, key, data_dir)
    try:
        yield server
    finally:
        server.stop()


def summarise(label: str, timings: list[Timing], wall: float | None, load_before: float) -> Outcome:
    rows = sum(t.rows for t in timings)
    seconds = wall if wall is not None else sum(t.seconds for t in timings)
    cpu = None
    if rows and all(t.cpu_service is not None and t.cpu_database is not None for t in timings):
        service = sum(t.cpu_service or 0.0 for t in timings) / rows * 1e6
        database = sum(t.cpu_database or 0.0 for t in timings) / rows * 1e6
        cpu = (round(service, 1), round(database, 1))
    return Outcome(
        label=label,
        batches=len(timings),
        certificates=rows,
        seconds=round(seconds, 2),
        rate=round(rows / seconds, 1) if seconds else 0.0,
        per_batch_rates=[round(t.rate) for t in timings],
        load_before=round(load_before, 2),
        cpu_ms_per_1000=cpu,
    )


def print_cpu(http: Outcome, floor: Outcome) -> None:
    """Where the CPU went, and the best each side could do with every core of this machine busy all the time."""
    if http.cpu_ms_per_1000 is None or floor.cpu_ms_per_1000 is None or not floor.rate:
        print("CPU: not measured (batches overlapped, or a side ran no batch)")
        return
    cores = os.cpu_count() or 1
    print()
    print(f"CPU ms per 1,000 certificates (PostgreSQL counted only when it runs on this machine; {cores} cores):")
    for outcome, own, (mine, database) in (
        (http, "service (serving + batch workers)", http.cpu_ms_per_1000),
        (floor, "floor process", floor.cpu_ms_per_1000),
    ):
        best = outcome.best_rate(cores) or float("inf")
        print(
            f"  {outcome.label:<6} {own:<34} {mine:7.1f}  PostgreSQL {database:6.1f}  total {mine + database:7.1f}"
            f"  -> at most {best:8,.0f} certificates/s on {cores} cores ({outcome.rate / best:.0%} of it reached)"
        )
    bound = (http.best_rate(cores) or 0.0) / floor.rate
    print(f"  HTTP / floor if every core were busy throughout: at most {bound:.2f}")


# Long: a benchmark's script: arguments, both runs, the table and the JSON, read top to bottom.
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=10, help="timed batches (each side)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows per batch (the API takes at most 10,000)")
    parser.add_argument("--concurrency", type=int, default=1, help="batches in flight at once over HTTP")
    parser.add_argument("--server", default=common.DEFAULT_SERVER, help="PostgreSQL server URL (no database)")
    parser.add_argument("--prefix", default="bench_batch", help="database names: <prefix> and <prefix>_floor")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=600,
        help="stop starting batches after this (both sides when they alternate)",
    )
    parser.add_argument("--max-load", type=float, default=0.5, help="wait for the 1-min load average below this")
    parser.add_argument("--load-wait", type=float, default=300, help="longest wait for a quiet machine, seconds")
    parser.add_argument("--data-dir", type=Path, default=common.DEFAULT_DATA_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the two databases afterwards")
    parser.add_argument(
        "--no-analyze", action="store_true", help="no ANALYZE between batches (shows the stale-plan slowdown)"
    )
    args = parser.parse_args()
    data_dir: Path = args.data_dir
    http_url = common.database_url(args.prefix, args.server)
    floor_url = common.database_url(f"{args.prefix}_floor", args.server)
    key = common.master_key_for(data_dir, args.prefix)

    print(f"machine: {common.machine()}; python {sys.version.split()[0]}; 1-min load {common.loadavg():.2f}")
    code = common.code_state()  # at the start: the servers run the code as it was then
    print(f"code: {code}")
    print(
        f"{args.batches} batches of {args.rows:,} rows per side; HTTP: 2 uvicorn workers, {args.concurrency} in flight"
    )
    batches = [common.make_rows(args.rows, offset=i * args.rows) for i in range(args.batches)]
    bodies = [(orjson.dumps({"certificates": rows}), len(rows)) for rows in batches]
    print(f"request bodies: {sum(len(b) for b, _ in bodies) / len(bodies) / 1e6:.1f} MB each")

    credentials = asyncio.run(prepare_http_database(http_url, key))
    with running_service(http_url, key, data_dir) as server:
        load_http = common.wait_for_quiet(args.max_load, args.load_wait, label="batches")
        side = HttpSide(server, http_url, credentials, analyze_between=not args.no_analyze)
        deadline = time.monotonic() + args.max_seconds  # from the first timed batch, after the waits and the warm-up
        if args.concurrency == 1:
            http_timings, floor_timings = run_interleaved(
                side, floor_url, key, list(zip(bodies, batches, strict=True)), deadline
            )
            wall: float | None = None  # the sum of the batches' own times (ANALYZE between them is not timed)
        else:
            http_timings, wall = run_concurrent(side, bodies, concurrency=args.concurrency, deadline=deadline)
    http = summarise("HTTP", http_timings, wall, load_http)
    issued = asyncio.run(common.certificate_count(http_url))
    if issued != http.certificates + 500:
        raise RuntimeError(f"the service holds {issued} certificates, expected {http.certificates + 500}")
    load_floor = load_http
    if args.concurrency > 1:
        load_floor = common.wait_for_quiet(args.max_load, args.load_wait, label="floor")
        floor_timings = run_floor(floor_url, key, batches, time.monotonic() + args.max_seconds)
    floor = summarise("floor", floor_timings, None, load_floor)
    pairs = [h.rate / f.rate for h, f in zip(http_timings, floor_timings, strict=False)] if wall is None else []

    share = http.rate / floor.rate if floor.rate else 0.0
    print()
    print(f"{'':<6} {'batches':>7} {'certificates':>12} {'seconds':>8} {'certificates/s':>14}  load")
    for o in (http, floor):
        print(
            f"{o.label:<6} {o.batches:>7} {o.certificates:>12,} {o.seconds:>8.1f} {o.rate:>14,.0f}  {o.load_before:.2f}"
        )
    print()
    print(
        f"HTTP: {http.rate:,.0f} certificates/s (target >= {TARGET_RATE:,.0f}: "
        f"{'met' if http.rate >= TARGET_RATE else 'MISSED'})"
    )
    print(f"HTTP / floor: {share:.2f} (target >= {TARGET_SHARE:.2f}: {'met' if share >= TARGET_SHARE else 'MISSED'})")
    if pairs:
        each = " ".join(f"{ratio:.2f}" for ratio in pairs)
        print(f"HTTP / floor of each batch and the floor batch right after it: {each} (median {median(pairs):.2f})")
    print_cpu(http, floor)
    print()
    print("per-row cost of each step (one core, no database, µs):")
    costs = batch_steps.step_costs(batches[0][:2000])
    for label, micros in costs:
        print(f"  {label:<56} {micros:8.1f}")
    out = data_dir / "batch-results.json"
    out.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": common.machine(),
                "code": code,
                "args": {k: str(v) for k, v in vars(args).items()},
                "http": asdict(http),
                "floor": asdict(floor),
                "ratio": round(share, 3),
                "pair_ratios": [round(ratio, 3) for ratio in pairs],
                "step_costs_us": {label: round(micros, 1) for label, micros in costs},
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"results: {out}")
    if not args.keep:
        for url in (http_url, floor_url):
            asyncio.run(common.drop_database(url))


if __name__ == "__main__":
    main()
