"""Assertions the integration tests share: an RFC 9457 problem answer, "a refused request wrote nothing", and a
system tool the test needs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

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


# Literal statements (no string building): every table a refused request could leave a row in.
_COUNT_STATEMENTS = {
    "certificates": "SELECT count(*) FROM certificates",
    "certificate_events": "SELECT count(*) FROM certificate_events",
    "holders": "SELECT count(*) FROM holders",
    "issuers": "SELECT count(*) FROM issuers",
    "issuer_filed_scopes": "SELECT count(*) FROM issuer_filed_scopes",
    "api_clients": "SELECT count(*) FROM api_clients",
    "audit_log": "SELECT count(*) FROM audit_log",
    "idempotency_records": "SELECT count(*) FROM idempotency_records",
    "catalogue_entries": "SELECT count(*) FROM catalogue_entries",
    "signing_keys": "SELECT count(*) FROM signing_keys",
    "status_lists": "SELECT count(*) FROM status_lists",
    "transparency_leaves": "SELECT count(*) FROM transparency_leaves",
}


async def row_counts(app: FastAPI) -> dict[str, int]:
    async with transaction(app.state.sessions) as session:
        return {
            table: int((await session.execute(text(statement))).scalar_one())
            for table, statement in _COUNT_STATEMENTS.items()
        }


async def leaves_no_trace(app: FastAPI, request: Awaitable[httpx.Response]) -> httpx.Response:
    """Send ``request`` (a not-yet-started coroutine) and assert that no table gained or lost a row."""
    before = await row_counts(app)
    response = await request
    after = await row_counts(app)
    assert after == before, f"a refused request wrote to the database: {before} -> {after}"
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
