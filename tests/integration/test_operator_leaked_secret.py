"""An operator following README "Lifecycle, keys and offline checks" for a leaked client secret: on the server's machine
`registry clients disable`, `registry clients rotate-secret`, `registry clients enable` ("To end a leaked secret's
tokens sooner, disable the client, rotate, enable it again"). Once that is done the leaked secret must open nothing:
the grace period of a rotation is for a handover between a client's old and new configuration, and a disabled client
has no traffic to hand over."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI

from registry.auth.scopes import Role
from tests.factories import bearer, create_client, token_for
from tests.integration.cli_support import registry_env, run_registry


async def test_disable_rotate_enable_leaves_the_leaked_secret_opening_no_token(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    leaked_id, leaked_secret = await create_client(app, role=Role.admin)
    leaked_token = await token_for(client, leaked_id, leaked_secret)
    env = registry_env(database_url)

    outputs = []
    for args in (
        ("clients", "disable", leaked_id, "--reason", "secret leaked"),
        ("clients", "rotate-secret", leaked_id),
        ("clients", "enable", leaked_id, "--reason", "secret replaced"),
    ):
        code, out, err = await run_registry(*args, env=env)
        assert code == 0, out + err
        outputs.append(json.loads(out))
    new_secret = outputs[1]["client_secret"]

    assert (await client.get("/v1/clients", headers=bearer(leaked_token))).status_code == 401
    fresh = await token_for(client, leaked_id, new_secret)
    assert (await client.get("/v1/clients", headers=bearer(fresh))).status_code == 200
    form = {"grant_type": "client_credentials", "client_id": leaked_id, "client_secret": leaked_secret}
    refused = await client.post("/oauth/token", data=form)
    assert refused.status_code == 401, (
        "the leaked secret still opens tokens after disable, rotate-secret, enable: " + refused.text[:200]
    )
    assert refused.json()["error"] == "invalid_client"
