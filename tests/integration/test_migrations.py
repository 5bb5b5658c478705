"""Migrations are reversible: down to nothing and back up again, on both databases."""

from __future__ import annotations

from sqlalchemy import inspect, text

from registry.db import create_engine
from registry.migrate import downgrade, upgrade


async def test_migrations_downgrade_to_empty_and_upgrade_again(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await downgrade(engine, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await upgrade(engine)
        async with engine.connect() as connection:
            count = (await connection.execute(text("SELECT count(*) FROM catalogue_entries"))).scalar_one()
        assert count >= 100
    finally:
        await engine.dispose()
