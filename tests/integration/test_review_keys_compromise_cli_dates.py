"""Review of cfdb961: `registry keys compromise --compromised-from` takes a date the API refuses and crashes on it.

The API's compromise route refuses, with 422, a ``compromised_from`` that is not a moment between 0001-01-01 and
9999-12-31 in UTC (``registry.schemas``). The new command parses the option itself (``cli.keys_check._moment``):
``0001-01-01T00:00:00+14:00`` is a valid ISO 8601 moment with a zone, but it is 31 December of year 0 in UTC. The
command goes on to store it: SQLAlchemy raises ``OverflowError: date value out of range`` and the operator sees a
traceback and exit 1 (which this command's neighbours use for "disagreements found"). What should happen: exit 2 with
one line naming ``--compromised-from``, as for any other bad date, and nothing written.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from registry.config import Settings
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.lifecycle_support import published_keys, set_up


async def test_a_compromise_date_before_year_one_in_utc_is_a_bad_option_not_a_crash(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    await set_up(app, client)
    (registry_key,) = [k["kid"] for k in await published_keys(client) if k.get("key_use") == "access_token"]
    env = {**registry_env(settings.database_url), "LC_ALL": "C"}
    code, out, err = await run_registry(
        "keys", "compromise", registry_key, "--registry", "--compromised-from", "0001-01-01T00:00:00+14:00", env=env
    )
    # Before a fix: exit 1, a traceback ending "StatementError: (builtins.OverflowError) date value out of range".
    assert "OverflowError" not in err, err
    assert "Traceback" not in err, err
    assert code == 2, (code, out, err)
    assert "--compromised-from" in err, err
    keys = {k["kid"]: k for k in await published_keys(client)}
    assert keys[registry_key]["status"] == "active", keys[registry_key]  # nothing written
