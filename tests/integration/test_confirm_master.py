"""`registry keys confirm-master`: the operator's way out of the legacy state (API clients of an earlier version,
nothing sealed: signing answers 503, `registry clients create|rotate-secret` 409) when no client is there to ask for
the token that confirms the master key. With a client's secret (from stdin, never argv) it proves the key and binds
the database as that token request would; a wrong secret binds nothing. Without proof it binds on the operator's
word and names the clients to give new secrets, which is then allowed. A bound database is left as it is."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from registry.audit.models import AuditRecord
from registry.auth import client_secrets
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import create_engine, session_factory, transaction
from registry.keys import service as keys
from tests.conftest import MASTER_KEY
from tests.integration.cli_support import REGISTRY, registry_env, run_registry
from tests.integration.test_import_language import CHINESE, ENGLISH
from tests.integration.test_master_key_clients_only import OTHER_KEY
from tests.integration.test_master_key_clients_only import REFUSED as WRONG_KEY
from tests.integration.test_master_key_unproven_first_key import (
    CLIENT_ID,
    SECRET,
    UNPROVEN,
    _a_client_of_an_earlier_version,
    _client_token,
    _keys,
    _refused,
    _sql,
    _started,
    _under,
)

CONFIRMED = "master_key.confirmed"
WRONG_SECRET = "not-the-secret-of-the-legacy-client"
REFUSED_CLIENT = (
    "error: this database's master key has not been confirmed since an upgrade, and a client secret made now would "
    "confirm whichever key this process runs with: first confirm REGISTRY_MASTER_KEY — get a token with one of the "
    "database's existing API clients, or run `registry keys confirm-master` on the server's machine (--without-proof "
    "when no client's secret is known) — then create or rotate clients"
)
ALREADY_BOUND = (
    "this database is already bound to REGISTRY_MASTER_KEY (its signing keys open with it): nothing to confirm"
)


async def _confirm_master(
    settings: Settings, *args: str, stdin: str = "", key: str = MASTER_KEY, lang: dict[str, str] = ENGLISH
) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `registry keys confirm-master <args>`, ``stdin`` piped to it."""
    env = {**os.environ, **registry_env(settings.database_url), "REGISTRY_MASTER_KEY": key, **lang}
    process = await asyncio.create_subprocess_exec(
        *REGISTRY,
        "keys",
        "confirm-master",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _said(output: str) -> list[str]:
    """What a command said to people: not the log's JSON lines, nor the warning of a start that cannot check the key."""
    return [
        line
        for line in output.splitlines()
        if line.strip() and '"level"' not in line and not line.startswith("the master key could not be checked")
    ]


async def _kid(settings: Settings) -> str:
    return str(await _sql(settings, "SELECT kid FROM signing_keys"))


async def _confirmations(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """The actor and details of every ``master_key.confirmed`` audit record."""
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            query = select(col(AuditRecord.actor), col(AuditRecord.details)).where(col(AuditRecord.action) == CONFIRMED)
            return [(actor, details) for actor, details in (await session.execute(query)).all()]
    finally:
        await engine.dispose()


async def _create_client(settings: Settings, key: str = MASTER_KEY) -> tuple[int, str, str]:
    env = {**registry_env(settings.database_url), "REGISTRY_MASTER_KEY": key} | ENGLISH
    return await run_registry("clients", "create", "--role", "admin", "--name", "ops2", env=env)


async def test_the_right_secret_confirms_the_master_key_and_binds_the_database(settings: Settings) -> None:
    await _a_client_of_an_earlier_version(settings)
    code, out, err = await _confirm_master(settings, "--client-id", CLIENT_ID, stdin=SECRET + "\n")
    assert code == 0, (out, err)
    assert await _keys(settings) == 1
    kid = await _kid(settings)
    assert _said(out) == [
        f"REGISTRY_MASTER_KEY is confirmed: API client {CLIENT_ID}'s secret opened its keyed hash, and the database "
        f"is now bound to it (the registry's token key {kid} is sealed under it); signing, `registry clients create` "
        "and `registry clients rotate-secret` work again"
    ]
    assert _said(err) == []
    assert SECRET not in out + err
    assert await _confirmations(settings) == [("cli", {"proof": "client_secret", "client_id": CLIENT_ID})]

    async with _started(_under(settings, MASTER_KEY)) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert "master_key" not in ready.json()
        checkpoint = await http.get("/v1/transparency/checkpoint")
        assert checkpoint.status_code == 200, checkpoint.text
        assert (await _client_token(http)).status_code == 200  # the token key the command made signs it
    code, out, err = await _create_client(settings)
    assert code == 0, (out, err)
    assert json.loads(out)["client_id"].startswith("trc_")
    assert await _keys(settings) == 1


async def test_a_wrong_secret_binds_nothing_and_says_so(settings: Settings) -> None:
    await _a_client_of_an_earlier_version(settings)
    code, out, err = await _confirm_master(settings, "--client-id", CLIENT_ID, stdin=WRONG_SECRET + "\n")
    assert code == 1, (out, err)
    assert _said(out) == []
    assert _said(err) == [
        f"error: the secret given does not open API client {CLIENT_ID} under REGISTRY_MASTER_KEY (a wrong secret, an "
        "unknown or disabled client, or not the key its secret was hashed under): nothing was bound"
    ]
    assert WRONG_SECRET not in out + err
    assert await _keys(settings) == 0
    assert await _confirmations(settings) == []
    # The right secret under another key is no proof either.
    code, out, err = await _confirm_master(settings, "--client-id", CLIENT_ID, stdin=SECRET + "\n", key=OTHER_KEY)
    assert code == 1, (out, err)
    assert SECRET not in out + err
    assert await _keys(settings) == 0

    async with _started(_under(settings, MASTER_KEY)) as http:
        assert (await http.get("/readyz")).json()["master_key"]["state"] == "unconfirmed"
        _refused(await http.get("/v1/transparency/checkpoint"), UNPROVEN)
    code, out, err = await _create_client(settings)
    assert code == 1, (out, err)
    assert _said(err) == [REFUSED_CLIENT]


async def test_no_secret_on_stdin_is_refused_before_anything_is_bound(settings: Settings) -> None:
    await _a_client_of_an_earlier_version(settings)
    code, out, err = await _confirm_master(settings, "--client-id", CLIENT_ID, stdin="")
    assert code == 2, (out, err)
    assert _said(err) == [
        "error: no secret given: type it at the prompt or pass it on stdin, never on the command line"
    ]
    assert await _keys(settings) == 0


async def test_without_proof_binds_on_the_operators_word_and_the_lost_secrets_can_be_rotated(
    settings: Settings,
) -> None:
    await _a_client_of_an_earlier_version(settings)
    code, out, err = await _confirm_master(settings, "--without-proof", stdin="n\n")  # asks first: no
    assert code == 5, (out, err)
    assert "Bind this database to REGISTRY_MASTER_KEY without proof?" in err
    assert CLIENT_ID in err
    assert "not confirmed: nothing was written" in err
    assert await _keys(settings) == 0

    code, out, err = await _confirm_master(settings, "--without-proof", "--yes")
    assert code == 0, (out, err)
    assert await _keys(settings) == 1
    kid = await _kid(settings)
    assert _said(out) == [
        f"the database is now bound to REGISTRY_MASTER_KEY, without proof (the registry's token key {kid} is sealed "
        "under it); signing, `registry clients create` and `registry clients rotate-secret` work again",
        "if REGISTRY_MASTER_KEY is not the key these API clients' secrets were hashed under, their secrets can no "
        "longer be checked (every token request with them is refused): give each a new secret with `registry "
        "clients rotate-secret CLIENT_ID`",
        f"  {CLIENT_ID}  admin  ops",
    ]
    assert await _confirmations(settings) == [("cli", {"proof": "none", "unchecked_clients": [CLIENT_ID]})]

    env = registry_env(settings.database_url) | ENGLISH
    code, out, err = await run_registry("clients", "rotate-secret", CLIENT_ID, env=env)
    assert code == 0, (out, err)
    new_secret = json.loads(out)["client_secret"]
    async with _started(_under(settings, MASTER_KEY)) as http:
        assert "master_key" not in (await http.get("/readyz")).json()
        form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": new_secret}
        issued = await http.post("/oauth/token", data=form)
        assert issued.status_code == 200, issued.text


async def test_a_bound_database_is_left_as_it_is_by_both_ways(settings: Settings) -> None:
    await _a_client_of_an_earlier_version(settings)
    async with _started(_under(settings, MASTER_KEY)) as http:
        assert (await _client_token(http)).status_code == 200  # the client's token binds it
    kid = await _kid(settings)

    code, out, err = await _confirm_master(settings, "--client-id", CLIENT_ID, stdin=WRONG_SECRET + "\n")
    assert code == 0, (out, err)  # bound already: no secret asked for, none checked
    assert _said(out) == [ALREADY_BOUND]
    assert WRONG_SECRET not in out + err
    code, out, err = await _confirm_master(settings, "--without-proof", "--yes")
    assert code == 0, (out, err)
    assert _said(out) == [ALREADY_BOUND]
    code, out, err = await _confirm_master(settings, "--without-proof", lang=CHINESE)  # nothing to ask either
    assert code == 0, (out, err)
    assert _said(out) == ["本数据库已绑定到 REGISTRY_MASTER_KEY（其签名密钥可用它打开）：无需确认"]
    assert await _keys(settings) == 1
    assert await _kid(settings) == kid
    assert await _confirmations(settings) == []


async def test_a_database_holding_no_client_has_nothing_to_confirm(settings: Settings) -> None:
    code, out, err = await _confirm_master(settings, "--without-proof", "--yes")
    assert code == 0, (out, err)
    assert _said(out) == [ALREADY_BOUND]  # bound by the command's start, as by any command
    assert await _confirmations(settings) == []


async def test_one_way_must_be_chosen(settings: Settings) -> None:
    for args in ((), ("--client-id", CLIENT_ID, "--without-proof")):
        code, out, err = await _confirm_master(settings, *args)
        assert code == 2, (args, out, err)
        assert _said(err) == ["error: give either --client-id ID or --without-proof"]


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize(
    ("args", "stdin"), [(("--without-proof", "--yes"), ""), (("--client-id", CLIENT_ID), SECRET + "\n")]
)
async def test_a_token_request_binding_the_database_meanwhile_wins_and_the_command_binds_nothing(
    settings: Settings, args: tuple[str, ...], stdin: str
) -> None:
    """A client's token request is binding the database (the registry keys' turn held, its key made, not committed)
    as the command starts: the command waits for that turn, then sees the database bound and leaves it as it is
    (exit 0, no second key, no confirmation audited), whichever way it was asked to bind."""
    await _a_client_of_an_earlier_version(settings)
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            token_request = await keys.registry_token_key(
                session, RegistryContext.from_settings(settings).box, master_key_proved=True
            )
            command = asyncio.create_task(_confirm_master(settings, *args, stdin=stdin))
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            while not (await _sql(settings, waiting)):
                assert not command.done(), command.result()
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()

    code, out, err = await command
    assert code == 0, (out, err)
    assert _said(out) == [ALREADY_BOUND]
    assert SECRET not in out + err
    assert await _keys(settings) == 1
    assert await _kid(settings) == token_request.kid
    assert await _confirmations(settings) == []


async def test_a_disabled_clients_secret_or_one_past_its_grace_binds_nothing_an_old_one_in_grace_proves_the_key(
    settings: Settings,
) -> None:
    """The token request's own check: a disabled client's right secret opens nothing (exit 1, in Chinese too), nor a
    rotated-away secret past its grace; one still in its grace does (it is hashed under the same key: a proof)."""
    await _a_client_of_an_earlier_version(settings)
    await _sql(settings, "UPDATE api_clients SET active = false")
    code, out, err = await _confirm_master(settings, "--client-id", CLIENT_ID, stdin=SECRET + "\n", lang=CHINESE)
    assert code == 1, (out, err)
    assert _said(err) == [
        f"错误：所给密钥在 REGISTRY_MASTER_KEY 下无法打开 API 客户端 {CLIENT_ID}"
        "（密钥错误、客户端不存在或已停用，或该主密钥并非其密钥哈希所用的密钥）：未作任何绑定"
    ], err
    assert SECRET not in out + err
    assert await _keys(settings) == 0

    box = RegistryContext.from_settings(settings).box
    rotated = "UPDATE api_clients SET active = true, secret_hash = :new, previous_secret_hash = :old, "
    new_hash = client_secrets.secret_hash(box, "the-new-secret")
    old_hash = client_secrets.secret_hash(box, SECRET)
    past = rotated + "previous_secret_until = :until"
    await _sql(settings, past, new=new_hash, old=old_hash, until=datetime.now(UTC) - timedelta(minutes=1))
    code, out, err = await _confirm_master(settings, "--client-id", CLIENT_ID, stdin=SECRET + "\n")
    assert code == 1, (out, err)
    assert await _keys(settings) == 0

    await _sql(settings, past, new=new_hash, old=old_hash, until=datetime.now(UTC) + timedelta(hours=1))
    code, out, err = await _confirm_master(settings, "--client-id", CLIENT_ID, stdin=SECRET + "\n")
    assert code == 0, (out, err)
    assert SECRET not in out + err
    assert await _keys(settings) == 1
    assert await _confirmations(settings) == [("cli", {"proof": "client_secret", "client_id": CLIENT_ID})]


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_bound_meanwhile_under_another_master_key_is_refused_not_called_bound_to_this_one(
    settings: Settings,
) -> None:
    """Two operators bind at once, one under another key (`--without-proof` on another machine): the one that waited
    its turn finds the database bound, but not to its REGISTRY_MASTER_KEY. It used to say "already bound to
    REGISTRY_MASTER_KEY (its signing keys open with it)" and exit 0; now it says the key is not the database's
    (exit 2)."""
    await _a_client_of_an_earlier_version(settings)
    other = _under(settings, OTHER_KEY)
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            await keys.registry_token_key(session, RegistryContext.from_settings(other).box, master_key_proved=True)
            command = asyncio.create_task(_confirm_master(settings, "--without-proof", "--yes"))
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            while not (await _sql(settings, waiting)):
                assert not command.done(), command.result()
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()

    code, out, err = await command
    assert code == 2, (out, err)
    assert _said(out) == []
    assert _said(err) == [WRONG_KEY]
    assert await _keys(settings) == 1
    assert await _confirmations(settings) == []
