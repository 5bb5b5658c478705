"""`registry import` of N rows end to end, then the bytes per certificate of every table and index (docs/scale.md).

    python benchmarks/scale.py --count 1000000 --server postgresql+asyncpg://postgres@127.0.0.1:55432
    python benchmarks/scale.py --count 1000000 --sizes-only       # measure an already imported database again

The database ``<prefix>_<count>`` (default ``bench_verify_<count>``, the one ``verify.py`` measures) is dropped and
re-created, migrated, and given the benchmark's evaluation body (``load.fresh_registry``). N rows are written to a CSV
in the batch columns, and the real command line imports them: ``registry import FILE --issuer BENCH-COMMITTEE`` in a
subprocess, timed from start to exit (the command's own summary line is printed too). The WAL written meanwhile is
read from ``pg_current_wal_lsn()``. Then ``VACUUM ANALYZE`` and, per table and per index, the on-disk size and rows.

The verify tokens (from ``FILE.issued.csv``) and ``load.py``'s metadata are written too, so ``verify.py`` takes the
imported database as loaded instead of loading it again.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import bench_common as common
import load

from registry.certificates.rows import CSV_COLUMNS  # the import's own header: one home

CSV_CHUNK = 50_000
# The tables one certificate writes to (or, for catalogue and issuers, reads), largest first in the printout.
SIZES_SQL = """
SELECT c.relname AS name, c.reltuples::bigint AS estimated_rows, pg_relation_size(c.oid) AS heap,
       COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0) AS toast,
       pg_indexes_size(c.oid) AS indexes, pg_total_relation_size(c.oid) AS total
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY pg_total_relation_size(c.oid) DESC
"""
INDEX_SQL = """
SELECT i.indexrelid::regclass::text AS name, t.relname AS table_name, pg_relation_size(i.indexrelid) AS bytes,
       pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public'
ORDER BY pg_relation_size(i.indexrelid) DESC
"""


@dataclass(frozen=True, slots=True)
class ImportRun:
    rows: int
    seconds: float
    rate: float
    summary_line: str
    wal_bytes: int
    load_before: float
    load_after: float


def write_csv(path: Path, count: int) -> None:
    """The benchmark's rows (every one a different holder) in the batch columns, written in chunks."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for offset in range(0, count, CSV_CHUNK):
            for row in common.make_rows(min(CSV_CHUNK, count - offset), offset=offset):
                holder = row["holder"]
                writer.writerow(
                    (
                        row["cert_type"],
                        row["catalogue_code"],
                        row["level"],
                        holder["name"],
                        holder["id_type"],
                        holder["id_number"],
                        row["awarded_on"],
                        "",
                        row["evaluation_batch"],
                    )
                )


async def wal_lsn(url: str) -> int:
    connection = await asyncpg.connect(common.driver_dsn(url))
    try:
        lsn: int = await connection.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
    finally:
        await connection.close()
    return int(lsn)


