"""Applying Alembic migrations from the application (``registry migrate``, ``registry serve``, the tests).

A migration waits for a lock another session holds (its ALTER TABLE behind a transaction left idle after reading the
table, a long report, an import's chunk) no longer than the lock bound of its engine (``registry.db.create_engine``'s
``lock_timeout``: ``bound_lock_waits`` on PostgreSQL, the busy timeout on SQLite). Waiting as long as the lock is held
would be a silent hang, and on PostgreSQL every later reader of that table queues behind the waiting ALTER: the live
service would stall with it. The whole run is one transaction (Alembic's DDL is transactional on PostgreSQL, and
SQLite's batch moves run inside it too), so a run that gives up is rolled back whole, and ``upgrade`` raises
``MigrationLockWait`` (a ServiceUnavailable) naming the migration under way and the session holding the lock.
Retrying is the caller's call: nothing here tries again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from registry.errors import MigrationLockWait
from registry.faults import RETRY_AFTER_SECONDS, Fault, database_fault
from registry.i18n import Message, _

MIGRATIONS_DIR = Path(migrations.__file__).parent
MIGRATE_LOCK = 72657269  # the PostgreSQL advisory lock migrations take (registry.certificates.seal_upgrade too)
_HOLDERS_NAMED = 3
# Sessions holding a lock on a table of this database (not a catalogue's), oldest transaction first. pg_locks and
# pg_stat_activity's pid and application_name are readable by any role; the state only for the role's own sessions
# (or with pg_read_all_stats), NULL otherwise.
_LOCK_HOLDERS = """
SELECT DISTINCT l.pid, a.application_name, a.state, c.relname, a.xact_start
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND c.relnamespace <> 'pg_catalog'::regnamespace
ORDER BY a.xact_start NULLS LAST, l.pid
"""
# The session holding the migrations' turn (MIGRATE_LOCK: a bigint advisory lock, its low 32 bits in objid).
_TURN_HOLDERS = f"""
SELECT l.pid, a.application_name, a.state
FROM pg_locks l
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = {MIGRATE_LOCK} AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""  # noqa: S608  # nosec B608 - MIGRATE_LOCK is a constant int


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(
    engine: AsyncEngine, revision: str = "head", *, waiting: Callable[[Message], None] | None = None
) -> None:
    """Migrate over a connection of ``engine``, in one transaction; on PostgreSQL an advisory lock keeps concurrent
    starters in line (``waiting`` is told, before this one waits its turn, which session's migration it waits for).
    A wait for a lock another session holds that outlives the engine's bound is rolled back whole and raised as
    ``MigrationLockWait``, naming the migration under way and who holds the lock."""
    under_way: list[str] = []

    def _upgrade(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            _take_turn(connection, waiting)
        config = alembic_config()
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, revision)
        except Exception as exc:
            under_way.extend(_revisions_in(exc.__traceback__)[-1:])
            raise

    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    except Exception as exc:
        if database_fault(exc) is not Fault.locked:
            raise
        holder = await _lock_holder(engine, exc)  # the run is rolled back by now; the holder still holds its lock
        raise _locked_out(under_way[0] if under_way else None, holder) from exc


def _take_turn(connection: Connection, waiting: Callable[[Message], None] | None) -> None:
    """Wait for another instance's migration to end (two starting at once), for as long as it takes: its own lock
    waits are bounded, and waiting for it holds no lock any reader needs. The bound applies again from here on.
    A wait is said first, naming the session that runs the other migration: a starter hung while holding its turn
    (a stopped process, a session left idle in transaction) would otherwise keep this one waiting without a word."""
    bound = connection.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar_one()
    connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
    if not connection.exec_driver_sql(f"SELECT pg_try_advisory_xact_lock({MIGRATE_LOCK})").scalar_one():
        rows = connection.exec_driver_sql(_TURN_HOLDERS).all() if waiting is not None else []
        if waiting is not None and rows:  # none: the other migration has just ended
            message = _(
                "another migration of this database is under way, in session {sessions}: waiting for it to end, "
                "however long it takes (migrations run one at a time); if that session hangs, end it (SELECT "
                "pg_terminate_backend(PID)) and this one goes on",
                sessions="; ".join(dict.fromkeys(_session(row) for row in rows)),
            )
            waiting(message)
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
    connection.execute(text("SELECT set_config('lock_timeout', :bound, true)"), {"bound": bound})


def _revisions_in(trace: TracebackType | None) -> list[str]:
    """The revisions whose scripts an error was raised through, outermost first: each script names its ``revision``."""
    versions = MIGRATIONS_DIR / "versions"
    found: list[str] = []
    while trace is not None:
        frame = trace.tb_frame
        revision = frame.f_globals.get("revision")
        if isinstance(revision, str) and Path(frame.f_code.co_filename).parent == versions:
            found.append(revision)
        trace = trace.tb_next
    return found


async def _lock_holder(engine: AsyncEngine, error: BaseException) -> Message:
    """Who holds the lock the migration gave up on, as far as can be read without superuser: on PostgreSQL the
    sessions holding locks on the tables the statement that waited names (else on any table), by pid, application
    name and state; else where to look."""
    if engine.dialect.name != "postgresql":
        return _("another connection to the database file")
    statement = (error.statement or "") if isinstance(error, StatementError) else ""
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text(_LOCK_HOLDERS))).all()
    except (SQLAlchemyError, OSError):  # only a courtesy: the stop is said all the same
        rows = []
    named = [row for row in rows if re.search(rf"\b{re.escape(row.relname)}\b", statement)]
    sessions = list(dict.fromkeys(_session(row) for row in named or rows))
    if not sessions:
        return _(
            "another session (gone by now, or not to be seen: look in pg_stat_activity for one idle in transaction, "
            "and in pg_locks)"
        )
    return _("another session ({sessions})", sessions="; ".join(sessions[:_HOLDERS_NAMED]))


def _session(row: Row[Any]) -> str:
    return ", ".join([f"pid {row.pid}", *(part for part in (row.application_name, row.state) if part)])


def _locked_out(revision: str | None, holder: str) -> MigrationLockWait:
    """What a migration that gave up waiting for a lock says: which, who holds the lock, that nothing was migrated."""
    what = _("migration {revision}", revision=revision) if revision else _("the migrations")
    detail = _(
        "cannot migrate: {what} waited for a lock that {holder} holds, and gave up at the lock timeout; nothing was "
        "migrated (this run's changes were rolled back). Run the migration again once that transaction has ended",
        what=what,
        holder=holder,
    )
    return MigrationLockWait(detail, retry_after=RETRY_AFTER_SECONDS[Fault.locked])


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    def _downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_downgrade)
