"""What every command that uses the database shares: its settings (named without their values when wrong), the
migrations, and one line with exit 4, not a traceback, when the database cannot be reached or refuses us (exit 2 when
it was migrated by a newer version, or the master key does not open its secrets); and the language every command
speaks to people in (``reader_language``, ``said``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from registry.config import Settings
from registry.errors import ConfigurationError
from registry.i18n import Language, Message, _, language_of, message_of, translate

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from registry.context import RegistryContext

_T = TypeVar("_T")


def reader_language(chosen: str | None, environ: Mapping[str, str] = os.environ) -> Language:
    """The language a command speaks in: ``--lang`` (zh or en, zh-CN and the like too), else the locale's, as gettext
    reads it (the first of LC_ALL, LC_MESSAGES and LANG that is set: zh_CN.UTF-8 is Chinese), else English."""
    if chosen is not None:
        language = language_of(chosen)
        if language is None:
            raise typer.BadParameter(_("{value}: give zh or en", value=repr(chosen)), param_hint="--lang")
        return language
    locale = next((value for name in ("LC_ALL", "LC_MESSAGES", "LANG") if (value := environ.get(name))), "")
    return language_of(locale.split(".")[0].split("@")[0]) or "en"


def said(message: str, lang: Language | None = None) -> str:
    """A message to people (``_()``) in ``lang``, the command's language (``--lang``); without one, the locale's."""
    return translate(message, lang or reader_language(None))


# Connection options whose value is a credential: left out of the start-up line, not masked after the fact (the
# log's redaction would take the ``)`` closing the line with the value).
_CREDENTIAL_OPTIONS = ("password", "secret", "token", "user")  # who connects is named nowhere either
# What the command line's sessions are called on PostgreSQL (``pg_stat_activity``): a migration waiting for a lock,
# or for another starter's turn, names the session holding it by this.
MIGRATE_APPLICATION = "talent-registry-migrate"
IMPORT_APPLICATION = "talent-registry-import"


def database_for_log(url: str) -> str:
    """The database a start-up line names: where it is (host, port, database and the connection options), never the
    user, the password or an option holding a credential (``?password=…``)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(query={}).render_as_string(hide_password=True)
    place = f"{parsed.host or ''}{f':{parsed.port}' if parsed.port else ''}/{parsed.database or ''}"
    options = [
        f"{name}={value}"
        for name, values in parsed.query.items()
        if not any(word in name.lower() for word in _CREDENTIAL_OPTIONS)
        for value in ((values,) if isinstance(values, str) else values)
    ]
    return place + (f"?{'&'.join(options)}" if options else "")


def load_settings(lang: Language | None = None) -> Settings:
    from pydantic import ValidationError

    try:
        settings = Settings()
        settings.check_production()
    except ValidationError as exc:
        # Each setting by its variable's name and what is wrong with it, never the value: a mistyped master key or a
        # database URL with its password would otherwise be printed (pydantic repeats the input).
        for error in exc.errors():
            name = "REGISTRY_" + "_".join(str(part) for part in error["loc"]).upper()
            problem = _("{field}: {message}", field=name, message=error["msg"])
            typer.echo(said(_("configuration error: {problem}", problem=problem), lang), err=True)
        raise typer.Exit(2) from None
    except (ConfigurationError, ValueError) as exc:
        typer.echo(said(_("configuration error: {problem}", problem=message_of(exc)), lang), err=True)
        raise typer.Exit(2) from None
    return settings


