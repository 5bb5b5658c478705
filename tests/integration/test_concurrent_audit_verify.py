"""`registry audit verify` while the registry serves, on PostgreSQL: a status change committing while the check reads
must not be reported as tampering. The check read each table in a statement of its own (READ COMMITTED), so a
suspension committing between its read of a certificate and its read of that certificate's history was named
"status rolled back?" (and an issuance between the log's leaves and its heads "leaf removed"), exit 1, on an intact
registry. It now reads one snapshot."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from cli.main import app as cli_app
from registry.certificates import integrity
from tests.factories import issued_certificate
from tests.integration.cli_support import registry_env
from tests.integration.lifecycle_support import act, set_up

POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"])  # SQLite: the check holds the write lock


@POSTGRESQL_ONLY
async def test_a_suspension_committed_while_audit_verify_reads_is_not_reported_as_tampering(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    loop = asyncio.get_running_loop()
    suspensions: list[httpx.Response] = []
    event_histories = integrity._event_histories

    async def after_a_suspension(*args: Any, **kwargs: Any) -> Any:
        # The check has read the certificates (active) and not yet their histories: the issuer suspends one now.
        if not suspensions:
            asked = asyncio.run_coroutine_threadsafe(act(client, world.issuer, certificate["number"], "suspend"), loop)
            suspensions.append(await asyncio.wrap_future(asked))
        return await event_histories(*args, **kwargs)

    monkeypatch.setattr(integrity, "_event_histories", after_a_suspension)
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, ["audit", "verify"], env=registry_env(database_url))

    assert [s.status_code for s in suspensions] == [200], [s.text for s in suspensions]
    assert result.exit_code == 0, result.output
    assert "certificate statuses agree with their history and status lists" in result.output
