"""Prototype, not a migration: look-ups by verify token and by number on a hash-partitioned copy of ``certificates``
against an unpartitioned copy of the same rows (docs/scale.md).

    python benchmarks/partitioning.py --database-url postgresql+asyncpg://postgres@127.0.0.1:55432/bench_verify_1000000

In a scratch schema ``partitioning_bench`` of the given (already loaded) database, three copies of the rows:

* ``plain``: one table, ``UNIQUE (verify_token)`` and ``UNIQUE (number)``, as ``certificates`` has today;
* ``by_token``: ``PARTITION BY HASH (verify_token)`` into ``--partitions`` tables. A unique index must contain the
  partition key, so ``UNIQUE (verify_token)`` survives but ``UNIQUE (number)`` cannot be declared on the parent: each
  partition gets a plain index on ``number``, and global uniqueness of numbers moves to a small lookup table
  ``numbers (number PRIMARY KEY, verify_token)`` that issuance writes in the same transaction;
* the same partitioned table asked by number without the lookup table: every partition's ``number`` index is probed.

Each variant answers ``--lookups`` random look-ups as prepared statements over one connection (as the read pool
does), after ``pg_prewarm`` of its tables and indexes; printed are µs per look-up, the ratio to ``plain``, and the
on-disk sizes. The schema is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass

import asyncpg
import bench_common as common

SCHEMA = "partitioning_bench"


@dataclass(frozen=True, slots=True)
class Lookup:
    label: str
    microseconds: float
    found: int


SERVER_LOOP = """
CREATE FUNCTION partitioning_bench.lookups_{number}(keys text[]) RETURNS double precision LANGUAGE plpgsql AS $f$
DECLARE
  key text;
  r record;
  started timestamptz := clock_timestamp();
  hits integer := 0;
BEGIN
  FOREACH key IN ARRAY keys LOOP
    {statement};
    IF FOUND THEN hits := hits + 1; END IF;
  END LOOP;
  IF hits <> cardinality(keys) THEN RAISE EXCEPTION 'found % of %', hits, cardinality(keys); END IF;
  RETURN extract(epoch FROM clock_timestamp() - started);
