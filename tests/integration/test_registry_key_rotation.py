"""The registry rotates its own token key (API and command line): new tokens carry the new key, tokens signed by the
old one keep working, and the JWKS keeps the old key until the last token it signed has expired — then neither."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from registry.auth import tokens
from registry.config import Settings
from tests.checks import assert_problem
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer
from tests.integration.auth_support import make_world
from tests.integration.cli_support import registry_env, run_registry


def kid_of(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


async def published_kids(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    return {key["kid"]: key for key in response.json()["keys"] if key["key_use"] == "access_token"}


async def test_rotating_the_registry_key_keeps_old_tokens_until_they_expire(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, registry_clock: RegistryClock
) -> None:
    world = await make_world(app, client)
    old_kid = kid_of(world.admin)
    assert kid_of(world.issuer) == old_kid

    rotated = await client.post("/v1/registry/keys/rotate", headers=bearer(world.admin))
    assert rotated.status_code == 201, rotated.text
    body = rotated.json()
    new_kid = body["kid"]
    assert new_kid != old_kid
    assert body["jwk"]["kid"] == new_kid
    assert body["jwk"]["status"] == "active"
    assert "d" not in body["jwk"]
    afterlife = tokens.token_key_afterlife(settings)
    [retired] = body["retired"]
    assert retired["kid"] == old_kid
    published_until = datetime.fromisoformat(retired["published_until"])
    assert published_until == datetime.fromisoformat(retired["retired_at"]) + afterlife

    keys = await published_kids(client)
    assert keys[old_kid]["status"] == "retired"
    assert keys[new_kid]["status"] == "active"
    fresh = await admin_token(app, client)
    assert kid_of(fresh) == new_kid
    # the old key's tokens still work, beside the new key's
    assert (await client.get("/v1/certificates", headers=bearer(world.issuer))).status_code == 200
    assert (await client.get("/v1/clients", headers=bearer(world.admin))).status_code == 200
    assert (await client.get("/v1/clients", headers=bearer(fresh))).status_code == 200

    registry_clock.advance(afterlife - timedelta(seconds=30))
    assert old_kid in await published_kids(client)
    assert (await client.get("/v1/clients", headers=bearer(world.admin))).status_code == 200

    registry_clock.advance(afterlife + timedelta(seconds=1))
    keys = await published_kids(client)
    assert old_kid not in keys
    assert new_kid in keys
    problem = assert_problem(await client.get("/v1/clients", headers=bearer(world.admin)), 401)
    assert "retired" in problem["detail"]
    assert_problem(await client.get("/v1/certificates", headers=bearer(world.issuer)), 401)
    assert (await client.get("/v1/clients", headers=bearer(fresh))).status_code == 200

    audit = await client.get("/v1/audit", params={"action": "key.rotated"}, headers=bearer(fresh))
    [record] = audit.json()["data"]
    assert record["object_id"] == new_kid
    assert record["details"] == {"registry": True, "retired": [old_kid]}


async def test_only_the_bureau_rotates_the_registry_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await make_world(app, client)
    before = await published_kids(client)
    assert_problem(await client.post("/v1/registry/keys/rotate", headers=bearer(world.issuer)), 403)
    assert_problem(await client.post("/v1/registry/keys/rotate"), 401)
    assert await published_kids(client) == before


async def test_keys_rotate_registry_command_starts_a_new_token_key(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    admin = await admin_token(app, client)
    old_kid = kid_of(admin)
    env = registry_env(database_url)

    code, out, err = await run_registry("keys", "rotate", "--registry", env=env)
    assert code == 0, err
    printed = json.loads(out)
    assert printed["registry"] is True
    assert [k["kid"] for k in printed["retired"]] == [old_kid]
    new_kid = printed["kid"]

    keys = await published_kids(client)
    assert {old_kid, new_kid} <= keys.keys()
    assert kid_of(await admin_token(app, client)) == new_kid
    assert (await client.get("/v1/clients", headers=bearer(admin))).status_code == 200
    audit = await client.get("/v1/audit", params={"action": "key.rotated", "actor": "cli"}, headers=bearer(admin))
    assert [r["object_id"] for r in audit.json()["data"]] == [new_kid]


@pytest.mark.parametrize("args", [(), ("--registry", "--issuer", "BJ-AI-COMMITTEE")])
async def test_keys_rotate_needs_exactly_one_of_issuer_and_registry(database_url: str, args: tuple[str, ...]) -> None:
    code, _, err = await run_registry("keys", "rotate", *args, env=registry_env(database_url))
    assert code == 2
    assert "--registry" in err
