"""The master-key check covers a database whose only secrets are API clients' (`registry clients create` before
anything is signed): started, or run a command against, under another key, the registry refuses at once, in the
reader's language — not later, with every client's secret "wrong" (a keyed hash says nothing about the key).
A database that already holds clients made before the check covered them is never bound to an unproven key."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from api.app import create_app, dispose
from registry.config import Settings
from registry.db import create_engine, session_factory, transaction
from registry.errors import ConfigurationError
from tests.conftest import MASTER_KEY
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_import_language import CHINESE, ENGLISH

OTHER_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff"
REFUSED = (
    "configuration error: REGISTRY_MASTER_KEY is not the key this database's secrets are sealed with "
    "(a signing key does not open with it); start with the key the database was made with"
)
REFUSED_ZH = (
    "配置错误：REGISTRY_MASTER_KEY 不是本数据库中密钥所用的密封密钥（有签名密钥无法用它打开）；请使用建库时的密钥启动"
)


def _refusal(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip() and '"level":"INFO"' not in line]


async def _count(settings: Settings, table: str) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608
    finally:
        await engine.dispose()


async def _an_admin_client(settings: Settings) -> str:
    """`registry clients create` on a database that holds nothing else the master key protects."""
    code, out, err = await run_registry(
        "clients", "create", "--role", "admin", "--name", "ops", env=registry_env(settings.database_url) | ENGLISH
    )
    assert code == 0, err
    client_id: str = json.loads(out)["client_id"]
    return client_id


async def test_a_command_under_another_key_refuses_a_database_holding_only_an_api_client(settings: Settings) -> None:
    await _an_admin_client(settings)
    wrong = {**registry_env(settings.database_url), "REGISTRY_MASTER_KEY": OTHER_KEY}

    code, out, err = await run_registry("migrate", env=wrong | ENGLISH)
    assert code == 2, (out, err)
    assert _refusal(err) == [REFUSED]
    code, out, err = await run_registry("clients", "create", "--role", "admin", "--name", "b", env=wrong | CHINESE)
    assert code == 2, (out, err)
    assert _refusal(err) == [REFUSED_ZH]
    assert OTHER_KEY not in out + err
    assert MASTER_KEY not in out + err
    assert await _count(settings, "api_clients") == 1  # nothing was made under the wrong key

    code, out, err = await run_registry("migrate", env=registry_env(settings.database_url) | ENGLISH)
    assert code == 0, (out, err)  # its own key still opens it


async def test_the_registry_refuses_to_start_under_another_key_on_a_database_holding_only_an_api_client(
    settings: Settings,
) -> None:
    await _an_admin_client(settings)
    application = create_app(Settings(**{**settings.model_dump(), "master_key": OTHER_KEY}))
    try:
        with pytest.raises(ConfigurationError) as refused:
            async with application.router.lifespan_context(application):
                pytest.fail("the registry started under the wrong master key")
    finally:
        await dispose(application)
    assert "REGISTRY_MASTER_KEY is not the key this database's secrets are sealed with" in str(refused.value)


async def test_clients_made_before_the_check_covered_them_bind_no_key_a_start_cannot_prove(settings: Settings) -> None:
    """A client row and no sealed key (made by an earlier version): a start under any key cannot tell whether it is
    the clients' key, so it seals nothing; a start under the wrong key must not lock the right one out."""
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            await session.execute(
                text(
                    "INSERT INTO api_clients (client_id, secret_hash, role, name, scopes, active, created_at) "
                    "VALUES ('trc_legacy', :hash, 'admin', 'ops', '[]', true, CURRENT_TIMESTAMP)"
                ),
                {"hash": "0" * 64},
            )
    finally:
        await engine.dispose()
    for key in (OTHER_KEY, MASTER_KEY):
        code, out, err = await run_registry(
            "migrate", env={**registry_env(settings.database_url), "REGISTRY_MASTER_KEY": key} | ENGLISH
        )
        assert code == 0, (out, err)
        assert await _count(settings, "signing_keys") == 0
