"""Review of the unproven-first-key guard (``keys.refuse_unproven_first_key``): its 503 appears only on a database
that holds API clients of an earlier version and no signing key — never on a fresh database whose clients
`registry clients create` made before the first start (that command binds it), nor on one whose keys were all
retired — and a token request racing a checkpoint on such a database leaves one key, bound by the token, never a
500. (These are guards: they pass with the commit under review; they were asked to be confirmed.)"""

from __future__ import annotations

import asyncio
import json

import httpx

from registry.config import Settings
from tests.conftest import MASTER_KEY
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_import_language import ENGLISH
from tests.integration.test_master_key_unproven_first_key import (
    UNPROVEN,
    _a_client_of_an_earlier_version,
    _client_token,
    _keys,
    _refused,
    _sql,
    _started,
    _under,
)


async def _made_client(settings: Settings, master_key: str) -> tuple[str, str]:
    env = {**registry_env(settings.database_url), "REGISTRY_MASTER_KEY": master_key} | ENGLISH
    code, out, err = await run_registry("clients", "create", "--role", "admin", "--name", "ops", env=env)
    assert code == 0, (out, err)
    made = json.loads(out)
    return made["client_id"], made["client_secret"]


async def _token(http: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await http.post("/oauth/token", data=form)


async def test_clients_made_before_the_first_start_bind_the_database_and_nothing_answers_503(
    settings: Settings,
) -> None:
    client_id, secret = await _made_client(settings, MASTER_KEY)
    assert await _keys(settings) == 1  # the command bound the database before making the client
    async with _started(_under(settings, MASTER_KEY)) as http:
        checkpoint = await http.get("/v1/transparency/checkpoint")
        assert checkpoint.status_code == 200, checkpoint.text
        assert (await http.get("/.well-known/pdf-signing-root.pem")).status_code == 200
        assert (await _token(http, client_id, secret)).status_code == 200


async def test_a_database_whose_keys_were_all_retired_makes_a_new_one_without_503(settings: Settings) -> None:
    await _a_client_of_an_earlier_version(settings)
    right = _under(settings, MASTER_KEY)
    async with _started(right) as http:
        assert (await _client_token(http)).status_code == 200
    await _sql(settings, "UPDATE signing_keys SET status = 'retired', retired_at = CURRENT_TIMESTAMP")
    async with _started(right) as http:
        checkpoint = await http.get("/v1/transparency/checkpoint")
        assert checkpoint.status_code == 200, checkpoint.text
    assert await _keys(settings) == 2


async def test_a_token_request_racing_checkpoints_leaves_one_key_and_no_server_error(settings: Settings) -> None:
    await _a_client_of_an_earlier_version(settings)
    async with _started(_under(settings, MASTER_KEY)) as http:
        answers = await asyncio.gather(
            *(http.get("/v1/transparency/checkpoint") for _ in range(4)),
            _client_token(http),
            *(http.get("/v1/transparency/checkpoint") for _ in range(4)),
        )
        statuses = [answer.status_code for answer in answers]
        assert statuses[4] == 200, answers[4].text
        for answer in answers[:4] + answers[5:]:
            if answer.status_code == 503:
                _refused(answer, UNPROVEN)
            else:
                assert answer.status_code == 200, answer.text
        assert (await http.get("/v1/transparency/checkpoint")).status_code == 200
    active = await _sql(settings, "SELECT count(*) FROM signing_keys WHERE status = 'active'")
    assert active == 1
