"""Load N real certificates (validated, signed, encrypted holders, audited) into a fresh PostgreSQL database.

    python benchmarks/load.py --database-url postgresql+asyncpg://postgres@127.0.0.1/bench_verify --count 1000000

The database is dropped and re-created, migrated with ``registry.migrate.upgrade``, given one evaluation body, and
filled through the registry's own issuance pipeline (``awards.screen`` + ``recording.record``), 10,000 rows per
transaction. The verify tokens go to ``<data-dir>/<database>.tokens`` (one per line) for the load generator.
REGISTRY_MASTER_KEY is used when set; otherwise a key is generated for this database and kept (mode 600) in
``<data-dir>/<database>.master-key`` so the service can be started on the same data later.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import bench_common as common
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from registry.audit.service import Actor
from registry.auth.principals import Principal
from registry.auth.scopes import ROLE_SCOPES, Role
from registry.certificates import awards, recording
from registry.certificates import rows as certificate_rows
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import create_engine, session_factory, transaction
from registry.gc_tuning import settle_garbage_collector
from registry.issuers import service as issuers
from registry.issuers.models import Issuer
from registry.issuers.schemas import IssuerCreate
from registry.migrate import alembic_config, upgrade

CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class LoadResult:
    database: str
    count: int
    seconds: float
    rate: float
    validate_seconds: float
    issue_seconds: float
    commit_seconds: float
    vacuum_seconds: float
    key_fingerprint: str
    schema_revision: str
    loaded_at: str
    complete: bool


def tokens_path(data_dir: Path, name: str) -> Path:
    return data_dir / f"{name}.tokens"


def metadata_path(data_dir: Path, name: str) -> Path:
    return data_dir / f"{name}.json"


def read_metadata(data_dir: Path, name: str) -> dict[str, object] | None:
    path = metadata_path(data_dir, name)
    if not path.exists():
        return None
    loaded: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def schema_head() -> str:
    """The newest migration: data loaded under an older schema (or older record format) is loaded again."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return head or "none"


async def is_loaded(database_url: str, count: int, data_dir: Path) -> bool:
    """True when this database holds exactly ``count`` certificates loaded under the current master key and schema."""
    name = common.database_name(database_url)
    meta = read_metadata(data_dir, name)
    key = common.master_key_for(data_dir, name)
    if meta is None or meta.get("count") != count or meta.get("key_fingerprint") != common.key_fingerprint(key):
        return False
    if meta.get("schema_revision") != schema_head():
        print(f"{name} was loaded under schema {meta.get('schema_revision')}, the code is at {schema_head()}")
        return False
    if not meta.get("complete") or not tokens_path(data_dir, name).exists():
        return False
    if not await common.database_exists(database_url):
        return False
    try:
        return await common.certificate_count(database_url) == count
    except asyncpg.PostgresError:
        return False


async def issuer_client(ctx: RegistryContext, engine: AsyncEngine, *, name: str) -> tuple[str, str]:
    """An issuer client of the benchmark's body, made as `registry clients create` makes one: (id, secret)."""
    from registry.clients import service as clients
    from registry.clients.schemas import ClientCreate

    async with transaction(session_factory(engine)) as session:
        created = await clients.create(
            ctx,
            session,
            actor=Actor(id="cli"),
            body=ClientCreate(role=Role.issuer, name=name, issuer_code=common.ISSUER_CODE),
        )
    return created.client_id, created.client_secret


async def fresh_registry(database_url: str, key: str) -> tuple[RegistryContext, AsyncEngine, Issuer]:
    """Drop and re-create the database, migrate it, and register the benchmark's evaluation body."""
    await common.recreate_database(database_url)
    ctx = RegistryContext.from_settings(Settings(database_url=database_url, master_key=key, env="test"))
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with transaction(session_factory(engine)) as session:
            await issuers.create(
                ctx, session, actor=Actor(id="cli"), body=IssuerCreate.model_validate(common.issuer_body())
            )
            issuer = await issuers.get_by_code(session, common.ISSUER_CODE)
    except BaseException:
        await engine.dispose()
        raise
    assert issuer is not None
    return ctx, engine, issuer


async def load(database_url: str, count: int, *, data_dir: Path, max_seconds: float) -> LoadResult:
    name = common.database_name(database_url)
    key = common.master_key_for(data_dir, name)  # also creates data_dir
    metadata_path(data_dir, name).unlink(missing_ok=True)
    ctx, engine, issuer = await fresh_registry(database_url, key)
    assert issuer.id is not None
    principal = Principal(
        client_id="bench-load",
        role=Role.issuer,
        scopes=frozenset(scope.value for scope in ROLE_SCOPES[Role.issuer]),
        issuer_id=issuer.id,
        issuer_code=issuer.code,
        region=issuer.region,
    )
    try:
        result = await _fill(
            ctx,
            session_factory(engine),
            database_url=database_url,
            issuer=issuer,
            principal=principal,
            count=count,
            name=name,
            data_dir=data_dir,
            limit=max_seconds,
        )
    finally:
        await engine.dispose()
    metadata_path(data_dir, name).write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return result