async def migrate_database(
    settings: Settings, lang: Language | None = None, *, lock_timeout: float | None = None
) -> list[str]:
    """Migrate, check the master key and bring the seals up to date; returns the numbers of certificates found
    unsealed on the way (``registry.certificates.seal_upgrade.upgrade_seals``), which only ``registry migrate``
    stops for (``say_migrated``). ``lock_timeout``: how long one of its statements may wait for a lock another
    session holds (``registry.db.bound_lock_waits``; SQLite's busy timeout): ``registry import`` passes its own
    bound, every other command REGISTRY_MIGRATE_LOCK_TIMEOUT_SECONDS. A migration that gives up is rolled back and
    raised as MigrationLockWait naming it and the lock's holder (``registry.migrate.upgrade``; ``with_database``
    says it, exit 4)."""
    from registry.certificates.seal_upgrade import upgrade_seals
    from registry.db import create_engine, session_factory
    from registry.keys.key_check import check_master_key_on
    from registry.keys.secrets_box import SecretsBox

    bound = settings.migrate_lock_timeout_seconds if lock_timeout is None else lock_timeout
    # Named in pg_stat_activity: a starter hung while holding the migrations' turn is named to the next one by it.
    engine = create_engine(settings.database_url, lock_timeout=bound, application_name=MIGRATE_APPLICATION)
    box = SecretsBox.from_master_key(settings.master_key_bytes)
    try:
        await _upgrade(engine, lang)
        # Before anything is sealed or trusted: a key that does not open the database's secrets is refused.
        await check_master_key_on(engine, box)
        # Once each, what the migrations cannot do without the master key: status seals bound to their slots
        # (migration 0019), then status lists kept from before their seals (0018) rebuilt from their certificates and
        # sealed. Later starts skip both with a look-up.
        found = await upgrade_seals(session_factory(engine), box)
        return list(dict.fromkeys(found + await _unsealed(engine)))
    finally:
        await engine.dispose()


async def _unsealed(engine: AsyncEngine) -> list[str]:
    """The certificates without a status seal, at every run: the re-seal pass names those it finds only once (its
    ``seal_upgrades`` row), and a downgrade's lost seals must be said by every ``registry migrate`` until restored."""
    from sqlalchemy import text

    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT number FROM certificates WHERE status_seal IS NULL"))
        return [str(number) for (number,) in rows]


async def _upgrade(engine: AsyncEngine, lang: Language | None) -> None:
    """Upgrade to the newest revision; a database at a revision this version does not know (migrated by a newer
    version) is one line and exit 2: this version can neither upgrade it nor serve its schema. A wait for another
    instance's migration is said on stderr as it begins, naming that session: it lasts as long as that one runs."""
    from alembic.util import CommandError

    from registry.migrate import upgrade

    def waiting(message: Message) -> None:
        typer.echo(said(message, lang), err=True)

    try:
        await upgrade(engine, waiting=waiting)
    except CommandError:
        unknown = await _unknown_revision(engine)
        if unknown is None:
            raise
        typer.echo(said(_("error: {problem}", problem=unknown), lang), err=True)
        raise typer.Exit(2) from None


