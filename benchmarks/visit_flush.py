"""What one write of the who-looked log costs the serving process (``registry.verification.visits.VisitLog.flush``).

    python benchmarks/visit_flush.py                       # 300 visits a flush, 8 rounds, database bench_visits
    python benchmarks/visit_flush.py --visits 600 --server postgresql+asyncpg://postgres@127.0.0.1:55432

Loads 2,000 certificates into ``<server>/bench_visits`` (once; ``load.py``), then, each round: queues ``--visits``
visits of those certificates and flushes them as a verifying worker does once a second, twice —

* alone: the flush's wall time and the CPU this process spent on it (``time.process_time``);
* beside a coroutine that yields to the event loop in a tight loop: the longest time the loop was held (what a
  verification answered by the same worker would have waited at most).

300 visits is one second of one worker at ~600 requests/s. The figures say whether the flush can explain a tail of
the open-loop latency (docs/scale.md, "Latency at a fixed load"); they are not a target.

    python benchmarks/visit_flush.py --steady --rate 1300 --seconds 10 --server …

``--steady`` instead records ``--rate`` visits a second for ``--seconds`` through the log's own writer, as a worker
under a steady stream of scans does, and prints the write transactions it took (and visits per transaction), then per
visit PostgreSQL's CPU (when it runs on this machine), this process's CPU (the pacing loop included) and the WAL.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from pathlib import Path

import asyncpg
import bench_common as common
import load
from sqlalchemy.ext.asyncio import create_async_engine

from registry.db import utcnow
from registry.verification.visits import Visit, VisitLog

CERTIFICATES = 2_000


async def _flush(log: VisitLog, ids: list[object], visits: int, *, beside: bool) -> tuple[float, float, float]:
    """(wall ms, CPU ms, longest loop hold ms) of one flush of ``visits`` queued visits."""
    for i in range(visits):
        log.queue.append(
            {"certificate_id": ids[i % len(ids)], "at": utcnow(), "channel": "qr", "purpose": None, "region": None}
        )
    holds: list[float] = [0.0]
    done = asyncio.Event()

    async def ticking() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0)
            holds.append(time.perf_counter() - started)

    ticker = asyncio.create_task(ticking()) if beside else None
    await asyncio.sleep(0.01)
    cpu, wall = time.process_time(), time.perf_counter()
    await log.flush()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done.set()
    if ticker is not None:
        await ticker
    return wall * 1000, cpu * 1000, max(holds) * 1000


async def run(url: str, *, visits: int, rounds: int) -> None:
    connection = await asyncpg.connect(common.driver_dsn(url))
    try:
        ids = [row[0] for row in await connection.fetch("SELECT id FROM certificates LIMIT $1", CERTIFICATES)]
    finally:
        await connection.close()
    engine = create_async_engine(url, pool_size=2)
    log = VisitLog(engine)
    try:
        await _flush(log, ids, visits, beside=False)  # the first flush prepares statements and opens connections
        for round_number in range(1, rounds + 1):
            wall, cpu, _hold = await _flush(log, ids, visits, beside=False)
            _wall, _cpu, hold = await _flush(log, ids, visits, beside=True)
            figures = f"wall {wall:5.1f} ms, CPU {cpu:4.1f} ms; loop held <= {hold:4.2f} ms"
            print(f"round {round_number}: {visits} visits, {figures}")
    finally:
        await engine.dispose()


async def steady(url: str, *, rate: float, seconds: float) -> None:
    """``rate`` visits a second for ``seconds``, each recorded when it falls due, written by the log's own writer.
    Transactions are counted as the distinct ``xmin`` of the rows this run wrote (the statistics collector's commit
    count reports with a delay, and undercounted); CPU is the whole PostgreSQL server's and WAL the whole cluster's,
    so nothing else should run on that server meanwhile."""
    connection = await asyncpg.connect(common.driver_dsn(url))
    engine = create_async_engine(url, pool_size=2)
    log = VisitLog(engine)
    try:
        ids = [row[0] for row in await connection.fetch("SELECT id FROM certificates LIMIT $1", CERTIFICATES)]
        first_id = await connection.fetchval("SELECT coalesce(max(id), 0) FROM verification_visits")
        lsn = await connection.fetchval("SELECT pg_current_wal_lsn()")
        server = await common.postmaster_pid(url)
        server_cpu = common.tree_cpu_seconds(server) if server else 0.0
        cpu, start, recorded = time.process_time(), time.perf_counter(), 0
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(int(elapsed * rate) - recorded):
                log.record(random.choice(ids), Visit("qr"))  # noqa: S311 - which certificate, not a secret
                recorded += 1
            await asyncio.sleep(0.001)
        if log._writer is not None:  # the last second's visits, as the writer writes them (it retries while it fails)
            await asyncio.wait_for(log._writer, timeout=60)
        cpu = time.process_time() - cpu
        server_cpu = common.tree_cpu_seconds(server) - server_cpu if server else float("nan")
        wal = await connection.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)", lsn)
        written, transactions = await connection.fetchrow(
            "SELECT count(*), count(DISTINCT xmin::text) FROM verification_visits WHERE id > $1", first_id
        )
    finally:
        await engine.dispose()
        await connection.close()
    per = max(recorded, 1)
    print(
        f"{recorded:,} visits at {rate:,.0f}/s, {written:,} written in {transactions:,} transactions "
        f"({written / max(transactions, 1):,.0f} visits each); PostgreSQL CPU {server_cpu / per * 1e6:.1f} µs, "
        f"this process {cpu / per * 1e6:.1f} µs, WAL {float(wal) / per:,.0f} B per visit"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=common.DEFAULT_SERVER, help="postgresql+asyncpg://... (no database)")
    parser.add_argument("--visits", type=int, default=300, help="visits queued per flush")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--data-dir", type=Path, default=common.DEFAULT_DATA_DIR)
    parser.add_argument("--steady", action="store_true", help="a steady stream of visits through the log's writer")
    parser.add_argument("--rate", type=float, default=1300, help="--steady: visits a second")
    parser.add_argument("--seconds", type=float, default=10, help="--steady: how long")
    args = parser.parse_args()
    url = common.database_url("bench_visits", args.server)
    print(f"machine: {common.machine()}; code {common.code_state()}; 1-min load {common.loadavg():.2f}")
    if not asyncio.run(load.is_loaded(url, CERTIFICATES, args.data_dir)):
        asyncio.run(load.load(url, CERTIFICATES, data_dir=args.data_dir, max_seconds=600))
    if args.steady:
        asyncio.run(steady(url, rate=args.rate, seconds=args.seconds))
    else:
        asyncio.run(run(url, visits=args.visits, rounds=args.rounds))


if __name__ == "__main__":
    main()
