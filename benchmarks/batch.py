"""Batch issuance over HTTP against the no-HTTP floor, on PostgreSQL, in one run.

    python benchmarks/batch.py                 # 10 batches of 10,000 rows (100,000 certificates)
    python benchmarks/batch.py --batches 4 --max-seconds 120

* **HTTP**: the real service (``registry serve --workers 2``) on a fresh database ``<prefix>``; an evaluation body's
  client POSTs 10,000-row JSON batches to ``/v1/certificate-batches`` (a fresh Idempotency-Key each), one at a time
  (``--concurrency`` for more). Timed from sending the request to having the whole 201 response; bodies are encoded
  before the clock starts.
* **floor**: the same rows, in this process, on a fresh database ``<prefix>_floor``: blind index, AES-GCM encryption
  and masking of the identity number, canonical payload and Ed25519 signature, claim code and its keyed hash, number
  and token — with the registry's own functions — then ``COPY`` (asyncpg ``copy_records_to_table``) into ``holders``
  and ``certificates``, one transaction per batch. No HTTP, no validation, no events, audit or idempotency record.

Prints certificates/s for both and the ratio; targets: >= 5,000/s over HTTP and >= 0.8 of the floor (issue 15).
``REGISTRY_BATCH_WORKERS=2 python benchmarks/batch.py`` runs the service with its signing workers on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import batch_steps
import bench_common as common
import httpx
import load
import orjson

from registry.auth.claim_codes import claim_code_hash, new_claim_code
from registry.certificates import numbering, signing
from registry.context import RegistryContext
from registry.db import session_factory, transaction, utcnow
from registry.gc_tuning import settle_garbage_collector
from registry.holders import service as holders
from registry.holders.identity import IdType, mask_id_number
from registry.issuers.models import Issuer
from registry.keys import service as keys
from registry.keys.models import KeyUse
from registry.keys.signers import Signer

TARGET_RATE = 5_000.0
TARGET_SHARE = 0.8  # issue 15: batches on every core
HOLDER_COLUMNS = ("id", "id_type", "id_index", "id_number_encrypted", "id_masked", "created_at")
CERTIFICATE_COLUMNS = (
    "id",
    "number",
    "issuer_id",
    "kid",
    "cert_type",
    "catalogue_code",
    "catalogue_version",
    "level",
    "holder_id",
    "holder_name",
    "awarded_on",
    "valid_until",
    "evaluation_batch",
    "status",
    "verify_token",
    "claim_code_hash",
    "signature",
    "issued_at",
)


@dataclass(frozen=True, slots=True)
class Timing:
    rows: int
    seconds: float
    # CPU seconds the batch took: the service's processes (serving, batch workers) or the floor's one process, and
    # the PostgreSQL server's (0 when it does not run on this machine). None when batches overlapped.
    cpu_service: float | None = None
    cpu_database: float | None = None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


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


def run_http(
    server: common.Server,
    url: str,
    credentials: tuple[str, str],
    bodies: list[tuple[bytes, int]],
    *,
    concurrency: int,
    deadline: float,
    analyze_between: bool,
) -> tuple[list[Timing], float]:
    """All batches, ``concurrency`` at a time; returns per-batch timings and the wall-clock seconds of the whole.

    With ``analyze_between``, ANALYZE runs after each batch, outside its timing: what autovacuum does within a minute
    or so. Without it, a registry that starts empty keeps the generic plans its prepared statements got while the
    tables were empty (sequential scans for the batch path's IN-list look-ups), and every batch is slower than the
    one before.
    """
    timeout = httpx.Timeout(600.0, connect=10.0)
    with httpx.Client(base_url=server.base_url, timeout=timeout) as client:
        token = access_token(client, *credentials)
        warm = orjson.dumps({"certificates": common.make_rows(500, offset=10_000_000, batch_label="2026-BJ-WARM")})
        post_batch(client, token, warm, 500)  # first-request costs (imports, pools, key unwrap) are not the subject
    if analyze_between:
        asyncio.run(analyze(url))

    database_pid = asyncio.run(common.postmaster_pid(url))

    def cpu() -> tuple[float, float]:
        database = common.tree_cpu_seconds(database_pid) if database_pid is not None else 0.0
        return common.tree_cpu_seconds(server.process.pid), database

    def one(item: tuple[bytes, int]) -> Timing | None:
        if time.monotonic() > deadline:
            return None
        with httpx.Client(base_url=server.base_url, timeout=timeout) as client:
            token = access_token(client, *credentials)
            before = cpu()
            seconds = post_batch(client, token, item[0], item[1])
            after = cpu()
        print(f"  HTTP batch of {item[1]:,}: {seconds:6.2f} s  {item[1] / seconds:8,.0f} certificates/s", flush=True)
        if analyze_between:
            asyncio.run(analyze(url))
        if concurrency > 1:
            return Timing(rows=item[1], seconds=seconds)
        return Timing(item[1], seconds, after[0] - before[0], after[1] - before[1])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        timings = [t for t in pool.map(one, bodies) if t is not None]
    return timings, time.perf_counter() - started


# --- the floor -----------------------------------------------------------------------------------------------------


# Long: the floor's rows are made exactly as the app makes them, one field after another, in one place to compare.
def floor_records(
    ctx: RegistryContext,
    rows: list[dict[str, Any]],
    *,
    issuer: Issuer,
    key_kid: str,
    signer: Signer,
    versions: dict[str, int],
    ids: list[int],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Holder and certificate records for COPY: every secret and signature the registry would make, nothing else."""
    now = utcnow()
    issued_at = now.replace(microsecond=0)
    holder_records: list[tuple[Any, ...]] = []
    certificate_records: list[tuple[Any, ...]] = []
    awarded_on = date.fromisoformat(rows[0]["awarded_on"])
    for row, holder_id in zip(rows, ids, strict=True):
        holder = row["holder"]
        id_type = IdType(holder["id_type"])
        id_number: str = holder["id_number"]
        index = holders.id_index(ctx, id_type=id_type, id_number=id_number)
        masked = mask_id_number(id_type, id_number)
        encrypted = ctx.box.encrypt(id_number.encode(), context=f"holder:{index}")
        holder_records.append((holder_id, id_type.value, index, encrypted, masked, now))
        number = numbering.new_number(region=issuer.region, cert_type=row["cert_type"], year=awarded_on.year)
        payload = signing.canonical_payload(
            number=number,
            issuer_code=issuer.code,
            cert_type=row["cert_type"],
            catalogue_code=row["catalogue_code"],
            catalogue_version=versions[row["catalogue_code"]],
            level=row["level"],
            holder_name=holder["name"],
            holder_id_type=id_type.value,
            holder_id_masked=masked,
            holder_ref=index,
            awarded_on=awarded_on,
            valid_until=None,
            evaluation_batch=row["evaluation_batch"],
            issued_at=issued_at,
        )
        claim_hash = claim_code_hash(ctx.box, new_claim_code())
        certificate_records.append(
            (
                uuid.uuid4(),
                number,
                issuer.id,
                key_kid,
                row["cert_type"],
                row["catalogue_code"],
                versions[row["catalogue_code"]],
                row["level"],
                holder_id,
                holder["name"],
                awarded_on,
                None,
                row["evaluation_batch"],
                "active",
                secrets.token_urlsafe(18),
                claim_hash,
                signing.sign(payload, signer=signer),
                issued_at,
            )
        )
    return holder_records, certificate_records


async def run_floor(url: str, key: str, batches: list[list[dict[str, Any]]], deadline: float) -> list[Timing]:
    ctx, engine, issuer = await load.fresh_registry(url, key)
    try:
        async with transaction(session_factory(engine)) as session:
            signing_key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
        assert signing_key is not None
        signer = ctx.keyring.signer(signing_key)
    finally:
        await engine.dispose()
    connection = await asyncpg.connect(common.driver_dsn(url))
    database_pid = await common.postmaster_pid(url)

    def cpu() -> tuple[float, float]:
        database = common.tree_cpu_seconds(database_pid) if database_pid is not None else 0.0
        return time.process_time(), database

    timings: list[Timing] = []
    try:
        versions: dict[str, int] = {
            r["code"]: r["version"]
            for r in await connection.fetch(
                "SELECT code, version FROM catalogue_entries WHERE code = ANY($1::text[])", list(common.CATALOGUE_CODES)
            )
        }
        for rows in batches:
            if time.monotonic() > deadline:
                break
            started, before = time.perf_counter(), cpu()
            async with connection.transaction():
                ids = [
                    r[0]
                    for r in await connection.fetch(
                        "SELECT nextval('holders_id_seq') FROM generate_series(1, $1)", len(rows)
                    )
                ]
                holder_records, certificate_records = floor_records(
                    ctx,
                    rows,
                    issuer=issuer,
                    key_kid=signing_key.kid,
                    signer=signer,
                    versions=versions,
                    ids=ids,
                )
                await connection.copy_records_to_table("holders", records=holder_records, columns=HOLDER_COLUMNS)
                await connection.copy_records_to_table(
                    "certificates", records=certificate_records, columns=CERTIFICATE_COLUMNS
                )
            seconds, after = time.perf_counter() - started, cpu()
            timings.append(Timing(len(rows), seconds, after[0] - before[0], after[1] - before[1]))
            print(f"  floor batch of {len(rows):,}: {seconds:6.2f} s  {len(rows) / seconds:8,.0f} certificates/s")
        count: int = await connection.fetchval("SELECT count(*) FROM certificates")
    finally:
        await connection.close()
    if count != sum(t.rows for t in timings):
        raise RuntimeError(f"the floor wrote {count} certificates, expected {sum(t.rows for t in timings)}")
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
    parser.add_argument("--max-seconds", type=float, default=600, help="stop starting batches after this, per side")
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
        load_http = common.wait_for_quiet(args.max_load, args.load_wait, label="HTTP batches")
        timings, wall = run_http(
            server,
            http_url,
            credentials,
            bodies,
            concurrency=args.concurrency,
            deadline=time.monotonic() + args.max_seconds,
            analyze_between=not args.no_analyze,
        )
    # One batch at a time: the sum of the batches' own times (ANALYZE between them is not the service's work).
    http = summarise("HTTP", timings, wall if args.concurrency > 1 else None, load_http)
    issued = asyncio.run(common.certificate_count(http_url))
    if issued != http.certificates + 500:
        raise RuntimeError(f"the service holds {issued} certificates, expected {http.certificates + 500}")

    load_floor = common.wait_for_quiet(args.max_load, args.load_wait, label="floor")
    settle_garbage_collector()  # the floor runs with the same collector settings as the service's workers
    floor = summarise(
        "floor", asyncio.run(run_floor(floor_url, key, batches, time.monotonic() + args.max_seconds)), None, load_floor
    )

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