async def _unknown_revision(engine: AsyncEngine) -> str | None:
    """What to say when the database is stamped with a revision the migrations do not hold, else None."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

    from registry.migrate import alembic_config

    def current(connection: Connection) -> tuple[str, ...]:
        return MigrationContext.configure(connection).get_current_heads()

    scripts = ScriptDirectory.from_config(alembic_config())
    known = {script.revision for script in scripts.walk_revisions()}
    async with engine.connect() as connection:
        unknown = sorted(set(await connection.run_sync(current)) - known)
    if not unknown:
        return None
    return _(
        "the database is at revision {revisions}, which this version of the registry does not know (its newest is "
        "{newest}): it was migrated by a newer version; run that version or a newer one, or restore the backup taken "
        "before that upgrade",
        revisions=", ".join(unknown),
        newest=scripts.get_current_head(),
    )


# What a command exits with when the database cannot be reached or is busy (as `registry import` does).
DATABASE_UNAVAILABLE_EXIT = 4
# What `registry migrate` exits with when the migration found certificates whose status seal does not check out.
UNSEALED_CERTIFICATES_EXIT = 6
_NAMED_AT_MOST = 20


def say_migrated(unsealed: list[str], lang: Language | None = None) -> None:
    """The last words of ``registry migrate``: the database is up to date, or — certificates found whose status seal
    does not check out (the seal columns dropped by a downgrade with the alembic CLI, or rows written with SQL) — how
    many, the first of them, what that means and what to do, and exit 6. The registry still serves them: 'unknown'."""
    if not unsealed:
        typer.echo(said(_("database is at the latest revision"), lang), err=True)
        return
    problem = _(
        "the database is at the latest revision, but {count} certificates do not match their status seal and now "
        "verify as 'unknown' ({numbers}). The seals were lost or altered outside the registry: a downgrade with the "
        "alembic command (not supported: it drops the seals, which only the registry can make) or a change with SQL. "
        "Run `registry audit verify` to list what does not check out, then restore the backup taken before the "
        'downgrade or the change (README, "Backups")',
        count=len(unsealed),
        numbers=", ".join(unsealed[:_NAMED_AT_MOST]) + (", …" if len(unsealed) > _NAMED_AT_MOST else ""),
    )
    typer.echo(said(_("error: {problem}", problem=problem), lang), err=True)
    raise typer.Exit(UNSEALED_CERTIFICATES_EXIT)


def with_database(work: Coroutine[Any, Any, _T], lang: Language | None = None) -> _T:
    """``asyncio.run(work)``; a database out of reach or busy (registry.faults; a migration that gave up waiting for a
    lock, naming itself and the lock's holder) is one line on stderr (in ``lang``) and exit 4, not a traceback."""
    from registry import faults
    from registry.errors import MigrationLockWait

    try:
        return asyncio.run(work)
    except ConfigurationError as exc:  # a master key that is not the database's (registry.keys.key_check)
        typer.echo(said(_("configuration error: {problem}", problem=message_of(exc)), lang), err=True)
        raise typer.Exit(2) from None
    except MigrationLockWait as exc:  # said by registry.migrate.upgrade: its own words
        typer.echo(said(_("error: {problem}", problem=exc.detail), lang), err=True)
        raise typer.Exit(DATABASE_UNAVAILABLE_EXIT) from None
    except Exception as exc:
        fault = faults.database_fault(exc)
        refused = None if fault is not None else _refused_connection(exc)
        cancelled = None if fault is not None or refused is not None else _cancelled(exc)
        if fault is not None:
            problem = faults.unavailable(fault).detail
        elif refused is not None:
            problem = _("the database refused us: {refused}", refused=refused)
        elif cancelled is not None:
            problem = _(
                "the database cancelled a statement ({words}): a statement_timeout set on the database or its role, "
                "or an administrator, ended it; its transaction was rolled back, so nothing of it was written",
                words=cancelled,
            )
        else:
            raise
        typer.echo(said(_("error: {problem}", problem=problem), lang), err=True)
        raise typer.Exit(DATABASE_UNAVAILABLE_EXIT) from None


def _cancelled(error: BaseException) -> str | None:
    """The server's own words when it cancelled a statement (57014: its statement_timeout, which a database or role
    may set shorter than a migration's lock bound, or pg_cancel_backend), else None. The words are the server's fixed
    reason, never the statement."""
    import asyncpg

    seen: BaseException | None = error
    for _attempt in range(8):  # SQLAlchemy's wrapper, the adapter's, the driver's
        if seen is None:
            return None
        if isinstance(seen, asyncpg.exceptions.QueryCanceledError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _refused_connection(error: BaseException) -> str | None:
    """The server's own words when it answered but would not let us in (no such database, role or password) or the
    SQLite file cannot be opened: configuration, not an outage, said in one line all the same. The words name the
    database or the role, never a password."""
    import sqlite3

    import asyncpg

    seen: BaseException | None = error
    for _attempt in range(8):  # SQLAlchemy's wrapper, the adapter's, the driver's
        if seen is None:
            return None
        if isinstance(seen, asyncpg.InvalidCatalogNameError | asyncpg.InvalidAuthorizationSpecificationError):
            return str(seen)
        if isinstance(seen, sqlite3.OperationalError) and "unable to open database file" in str(seen):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def run_in_transaction(settings: Settings, work: Callable[[RegistryContext, AsyncSession], Awaitable[_T]]) -> _T:
    """Migrate, then ``work`` in one transaction; a refusal is printed and exits 1, a database out of reach exits 4."""
    from registry.context import RegistryContext
    from registry.db import create_engine, session_factory, transaction
    from registry.errors import RegistryError

    async def run() -> _T:
        await migrate_database(settings)
        engine = create_engine(settings.database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(RegistryContext.from_settings(settings), session)
        finally:
            await engine.dispose()

    try:
        return with_database(run())
    except RegistryError as exc:
        typer.echo(said(_("error: {problem}", problem=exc.detail)), err=True)
        raise typer.Exit(1) from None
