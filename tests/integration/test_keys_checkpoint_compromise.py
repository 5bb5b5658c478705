"""The registry's own key marked compromised (`registry keys compromise KID --registry`), by the rules every key
follows: a retired checkpoint key (no API route reaches it: the bodies' route answers 404 for it) is listed
``compromised`` from then, so no partner or peer trusts what it signed from that date; the date only moves earlier and
is never ahead of now; the current token key is replaced at once and its tokens refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from fastapi import FastAPI
from sqlalchemy import text

from registry.auth import tokens
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import transaction
from registry.federation import protocol
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer, issued_certificate
from tests.integration.auth_support import assert_token_refused
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.lifecycle_support import CODE, key_named, published_keys, set_up


def _env(settings: Settings, locale: str = "C") -> dict[str, str]:
    return {**registry_env(settings.database_url), "LC_ALL": locale}


async def _checkpoint(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/v1/transparency/checkpoint")
    assert response.status_code == 200, response.text
    checkpoint: dict[str, Any] = response.json()
    return checkpoint


async def _marks(app: FastAPI, kid: str) -> list[dict[str, Any]]:
    async with transaction(app.state.sessions) as session:
        rows = await session.execute(
            text("SELECT details FROM audit_log WHERE action = 'key.compromised' AND object_id = :k ORDER BY id"),
            {"k": kid},
        )
        found = [row[0] for row in rows]
    return [detail if isinstance(detail, dict) else json.loads(detail) for detail in found]


async def test_a_retired_checkpoint_key_is_marked_compromised_and_listed_so(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, registry_clock: RegistryClock
) -> None:
    world = await set_up(app, client)
    kept = await _checkpoint(client)
    old_kid = kept["kid"]
    assert (await client.post("/v1/registry/keys/rotate", headers=bearer(world.admin))).status_code == 201
    registry_clock.advance(tokens.token_key_afterlife(settings) + timedelta(days=400))
    assert key_named(await published_keys(client), old_kid)["key_use"] == "checkpoint"
    since = datetime.fromtimestamp(kept["timestamp"], UTC).isoformat()
    # The bodies' route is no way to it (before this fix there was none at all).
    fresh = await admin_token(app, client)
    refused = await client.post(
        f"/v1/issuers/{CODE}/keys/{old_kid}/compromise", json={"compromised_from": since}, headers=bearer(fresh)
    )
    assert refused.status_code == 404, refused.text

    code, out, err = await run_registry(
        "keys", "compromise", old_kid, "--registry", "--compromised-from", since, env=_env(settings)
    )
    assert code == 0, (out, err)
    assert f"key {old_kid} is compromised from" in out

    jwk = key_named(await published_keys(client), old_kid)
    assert (jwk["key_use"], jwk["status"]) == ("checkpoint", "compromised")
    assert datetime.fromisoformat(jwk["compromised_from"]) == datetime.fromisoformat(since)
    assert jwk["valid_until"] is not None  # still its retirement: the window it signed in
    assert not protocol.is_node_key(jwk)
    meta = await client.get("/.well-known/jwt-vc-issuer")
    assert [k for k in meta.json()["jwks"]["keys"] if k["kid"] == old_kid] == [jwk]
    (mark,) = await _marks(app, old_kid)
    assert (mark["registry"], mark["replacement"], mark["document_keys"]) == (True, None, [])

    # A later date is refused (the date only moves earlier), in the reader's language; so is one ahead of now.
    later = (datetime.fromisoformat(since) + timedelta(seconds=30)).isoformat()
    code, out, err = await run_registry(
        "keys", "compromise", old_kid, "--registry", "--compromised-from", later, env=_env(settings, "zh_CN.UTF-8")
    )
    assert code == 1, (out, err)
    assert "只能提前" in err, err
    ahead = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    code, out, err = await run_registry(
        "keys", "compromise", old_kid, "--registry", "--compromised-from", ahead, env=_env(settings)
    )
    assert code == 1, (out, err)
    assert "must not be after now" in err, err
    assert len(await _marks(app, old_kid)) == 1


async def test_the_current_token_key_marked_compromised_is_replaced_and_its_tokens_refused(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    world = await set_up(app, client)
    current = jwt.get_unverified_header(world.admin)["kid"]
    now = datetime.now(UTC).isoformat()

    code, out, err = await run_registry(
        "keys", "compromise", current, "--registry", "--compromised-from", now, env=_env(settings)
    )
    assert code == 0, (out, err)
    context: RegistryContext = app.state.context
    context.keyring.forget(current)  # this process's 5 s key cache (README: another process sees it within 5 s)

    problem = await assert_token_refused(app, client, world.admin)
    assert problem["status"] == 401
    fresh = await admin_token(app, client)
    replacement = jwt.get_unverified_header(fresh)["kid"]
    assert replacement != current
    assert (await _checkpoint(client))["kid"] == replacement
    keys = await published_keys(client)
    assert key_named(keys, current)["status"] == "compromised"
    assert (key_named(keys, replacement)["status"], key_named(keys, replacement)["key_use"]) == (
        "active",
        "access_token",
    )
    assert [k["kid"] for k in keys if protocol.is_node_key(k)] == [replacement]
    (mark,) = await _marks(app, current)
    assert mark["replacement"] == replacement


async def test_a_body_key_is_not_the_registrys(app: FastAPI, client: httpx.AsyncClient, settings: Settings) -> None:
    world = await set_up(app, client)
    body_kid = (await issued_certificate(client, world.issuer))["kid"]
    now = datetime.now(UTC).isoformat()
    code, out, err = await run_registry(
        "keys", "compromise", body_kid, "--registry", "--compromised-from", now, env=_env(settings)
    )
    assert code == 1, (out, err)
    assert f"no signing key {body_kid} of the registry" in err


async def test_a_body_key_is_marked_from_the_command_line_as_through_the_api(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    args = ("keys", "compromise", certificate["kid"], "--issuer", CODE, "--compromised-from", certificate["issued_at"])

    code, out, err = await run_registry(*args, env=_env(settings))
    assert code == 0, (out, err)
    jwk = key_named(await published_keys(client), certificate["kid"])
    assert jwk["status"] == "compromised"
    assert datetime.fromisoformat(jwk["compromised_from"]) == datetime.fromisoformat(certificate["issued_at"])
    (mark,) = await _marks(app, certificate["kid"])
    assert mark["issuer"] == CODE
    assert mark["replacement"] is not None
    code, out, err = await run_registry(*args[:3], "--compromised-from", certificate["issued_at"], env=_env(settings))
    assert code == 2, (out, err)
    assert "give either --issuer CODE or --registry" in err