def run_import(url: str, key: str, csv_path: Path, data_dir: Path) -> ImportRun:
    registry = shutil.which("registry") or str(Path(sys.executable).with_name("registry"))
    env = {
        **os.environ,
        "REGISTRY_DATABASE_URL": url,
        "REGISTRY_MASTER_KEY": key,
        "REGISTRY_ENV": "test",
        "REGISTRY_LOG_LEVEL": "WARNING",
        "REGISTRY_DATA_DIR": str(data_dir / "registry-data"),
        "COLUMNS": "120",
    }
    log_path = data_dir / "logs" / "import.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    wal_before = asyncio.run(wal_lsn(url))
    load_before = common.loadavg()
    started = time.perf_counter()
    with log_path.open("wb") as log:
        completed = subprocess.run(  # noqa: S603 - our own fixed command line
            [registry, "import", str(csv_path), "--issuer", common.ISSUER_CODE],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.perf_counter() - started
    load_after = common.loadavg()
    wal_after = asyncio.run(wal_lsn(url))
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    summary = next((line for line in reversed(lines) if line.startswith("rows ")), "")
    if completed.returncode != 0:
        raise RuntimeError(f"registry import exited {completed.returncode}; see {log_path}")
    rows = sum(1 for _ in csv_path.open(encoding="utf-8")) - 1
    return ImportRun(
        rows=rows,
        seconds=round(seconds, 1),
        rate=round(rows / seconds, 1),
        summary_line=summary,
        wal_bytes=wal_after - wal_before,
        load_before=round(load_before, 2),
        load_after=round(load_after, 2),
    )


def write_tokens_and_metadata(data_dir: Path, name: str, csv_path: Path, run: ImportRun, key: str) -> int:
    """``load.py``'s tokens file and metadata, so ``verify.py`` measures this database as it is."""
    issued = csv_path.with_suffix(".issued.csv")
    count = 0
    with issued.open(encoding="utf-8") as source, load.tokens_path(data_dir, name).open("w", encoding="ascii") as out:
        for record in csv.DictReader(source):
            out.write(record["verify_url"].rstrip("/").rsplit("/", 1)[1] + "\n")
            count += 1
    result = load.LoadResult(
        database=name,
        count=count,
        seconds=run.seconds,
        rate=run.rate,
        validate_seconds=0.0,
        issue_seconds=run.seconds,
        commit_seconds=0.0,
        vacuum_seconds=0.0,
        key_fingerprint=common.key_fingerprint(key),
        schema_revision=load.schema_head(),
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        complete=count == run.rows,
    )
    load.metadata_path(data_dir, name).write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return count


async def sizes(url: str) -> dict[str, object]:
    connection = await asyncpg.connect(common.driver_dsn(url))
    try:
        await connection.execute("VACUUM ANALYZE")
        certificates: int = await connection.fetchval("SELECT count(*) FROM certificates")
        tables = [dict(r) for r in await connection.fetch(SIZES_SQL)]
        for table in tables:
            table["rows"] = await connection.fetchval(f'SELECT count(*) FROM "{table["name"]}"')  # noqa: S608 - pg_class
        indexes = [dict(r) for r in await connection.fetch(INDEX_SQL)]
        database: int = await connection.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await connection.close()
    return {"certificates": certificates, "database_bytes": database, "tables": tables, "indexes": indexes}


def print_sizes(measured: dict[str, object]) -> None:
    certificates = int(str(measured["certificates"]))
    per = max(certificates, 1)
    tables = measured["tables"]
    indexes = measured["indexes"]
    assert isinstance(tables, list)
    assert isinstance(indexes, list)
    print(f"\n{certificates:,} certificates; database {int(str(measured['database_bytes'])) / 2**20:,.0f} MiB")
    print(f"{'table':<28} {'rows':>11} {'heap B/cert':>12} {'toast':>7} {'index B/cert':>13} {'total B/cert':>13}")
    for t in tables:
        if t["total"] < 1_000_000:
            continue
        print(
            f"{t['name']:<28} {t['rows']:>11,} {t['heap'] / per:>12.0f} {t['toast'] / per:>7.0f} "
            f"{t['indexes'] / per:>13.0f} {t['total'] / per:>13.0f}"
        )
    print(f"\n{'index':<52} {'table':<22} {'B/cert':>7}")
    for i in indexes:
        if i["bytes"] < 1_000_000:
            continue
        print(f"{i['name']:<52} {i['table_name']:<22} {i['bytes'] / per:>7.1f}")
    print(f"\nwhole database per certificate: {int(str(measured['database_bytes'])) / per:,.0f} B")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--server", default=common.DEFAULT_SERVER, help="PostgreSQL server URL (no database)")
    parser.add_argument("--prefix", default="bench_verify", help="database name: <prefix>_<count>")
    parser.add_argument("--data-dir", type=Path, default=common.DEFAULT_DATA_DIR)
    parser.add_argument("--sizes-only", action="store_true", help="skip the import; measure the database as it is")
    args = parser.parse_args()
    data_dir: Path = args.data_dir
    url = common.database_url(f"{args.prefix}_{args.count}", args.server)
    name = common.database_name(url)
    key = common.master_key_for(data_dir, name)
    print(f"machine: {common.machine()}; python {sys.version.split()[0]}; 1-min load {common.loadavg():.2f}")
    print(f"code: {common.code_state()}")
    report: dict[str, object] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "database": name}
    if not args.sizes_only:
        load.metadata_path(data_dir, name).unlink(missing_ok=True)

        async def prepare() -> None:
            _ctx, engine, _issuer = await load.fresh_registry(url, key)
            await engine.dispose()

        asyncio.run(prepare())
        csv_path = data_dir / f"{name}.csv"
        started = time.perf_counter()
        write_csv(csv_path, args.count)
        print(f"wrote {args.count:,} rows to {csv_path} in {time.perf_counter() - started:.0f} s; importing")
        run = run_import(url, key, csv_path, data_dir)
        print(f"registry import: {run.summary_line}")
        print(
            f"registry import of {run.rows:,} rows end to end: {run.seconds:,.1f} s, {run.rate:,.0f} rows/s "
            f"(load {run.load_before:.2f} -> {run.load_after:.2f}); WAL written {run.wal_bytes / 2**20:,.0f} MiB "
            f"({run.wal_bytes / max(run.rows, 1):,.0f} B per certificate)"
        )
        tokens = write_tokens_and_metadata(data_dir, name, csv_path, run, key)
        print(f"tokens: {load.tokens_path(data_dir, name)} ({tokens:,})")
        report["import"] = asdict(run)
    measured = asyncio.run(sizes(url))
    print_sizes(measured)
    report["sizes"] = measured
    out = data_dir / f"scale-{name}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
