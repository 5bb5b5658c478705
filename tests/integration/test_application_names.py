"""The command line's PostgreSQL sessions carry their name (``pg_stat_activity.application_name``), so that a session
holding a lock another waits for can be named to the operator (registry.migrate); SQLite has no such thing."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from cli.database import IMPORT_APPLICATION, MIGRATE_APPLICATION
from registry.db import create_engine, is_sqlite


@pytest.mark.parametrize("name", [MIGRATE_APPLICATION, IMPORT_APPLICATION])
async def test_an_engine_given_an_application_name_connects_under_it(database_url: str, name: str) -> None:
    engine = create_engine(database_url, lock_timeout=5, application_name=name)
    try:
        async with engine.connect() as connection:
            if is_sqlite(database_url):
                assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
                return
            shown = await connection.execute(
                text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
            )
            assert shown.scalar_one() == name
            bound = await connection.execute(text("SELECT current_setting('lock_timeout')"))
            assert bound.scalar_one() == "5s"  # the name takes none of the other connection settings' place
    finally:
        await engine.dispose()
