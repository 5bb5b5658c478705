"""Test fixtures: a real, freshly migrated database per test, on SQLite and on PostgreSQL.

Each backend is migrated once per run into a template; every test gets its own copy (a file copy on SQLite,
``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), so tests share no state and may commit freely.

PostgreSQL is taken from REGISTRY_TEST_POSTGRES_URL (default: the local server, database ``test``). When it cannot be
reached the PostgreSQL variants are skipped with a message saying so — unless REGISTRY_TEST_REQUIRE_POSTGRES=1
(set by .ci/run), in which case they fail.

Apps and commands sign in process (``REGISTRY_BATCH_WORKERS=0``) unless a test asks for worker processes
(tests/integration/test_batch_workers.py, test_batch_storage.py): a pool per app would start two processes for each of
hundreds of tests. Set ``REGISTRY_BATCH_WORKERS`` before running pytest to run the whole suite with workers.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from api.app import create_app, dispose
from registry import clock
from registry.config import Settings
from registry.db import create_engine
from registry.migrate import upgrade

os.environ.setdefault("REGISTRY_BATCH_WORKERS", "0")  # before any Settings() is made; see the docstring
POSTGRES_URL = os.environ.get("REGISTRY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("REGISTRY_TEST_REQUIRE_POSTGRES") == "1"
MASTER_KEY = "5f" * 32
BACKENDS = ["sqlite", "postgresql"]


def _admin_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _database_url(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _postgres_reachable() -> str | None:
    try:
        connection = await asyncpg.connect(_admin_dsn(POSTGRES_URL), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


@asynccontextmanager
async def scratch_database(prefix: str, *, template: str | None = None) -> AsyncIterator[str]:
    """A database of its own on the test server (a copy of ``template`` when given), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    admin = await asyncpg.connect(_admin_dsn(POSTGRES_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await admin.close()
    try:
        yield _database_url(POSTGRES_URL, name)
    finally:
        admin = await asyncpg.connect(_admin_dsn(POSTGRES_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@dataclass
class Templates:
    sqlite_file: Path
    postgres_database: str | None
    postgres_problem: str | None


@pytest.fixture(scope="session")
async def templates(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Templates]:
    sqlite_file = tmp_path_factory.mktemp("template") / "registry.db"
    engine = create_engine(f"sqlite+aiosqlite:///{sqlite_file}")
    await upgrade(engine)
    await engine.dispose()

    problem = await _postgres_reachable()
    database = None
    if problem is None:
        database = f"tr_template_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(_admin_dsn(POSTGRES_URL))
        await admin.execute(f'CREATE DATABASE "{database}"')
        await admin.close()
        engine = create_engine(_database_url(POSTGRES_URL, database))
        await upgrade(engine)
        await engine.dispose()
    yield Templates(sqlite_file=sqlite_file, postgres_database=database, postgres_problem=problem)
    if database is not None:
        admin = await asyncpg.connect(_admin_dsn(POSTGRES_URL))
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    """A private, fully migrated database for one test."""
    if backend == "sqlite":
        target = tmp_path / "registry.db"
        shutil.copyfile(templates.sqlite_file, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    if templates.postgres_database is None:
        message = f"PostgreSQL tests skipped: no server at {POSTGRES_URL} ({templates.postgres_problem})"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " — REGISTRY_TEST_REQUIRE_POSTGRES=1 makes them mandatory")
        pytest.skip(message)
    async with scratch_database("tr_test", template=templates.postgres_database) as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        master_key=MASTER_KEY,
        public_base_url="https://registry.test",
        data_dir=tmp_path / "data",
        # Tests send many requests from one address; tests/integration/test_rate_limits.py turns limits on.
        rate_limits_enabled=False,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    yield application
    await dispose(application)


@pytest.fixture
async def no_grace(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app whose rotated client secrets stop at once (REGISTRY_CLIENT_SECRET_GRACE_SECONDS=0), with its client."""
    application = create_app(settings.model_copy(update={"client_secret_grace_seconds": 0}))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
        yield application, http
    await dispose(application)


@pytest.fixture
def pooled(settings: Settings) -> Settings:
    """Settings with two batch worker processes, used from the first batch of any size."""
    return settings.model_copy(update={"batch_workers": 2, "batch_parallel_min_rows": 1})


@pytest.fixture
async def pooled_app(pooled: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(pooled)
    yield application
    await dispose(application)


@pytest.fixture
async def pooled_client(pooled_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=pooled_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
        yield http


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
        yield http


class RegistryClock:
    """The registry's clock in a test (``registry.clock``): the one place a test sets "now", and with it the Beijing
    "today" every rule judges by. Untouched, it is the real clock; tests that need a date write it relative to
    ``today()`` or set it here, so no test depends on the day it runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def set_now(self, moment: datetime) -> None:
        assert moment.tzinfo is not None, "an aware moment: the registry's calendar is Beijing's, not the machine's"
        self._monkeypatch.setattr(clock, "now", lambda: moment.astimezone(UTC))

    def set_today(self, day: date, *, at: time = time(12, 0)) -> None:
        """Beijing date ``day`` (at noon there unless ``at`` says otherwise)."""
        self.set_now(datetime.combine(day, at, tzinfo=clock.CHINA_STANDARD_TIME))

    def freeze(self) -> None:
        """Stop the registry's clock at this moment: a test that reads "today" and then asks the registry to judge
        by it must not see Beijing's midnight (16:00 UTC) pass in between."""
        self.set_now(clock.now())

    def advance(self, delta: timedelta) -> None:
        self.set_now(clock.now() + delta)

    @staticmethod
    def today() -> date:
        return clock.today()


@pytest.fixture
def registry_clock(monkeypatch: pytest.MonkeyPatch) -> RegistryClock:
    return RegistryClock(monkeypatch)
