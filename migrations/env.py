"""Alembic environment: runs migrations on an async engine, or on a connection handed over by the application."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import registry.models  # noqa: F401 — registers every table on the metadata
from registry.config import Settings
from registry.db import create_engine, metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `registry migrate`")

shared: Connection | None = config.attributes.get("connection")
if shared is not None:
    _run(shared)
else:
    asyncio.run(_run_async(config.get_main_option("sqlalchemy.url") or Settings().database_url))
