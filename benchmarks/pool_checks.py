"""What guarding against dead database connections costs per read, one request at a time, measured in one run.

    python benchmarks/pool_checks.py                   # 40 rounds of 250 reads of each variant, interleaved
    python benchmarks/pool_checks.py --reads 500 --rounds 80

A scratch database ``bench_pool_checks`` is created, migrated and dropped at the end. Each read is the verification
look-up by token (``registry.verification.reading``, an indexed miss), so the figures compare checks against the
query they guard. Each round runs ``--reads`` reads of every variant, in an order that rotates from round to round,
so a burst of other work on a shared machine falls on all of them alike; the medians over the rounds are compared:

* **sqlalchemy-bare**: a checkout from SQLAlchemy's pool and the query, the engine options of ``registry.db`` but
  none of its listeners;
* **sqlalchemy-registry**: ``registry.db.create_engine`` as the service builds it (a closed pooled connection is
  thrown away at checkout without a round trip; a broken one is treated as a disconnect);
* **sqlalchemy-pre-ping**: the bare engine with ``pool_pre_ping=True`` (with asyncpg: BEGIN, a ping, ROLLBACK);
* **asyncpg-pool**: the driver pool's ``fetchrow``, reset as ``ReadPool`` resets (the public verification path
  before the fault handling);
* **readpool**: ``registry.verification.readpool.ReadPool.fetchrow`` (acquire timeout, retry once on a lost
  connection).

Printed: the median microseconds per read of each, wall clock and this process's CPU, and the ratios that matter:
registry/bare, pre-ping/bare and readpool/asyncpg-pool.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg
import bench_common as common
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from registry.db import create_engine
from registry.migrate import upgrade
from registry.verification import reading, readpool
from registry.verification.readpool import ReadPool

TOKEN = "no-such-token-" + "x" * 20
Read = Callable[[], Awaitable[object]]


def _sqlalchemy_read(engine: AsyncEngine) -> Read:
    statement = reading._STATEMENTS["token"]

    async def read() -> object:
        async with engine.connect() as connection:
            return (await connection.execute(statement, {"value": TOKEN})).first()

    return read


async def _per_read_us(read: Read, reads: int) -> tuple[float, float]:
    """Wall-clock and this process's CPU microseconds per read (the CPU figure is what other people's work on a
    shared machine disturbs least; the round trips pre-ping adds show in the wall clock)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(reads):
        await read()
    return (time.perf_counter() - wall) / reads * 1e6, (time.process_time() - cpu) / reads * 1e6


async def _measure(url: str, *, reads: int, rounds: int) -> dict[str, tuple[float, float]]:
    options = {"pool_size": 10, "max_overflow": 10, "pool_recycle": 1800, "hide_parameters": True}
    bare = create_async_engine(url, **options)
    registry_engine = create_engine(url)
    pre_ping = create_async_engine(url, pool_pre_ping=True, **options)
    driver = await asyncpg.create_pool(common.driver_dsn(url), min_size=1, max_size=4, reset=readpool._keep_session)
    read_pool = ReadPool(url, min_size=1, max_size=4)
    sql = reading._DRIVER_SQL["token"]
    variants: dict[str, Read] = {
        "sqlalchemy-bare": _sqlalchemy_read(bare),
        "sqlalchemy-registry": _sqlalchemy_read(registry_engine),
        "sqlalchemy-pre-ping": _sqlalchemy_read(pre_ping),
        "asyncpg-pool": lambda: driver.fetchrow(sql, TOKEN),
        "readpool": lambda: read_pool.fetchrow(sql, TOKEN),
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    try:
        for read in variants.values():  # warm-up: connections opened, statements prepared
            await _per_read_us(read, 200)
        names = list(variants)
        for round_number in range(rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(await _per_read_us(variants[name], reads))
    finally:
        await read_pool.close()
        await driver.close()
        for engine in (bare, registry_engine, pre_ping):
            await engine.dispose()
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in samples.items()
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=common.DEFAULT_SERVER, help="PostgreSQL server URL (no database)")
    parser.add_argument("--reads", type=int, default=250, help="reads per variant and round")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    print(f"machine: {common.machine()}; code: {common.code_state()}; 1-min load {common.loadavg():.2f}")
    url = common.database_url("bench_pool_checks", args.server)
    await common.recreate_database(url)
    try:
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()
        medians = await _measure(url, reads=args.reads, rounds=args.rounds)
    finally:
        await common.drop_database(url)
    print("  median µs per read          wall      cpu")
    for name, (wall, cpu) in medians.items():
        print(f"  {name:<22} {wall:9.1f} {cpu:8.1f}")
    for label, over, under in (
        ("registry/bare", "sqlalchemy-registry", "sqlalchemy-bare"),
        ("pre-ping/bare", "sqlalchemy-pre-ping", "sqlalchemy-bare"),
        ("readpool/asyncpg-pool", "readpool", "asyncpg-pool"),
    ):
        wall = medians[over][0] / medians[under][0]
        cpu = medians[over][1] / medians[under][1]
        print(f"  {label:<22} {wall:9.3f} {cpu:8.3f}")
    print(f"  1-min load at the end {common.loadavg():.2f}")


if __name__ == "__main__":
    asyncio.run(main())
