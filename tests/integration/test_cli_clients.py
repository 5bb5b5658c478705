"""On the server's machine the bureau manages every API client, admin clients included: through the API an admin
client disables, enables or rotates only itself (tests/integration/test_client_escalation.py), so a leaked admin
client is disabled here (`registry clients disable`), and its secret replaced (`registry clients rotate-secret`)."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from tests.factories import bearer, create_client, token_for
from tests.integration.cli_support import registry_env, run_registry


async def test_the_cli_disables_and_enables_an_admin_client_and_its_old_token_stays_refused(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    leaked_id, leaked_secret = await create_client(app, role=Role.admin)
    leaked = await token_for(client, leaked_id, leaked_secret)
    assert (await client.get("/v1/clients", headers=bearer(leaked))).status_code == 200
    env = registry_env(database_url)

    code, out, err = await run_registry("clients", "disable", leaked_id, "--reason", "secret leaked", env=env)
    assert code == 0, out + err
    assert json.loads(out)["active"] is False
    assert (await client.get("/v1/clients", headers=bearer(leaked))).status_code == 401

    code, out, err = await run_registry("clients", "enable", leaked_id, "--reason", "secret rotated", env=env)
    assert code == 0, out + err
    assert json.loads(out)["active"] is True
    assert (await client.get("/v1/clients", headers=bearer(leaked))).status_code == 401  # the old token stays dead

    code, out, err = await run_registry("clients", "rotate-secret", leaked_id, env=env)
    assert code == 0, out + err
    fresh = await token_for(client, leaked_id, json.loads(out)["client_secret"])
    assert (await client.get("/v1/clients", headers=bearer(fresh))).status_code == 200
    audit = await client.get("/v1/audit", params={"object_id": leaked_id}, headers=bearer(fresh))
    actions = [(r["action"], r["actor"]) for r in audit.json()["data"]]
    for action in ("client.disabled", "client.enabled", "client.secret_rotated"):
        assert (action, "cli") in actions, actions


async def test_the_cli_refuses_a_blank_reason_and_an_unknown_client(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    client_id, _secret = await create_client(app, role=Role.admin)
    env = registry_env(database_url)
    code, _out, err = await run_registry("clients", "disable", client_id, "--reason", "  ", env=env)
    assert code == 2, err
    assert "reason" in err
    code, _out, err = await run_registry("clients", "disable", "no-such-client", "--reason", "x", env=env)
    assert code == 1, err
    assert "no-such-client" in err


PARTNER = ("clients", "create", "--role", "partner", "--name", "x", "--region", "TJ")


async def test_a_mistyped_master_key_is_named_and_never_printed(database_url: str) -> None:
    typed = "BjbtPOumFegg2xN97QYdrvk9FnCx3iQrcMAyTwkhI3A="  # base64 where 64 hexadecimal characters are asked for
    env = {**registry_env(database_url), "REGISTRY_MASTER_KEY": typed}
    code, out, err = await run_registry(
        "clients", "create", "--role", "partner", "--name", "x", "--region", "TJ", env=env
    )
    assert code == 2, out + err
    assert "REGISTRY_MASTER_KEY: Value error, master key must be 64 hexadecimal characters" in err
    assert typed not in out + err
    assert "BjbtPOum" not in out + err


async def test_a_database_that_does_not_exist_is_said_in_one_line(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite makes the file it is given")
    missing = database_url.rsplit("/", 1)[0] + "/no_such_database_here"
    env = {**registry_env(database_url), "REGISTRY_DATABASE_URL": missing}
    code, out, err = await run_registry(
        "clients", "create", "--role", "partner", "--name", "x", "--region", "TJ", env=env
    )
    assert code == 4, out + err
    assert err.strip() == 'error: the database refused us: database "no_such_database_here" does not exist'
