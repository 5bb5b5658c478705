"""Plausible database mistakes end in one line naming the problem and what to do, exit 2, not a traceback: a URL with
a driver the registry does not use (a bare postgresql:// is psycopg to SQLAlchemy, which is not installed), and a
database migrated by a newer version of the registry (a revision these migrations do not hold)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from registry.db import create_engine
from tests.integration.cli_support import registry_env, run_registry

PASSWORD = "s3cret-Pa55"  # must never be printed
NEWER_REVISION = "20271231_9999"


@pytest.mark.parametrize(
    ("variable", "url", "said"),
    [
        (
            "REGISTRY_DATABASE_URL",
            f"postgresql://registry:{PASSWORD}@127.0.0.1:5432/registry",
            "must use the postgresql+asyncpg:// or sqlite+aiosqlite:// driver, not postgresql://",
        ),
        ("REGISTRY_DATABASE_URL", f"postgres://registry:{PASSWORD}@127.0.0.1/registry", "not postgres://"),
        ("REGISTRY_DATABASE_URL", "sqlite:///registry.db", "not sqlite://"),
        ("REGISTRY_DATABASE_URL", f"registry:{PASSWORD}@127.0.0.1/registry", "not a database URL"),
        (
            "REGISTRY_DATABASE_URL",
            f"postgresql+asyncpg://registry:{PASSWORD}@db:port/registry",
            "not a database URL",
        ),
        (
            "REGISTRY_DATABASE_READ_URL",
            f"postgresql+psycopg2://registry:{PASSWORD}@127.0.0.1/registry",
            "not postgresql+psycopg2://",
        ),
    ],
    ids=["postgresql", "postgres", "sqlite", "no-scheme", "bad-port", "read-url-psycopg2"],
)
async def test_a_database_url_with_another_driver_is_one_line(
    variable: str, url: str, said: str, tmp_path: Path
) -> None:
    env = registry_env(f"sqlite+aiosqlite:///{tmp_path}/registry.db") | {variable: url}
    code, out, err = await run_registry("migrate", env=env)
    assert code == 2, err
    (line,) = err.splitlines()
    assert line.startswith(f"configuration error: {variable}"), line
    assert said in line
    assert PASSWORD not in out + err


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "0"]])
async def test_a_database_migrated_by_a_newer_version_is_one_line(database_url: str, command: list[str]) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = :newer"), {"newer": NEWER_REVISION})
    await engine.dispose()
    code, _, err = await run_registry(*command, env=registry_env(database_url))
    assert code == 2, err
    assert "Traceback" not in err
    (line,) = err.splitlines()  # serve's logs are JSON lines on stdout; stderr holds the one line
    assert line.startswith(f"error: the database is at revision {NEWER_REVISION}, which this version"), line
    assert "migrated by a newer version" in line