END
$f$
"""


async def build(connection: asyncpg.Connection, partitions: int) -> dict[str, float]:
    """The three copies; returns the seconds each step took."""
    spent: dict[str, float] = {}
    await connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    started = time.perf_counter()
    await connection.execute(
        "CREATE TABLE partitioning_bench.plain (LIKE certificates INCLUDING DEFAULTS);"
        "INSERT INTO partitioning_bench.plain SELECT * FROM certificates;"
        "ALTER TABLE partitioning_bench.plain ADD UNIQUE (verify_token), ADD UNIQUE (number);"
    )
    spent["plain"] = time.perf_counter() - started
    started = time.perf_counter()
    statements = [
        "CREATE TABLE partitioning_bench.by_token (LIKE certificates INCLUDING DEFAULTS) "
        "PARTITION BY HASH (verify_token)"
    ]
    statements += [
        f"CREATE TABLE partitioning_bench.by_token_{i} PARTITION OF partitioning_bench.by_token "
        f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {i})"
        for i in range(partitions)
    ]
    statements += [
        "INSERT INTO partitioning_bench.by_token SELECT * FROM certificates",
        "ALTER TABLE partitioning_bench.by_token ADD UNIQUE (verify_token)",  # includes the partition key: allowed
        "CREATE INDEX ON partitioning_bench.by_token (number)",  # one per partition; unique only within each
        "CREATE TABLE partitioning_bench.numbers (number text PRIMARY KEY, verify_token text NOT NULL)",
        "INSERT INTO partitioning_bench.numbers SELECT number, verify_token FROM certificates",
    ]
    await connection.execute(";".join(statements))
    spent["by_token"] = time.perf_counter() - started
    await connection.execute(
        "VACUUM ANALYZE partitioning_bench.plain, partitioning_bench.by_token, partitioning_bench.numbers"
    )
    return spent


async def prewarm(connection: asyncpg.Connection) -> None:
    await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    names = await connection.fetch(
        "SELECT c.oid::regclass::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'i')",
        SCHEMA,
    )
    for row in names:
        await connection.fetchval("SELECT pg_prewarm($1::regclass)", row["name"])


async def sizes(connection: asyncpg.Connection) -> list[tuple[str, int, int]]:
    """(relation, heap bytes, index bytes), partitions summed into their parent."""
    rows = await connection.fetch(
        "SELECT coalesce(p.relname, c.relname) AS name, sum(pg_relation_size(c.oid))::bigint AS heap, "
        "sum(pg_indexes_size(c.oid))::bigint AS indexes "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE n.nspname = $1 AND c.relkind = 'r' GROUP BY 1 ORDER BY 1",
        SCHEMA,
    )
    return [(r["name"], r["heap"], r["indexes"]) for r in rows]


async def time_lookups(
    connection: asyncpg.Connection, label: str, query: str, keys: list[str], *, custom_plans: bool
) -> Lookup:
    # A prepared statement on a partitioned table gets a generic plan after five runs, which prunes partitions at
    # execution but (PostgreSQL 15) still locks and initialises every partition each time; custom plans prune while
    # planning instead, at the price of planning every execution.
    mode = "force_custom_plan" if custom_plans else "auto"
    await connection.execute(f"SET plan_cache_mode = {mode}")
    statement = await connection.prepare(query)
    for key in keys[:500]:  # past the first executions, when PostgreSQL settles on a generic or custom plan
        await statement.fetchrow(key)
    found = 0
    started = time.perf_counter()
    for key in keys:
        if await statement.fetchrow(key) is not None:
            found += 1
    elapsed = time.perf_counter() - started
    await connection.execute("RESET plan_cache_mode")
    return Lookup(label=label, microseconds=elapsed / len(keys) * 1e6, found=found)


async def time_in_server(
    connection: asyncpg.Connection, number: int, query: str, keys: list[str], *, custom_plans: bool
) -> float:
    """µs per look-up of the same statement run by a PL/pgSQL loop inside the server (its plan cached as a prepared
    statement's is): the executor's own cost, without the round trip and the client, which a busy machine blurs."""
    statement = query.replace("* FROM", "* INTO r FROM", 1).replace("$1", "key")
    await connection.execute(f"DROP FUNCTION IF EXISTS partitioning_bench.lookups_{number}(text[])")
    await connection.execute(SERVER_LOOP.format(number=number, statement=statement))
    await connection.execute(f"SET plan_cache_mode = {'force_custom_plan' if custom_plans else 'auto'}")
    function = f"SELECT partitioning_bench.lookups_{number}($1::text[])"
    await connection.fetchval(function, keys[:500])
    seconds: float = await connection.fetchval(function, keys)
    await connection.execute("RESET plan_cache_mode")
    return seconds / len(keys) * 1e6


# Long: a benchmark's script: build, warm, each variant, the table, read top to bottom.
async def run(url: str, partitions: int, lookups: int, *, keep: bool, rounds: int) -> None:
    connection = await asyncpg.connect(common.driver_dsn(url))
    try:
        rows: int = await connection.fetchval("SELECT count(*) FROM certificates")
        print(f"{rows:,} certificates; building the copies ({partitions} hash partitions)", flush=True)
        spent = await build(connection, partitions)
        print(f"  built: plain {spent['plain']:.0f} s, partitioned + numbers table {spent['by_token']:.0f} s")
        sample = await connection.fetch(
            "SELECT verify_token, number FROM certificates TABLESAMPLE SYSTEM (5) LIMIT $1", lookups
        )
        pairs = [(r["verify_token"], r["number"]) for r in sample]
        random.Random(1).shuffle(pairs)  # noqa: S311 - an order, not a secret
        tokens = [t for t, _ in pairs]
        numbers = [n for _, n in pairs]
        await prewarm(connection)
        variants = [
            ("by token, plain", "SELECT * FROM partitioning_bench.plain WHERE verify_token = $1", tokens),
            ("by token, hash-partitioned", "SELECT * FROM partitioning_bench.by_token WHERE verify_token = $1", tokens),
            (
                "by token, hash-partitioned, custom plans",
                "SELECT * FROM partitioning_bench.by_token WHERE verify_token = $1",
                tokens,
            ),
            ("by number, plain", "SELECT * FROM partitioning_bench.plain WHERE number = $1", numbers),
            (
                "by number, partitioned via numbers table",
                "SELECT c.* FROM partitioning_bench.numbers n JOIN partitioning_bench.by_token c "
                "ON c.verify_token = n.verify_token WHERE n.number = $1",
                numbers,
            ),
            (
                "by number, partitioned via numbers table, custom plans",
                "SELECT c.* FROM partitioning_bench.numbers n JOIN partitioning_bench.by_token c "
                "ON c.verify_token = n.verify_token WHERE n.number = $1",
                numbers,
            ),
            (
                "by number, partitioned, every partition",
                "SELECT * FROM partitioning_bench.by_token WHERE number = $1",
                numbers,
            ),
        ]
        results: dict[str, list[float]] = {label: [] for label, _, _ in variants}
        in_server: dict[str, list[float]] = {label: [] for label, _, _ in variants}
        # Interleaved rounds: a busy neighbour on the machine slows every variant alike rather than one of them.
        for _ in range(rounds):
            for label, query, keys in variants:
                lookup = await time_lookups(connection, label, query, keys, custom_plans=label.endswith("custom plans"))
                if lookup.found != len(keys):
                    raise RuntimeError(f"{label}: found {lookup.found} of {len(keys)}")
                results[label].append(lookup.microseconds)
                custom = label.endswith("custom plans")
                number = len(in_server[label]) * 100 + list(in_server).index(label)
                in_server[label].append(await time_in_server(connection, number, query, keys, custom_plans=custom))
        print(f"\n{len(pairs):,} look-ups per variant, {rounds} interleaved rounds, best round (µs per look-up)")
        print(f"  {'':<56} {'client':>9} {'':>6}  {'in server':>9}")
        best = {label: min(values) for label, values in results.items()}
        server_best = {label: min(values) for label, values in in_server.items()}
        for label, micros in best.items():
            base = "by token, plain" if label.startswith("by token") else "by number, plain"
            print(
                f"  {label:<56} {micros:8.1f}  x{micros / best[base]:.2f}  {server_best[label]:8.1f}  "
                f"x{server_best[label] / server_best[base]:.2f}"
            )
        print("\non disk (heap, indexes; partitions summed):")
        for name, heap, indexes in await sizes(connection):
            print(f"  {name:<24} heap {heap / 2**20:8,.0f} MiB  indexes {indexes / 2**20:8,.0f} MiB")
        if not keep:
            await connection.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a loaded benchmark database (load.py or scale.py)")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch schema")
    args = parser.parse_args()
    print(f"machine: {common.machine()}; python {sys.version.split()[0]}; 1-min load {common.loadavg():.2f}")
    asyncio.run(run(args.database_url, args.partitions, args.lookups, keep=args.keep, rounds=args.rounds))
    print(f"1-min load at the end: {common.loadavg():.2f}")


if __name__ == "__main__":
    main()
