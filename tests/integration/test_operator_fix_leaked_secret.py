"""A leaked client secret ended at once on the server's machine, in either order the README allows: disable, rotate,
enable (tests/integration/test_operator_leaked_secret.py), or — enabled again first, or never disabled —
``registry clients rotate-secret --no-grace``. An ordinary rotation of an enabled client keeps its grace."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI

from registry.auth.scopes import Role
from tests.factories import bearer, create_client, token_for
from tests.integration.cli_support import registry_env, run_registry


async def _opens_a_token(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await client.post("/oauth/token", data=form)


async def test_disable_enable_then_rotate_with_no_grace_ends_the_leaked_secret_and_says_why(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    leaked_id, leaked_secret = await create_client(app, role=Role.admin)
    env = registry_env(database_url)
    for args in (
        ("clients", "disable", leaked_id, "--reason", "secret leaked"),
        ("clients", "enable", leaked_id, "--reason", "back in service"),
    ):
        code, out, err = await run_registry(*args, env=env)
        assert code == 0, out + err
    still_working = await token_for(client, leaked_id, leaked_secret)  # enabled with the leaked secret: it works

    code, out, err = await run_registry("clients", "rotate-secret", leaked_id, "--no-grace", env=env)
    assert code == 0, out + err
    rotated = json.loads(out)
    assert rotated["previous_secret_valid_until"] is None

    refused = await _opens_a_token(client, leaked_id, leaked_secret)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_client"
    assert (await client.get("/v1/clients", headers=bearer(still_working))).status_code == 401
    fresh = await token_for(client, leaked_id, rotated["client_secret"])
    audit = await client.get(
        "/v1/audit", params={"action": "client.secret_rotated", "object_id": leaked_id}, headers=bearer(fresh)
    )
    assert audit.status_code == 200, audit.text
    (record,) = audit.json()["data"]
    assert record["actor"] == "cli"
    assert record["details"]["previous_secret_ended_at_once"] == "no grace asked"
    assert record["details"]["previous_secret_valid_until"] is None


async def test_a_disabled_clients_rotation_is_audited_as_ending_the_old_secret_at_once(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    leaked_id, leaked_secret = await create_client(app, role=Role.admin)
    env = registry_env(database_url)
    code, out, err = await run_registry("clients", "disable", leaked_id, "--reason", "secret leaked", env=env)
    assert code == 0, out + err
    code, out, err = await run_registry("clients", "rotate-secret", leaked_id, env=env)
    assert code == 0, out + err
    new_secret = json.loads(out)["client_secret"]
    assert json.loads(out)["previous_secret_valid_until"] is None
    code, out, err = await run_registry("clients", "enable", leaked_id, "--reason", "secret replaced", env=env)
    assert code == 0, out + err
    assert (await _opens_a_token(client, leaked_id, leaked_secret)).status_code == 401
    fresh = await token_for(client, leaked_id, new_secret)
    audit = await client.get(
        "/v1/audit", params={"action": "client.secret_rotated", "object_id": leaked_id}, headers=bearer(fresh)
    )
    (record,) = audit.json()["data"]
    assert record["details"]["previous_secret_ended_at_once"] == "client disabled"


async def test_an_enabled_clients_ordinary_rotation_keeps_the_old_secret_for_its_grace(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    client_id, old_secret = await create_client(app, role=Role.admin)
    code, out, err = await run_registry("clients", "rotate-secret", client_id, env=registry_env(database_url))
    assert code == 0, out + err
    assert json.loads(out)["previous_secret_valid_until"] is not None
    assert (await _opens_a_token(client, client_id, old_secret)).status_code == 200
