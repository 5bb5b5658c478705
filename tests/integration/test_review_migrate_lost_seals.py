"""Review of 5d7bebd (D4): ``registry migrate`` exits 6 and names the certificates whose status seal was lost only on
the one run that does the re-seal pass. Run again — by the operator, a deploy script's retry, or after ``registry
serve`` (which migrates on start and keeps the list to itself) — it says "database is at the latest revision" and
exits 0, while the same certificates still verify as 'unknown'."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from api.app import dispose
from cli.database import UNSEALED_CERTIFICATES_EXIT
from tests.factories import issued_certificate, ready_issuer
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_operator_fix_downgrade import _lose_the_seals


async def test_a_second_migrate_still_says_the_seals_are_lost_and_exits_6(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str
) -> None:
    issuer = await ready_issuer(app, client)
    certificate = await issued_certificate(client, issuer)
    await dispose(app)
    await _lose_the_seals(database_url, backend)
    env = {**registry_env(database_url), "LANG": "C.UTF-8", "LC_ALL": ""}

    first = await run_registry("migrate", env=env)
    assert first[0] == UNSEALED_CERTIFICATES_EXIT, first

    code, out, err = await run_registry("migrate", env=env)  # nothing was restored: the seals are still lost
    assert code == UNSEALED_CERTIFICATES_EXIT, (code, out, err)
    assert "do not match their status seal" in err, err
    assert certificate["number"] in err, err