# Long: the load loop with its timing, progress line and ANALYZE schedule, which share its counters.
async def _fill(
    ctx: RegistryContext,
    sessions: async_sessionmaker[AsyncSession],
    *,
    database_url: str,
    issuer: Issuer,
    principal: Principal,
    count: int,
    name: str,
    data_dir: Path,
    limit: float,
) -> LoadResult:
    started = time.perf_counter()
    done = 0
    spent = {"validate": 0.0, "issue": 0.0, "commit": 0.0}
    last_report = started
    analyzed_at = CHUNK // 2  # the first ANALYZE after one chunk, then whenever the table has doubled
    with tokens_path(data_dir, name).open("w", encoding="ascii") as tokens:
        while done < count:
            if time.perf_counter() - started > limit:
                print(f"stopping: --max-seconds {limit:.0f} reached after {done:,} certificates", file=sys.stderr)
                break
            rows = common.make_rows(min(CHUNK, count - done), offset=done)
            t0 = time.perf_counter()
            async with transaction(sessions) as session:
                parsed, unreadable = certificate_rows.parse_rows(rows)
                screening = await awards.screen(ctx, session, issuer=issuer, awards=parsed)
                screening.refusals += unreadable
                screening.refuse_batch(rows=len(rows))
                t1 = time.perf_counter()
                minted = await recording.record(
                    ctx, session, actor=principal.actor, issuer=issuer, accepted=screening.accepted, purpose="load"
                )
                t2 = time.perf_counter()
            t3 = time.perf_counter()
            spent["validate"] += t1 - t0
            spent["issue"] += t2 - t1
            spent["commit"] += t3 - t2
            tokens.writelines(f"{m.verify_token}\n" for m in minted)
            done += len(rows)
            if done >= analyzed_at * 2:
                await _analyze(database_url)
                analyzed_at = done
            now = time.perf_counter()
            if now - last_report >= 10 or done == count:
                elapsed = now - started
                eta = (count - done) / (done / elapsed)
                print(
                    f"  {done:>10,} certificates  {done / elapsed:8,.0f}/s overall  "
                    f"last chunk {len(rows) / (t3 - t0):8,.0f}/s  eta {eta:5.0f} s",
                    flush=True,
                )
                last_report = now
    seconds = time.perf_counter() - started
    vacuum_started = time.perf_counter()
    connection = await asyncpg.connect(common.driver_dsn(database_url))
    try:
        await connection.execute("VACUUM ANALYZE")  # what autovacuum would have done by the time anyone reads
    finally:
        await connection.close()
    return LoadResult(
        database=name,
        count=done,
        seconds=round(seconds, 1),
        rate=round(done / seconds, 1),
        validate_seconds=round(spent["validate"], 1),
        issue_seconds=round(spent["issue"], 1),
        commit_seconds=round(spent["commit"], 1),
        vacuum_seconds=round(time.perf_counter() - vacuum_started, 1),
        key_fingerprint=common.key_fingerprint(common.master_key_for(data_dir, name)),
        schema_revision=schema_head(),
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        complete=done == count,
    )


async def _analyze(database_url: str) -> None:
    """Refresh planner statistics while the tables grow from nothing.

    Autovacuum only re-analyzes after 10% of a table changes and at most once a minute; until then the plans cached
    for the batch path's prepared ``IN (...)`` look-ups stay the sequential scans chosen when the tables were empty,
    and every chunk gets slower than the last (quadratic overall). ANALYZE also invalidates those cached plans.
    """
    connection = await asyncpg.connect(common.driver_dsn(database_url))
    try:
        await connection.execute("ANALYZE certificates, holders, certificate_events, audit_log")
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="postgresql+asyncpg://... (dropped and re-created)")
    parser.add_argument("--count", type=int, required=True, help="certificates to load")
    parser.add_argument("--data-dir", type=Path, default=common.DEFAULT_DATA_DIR, help="tokens, key, metadata")
    parser.add_argument("--max-seconds", type=float, default=3600, help="stop loading after this long")
    parser.add_argument("--if-needed", action="store_true", help="do nothing when already loaded with this count")
    args = parser.parse_args()
    url: str = args.database_url
    if not url.startswith("postgresql+asyncpg://"):
        parser.error("--database-url must be postgresql+asyncpg://")
    print(f"machine: {common.machine()}; python {sys.version.split()[0]}; 1-min load {common.loadavg():.2f}")
    if args.if_needed and asyncio.run(is_loaded(url, args.count, args.data_dir)):
        print(f"{common.database_name(url)} already holds {args.count:,} certificates; nothing to do")
        return
    print(f"loading {args.count:,} certificates into {common.database_name(url)} in chunks of {CHUNK:,}")
    settle_garbage_collector()  # as `registry import` does
    result = asyncio.run(load(url, args.count, data_dir=args.data_dir, max_seconds=args.max_seconds))
    print(
        f"loaded {result.count:,} certificates in {result.seconds:,.1f} s: {result.rate:,.0f} certificates/s "
        f"(screen {result.validate_seconds:,.0f} s, record {result.issue_seconds:,.0f} s, "
        f"commit {result.commit_seconds:,.0f} s; then VACUUM ANALYZE {result.vacuum_seconds:,.0f} s)"
    )
    print(f"tokens: {tokens_path(args.data_dir, result.database)}")
    if not result.complete:
        sys.exit(1)


if __name__ == "__main__":
    main()
