"""Assertions the integration tests share: an RFC 9457 problem answer, "a refused request wrote nothing", and a
system tool the test needs."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Awaitable, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Row, func, inspect, literal_column, select, table, text

from registry.db import transaction

PROBLEM_JSON = "application/problem+json"


def require_tool(command: str, package: str) -> str:
    """The path of a system command the test needs: fails under CI (``.ci/run`` installs it), skips elsewhere."""
    path = shutil.which(command)
    if path is None:
        message = f"{command} is not installed (apt-get install {package}; .ci/run installs it)"
        if os.environ.get("CI") or os.environ.get("REGISTRY_TEST_REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    return path


async def _tables(app: FastAPI) -> list[str]:
    """Every table in the database (read from the database itself, so a table added by a migration is never missed),
    but Alembic's own bookkeeping."""
    async with app.state.engine.connect() as connection:
        names: list[str] = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    return sorted(name for name in names if name != "alembic_version")


async def row_counts(app: FastAPI) -> dict[str, int]:
    async with transaction(app.state.sessions) as session:
        return {
            name: int((await session.execute(select(func.count()).select_from(table(name)))).scalar_one())
            for name in await _tables(app)
        }


async def table_digests(app: FastAPI) -> dict[str, str]:
    """A digest of every row of every table: equal before and after means nothing was added, removed or changed."""
    digests: dict[str, str] = {}
    async with transaction(app.state.sessions) as session:
        for name in await _tables(app):
            rows: Sequence[Row[Any]] = (
                await session.execute(select(literal_column("*")).select_from(table(name)))
            ).all()
            canonical = "\n".join(sorted(repr(tuple(row)) for row in rows))
            digests[name] = f"{len(rows)}:{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"
    return digests


async def leaves_no_trace(app: FastAPI, request: Awaitable[httpx.Response]) -> httpx.Response:
    """Send ``request`` (a not-yet-started coroutine) and assert that no row of any table was added, removed or
    changed (contents compared, not just counts)."""
    before = await table_digests(app)
    response = await request
    after = await table_digests(app)
    changed = {name: (before.get(name), after.get(name)) for name in before.keys() | after.keys()}
    changed = {name: pair for name, pair in changed.items() if pair[0] != pair[1]}
    assert not changed, f"a refused request wrote to the database (rows:digest before -> after): {changed}"
    return response


def assert_problem(
    response: httpx.Response,
    status: int,
    *,
    field: str | None = None,
    message: str | None = None,
    slug: str | None = None,
    secret: str | None = None,
) -> dict[str, Any]:
    """An RFC 9457 problem with ``status``; for validation errors ``field`` must be named in ``errors`` (and its
    message contain ``message``); ``secret`` (a rejected identity number, say) must not be echoed back."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    for member in ("type", "title", "status", "detail"):
        assert body.get(member) not in (None, ""), f"problem member {member!r} is missing or empty: {body}"
    assert body["status"] == status
    if slug is not None:
        assert body["type"].endswith("/" + slug), body["type"]
    if field is not None:
        errors = body.get("errors")
        assert isinstance(errors, list), f"no errors list: {body}"
        named = {error["field"]: error["message"] for error in errors}
        assert field in named, f"{field!r} not named in {errors}"
        if message is not None:
            assert message in named[field], named[field]
    if secret is not None:
        assert secret not in response.text, "the rejected identity number was echoed back"
    return body


async def run_sql(app: FastAPI, statement: str, **params: object) -> None:
    """Change the database behind the registry's back, as an operator or an attacker with access to it could."""
    async with transaction(app.state.sessions) as session:
        await session.execute(text(statement), params)
