"""A client made, or a secret rotated, under an unproven key proves nothing: its token must not bind."""

from __future__ import annotations

import json

import httpx

from registry.config import Settings
from tests.conftest import MASTER_KEY
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_import_language import ENGLISH
from tests.integration.test_master_key_clients_only import OTHER_KEY
from tests.integration.test_master_key_unproven_first_key import (
    CLIENT_ID,
    _a_client_of_an_earlier_version,
    _client_token,
    _keys,
    _started,
    _under,
)


async def _token(http: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await http.post("/oauth/token", data=form)


async def _wrong_key_secret(settings: Settings, *args: str) -> tuple[str, str] | None:
    env = {**registry_env(settings.database_url), "REGISTRY_MASTER_KEY": OTHER_KEY} | ENGLISH
    code, out, err = await run_registry("clients", *args, env=env)
    if code != 0:
        assert "has not been confirmed since an upgrade" in err, (code, out, err)
        return None
    made = json.loads(out)
    return made["client_id"], made["client_secret"]


async def _not_bound_to_the_wrong_key(settings: Settings, made: tuple[str, str] | None) -> None:
    if made is not None:
        async with _started(_under(settings, OTHER_KEY)) as http:
            await _token(http, *made)
    assert await _keys(settings) == 0
    async with _started(_under(settings, MASTER_KEY)) as http:  # the right key is not locked out
        assert (await _client_token(http)).status_code == 200


async def test_a_client_made_under_an_unproven_key_does_not_bind_the_database_to_it(settings: Settings) -> None:
    await _a_client_of_an_earlier_version(settings)
    made = await _wrong_key_secret(settings, "create", "--role", "admin", "--name", "ops")
    await _not_bound_to_the_wrong_key(settings, made)


async def test_a_secret_rotated_under_an_unproven_key_does_not_bind_the_database_to_it(settings: Settings) -> None:
    await _a_client_of_an_earlier_version(settings)
    made = await _wrong_key_secret(settings, "rotate-secret", CLIENT_ID)
    await _not_bound_to_the_wrong_key(settings, made)
