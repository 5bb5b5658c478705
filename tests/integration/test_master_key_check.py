"""A registry started under a master key other than its database's refuses to start, rather than serving every
certificate as unknown and every client and holder as a stranger."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from api.app import create_app, dispose
from registry.config import Settings
from registry.db import create_engine, session_factory, transaction
from registry.errors import ConfigurationError
from registry.keys import key_check
from registry.keys.secrets_box import SecretsBox
from registry.keys.service import registry_token_key
from tests.conftest import MASTER_KEY

OTHER_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff"


async def _seal_a_token_key(settings: Settings) -> None:
    """What the database holds once the registry has issued its first access token: a key wrapped under its master
    key."""
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            await registry_token_key(session, SecretsBox.from_master_key(settings.master_key_bytes))
    finally:
        await engine.dispose()


def _under_other_key(settings: Settings) -> Settings:
    """The same settings with another master key (made anew: a copy would keep the key bytes already read)."""
    return Settings(**{**settings.model_dump(), "master_key": OTHER_KEY})


async def test_a_registry_started_under_another_master_key_refuses_to_start(settings: Settings) -> None:
    await _seal_a_token_key(settings)
    application = create_app(_under_other_key(settings))
    try:
        with pytest.raises(ConfigurationError) as refused:
            async with application.router.lifespan_context(application):
                pytest.fail("the registry started under the wrong master key")
    finally:
        await dispose(application)

    message = str(refused.value)
    assert "REGISTRY_MASTER_KEY" in message
    assert "not the key this database" in message
    for key in (OTHER_KEY, MASTER_KEY):  # neither key is ever shown
        assert key not in message.lower()


async def test_a_registry_started_under_its_own_master_key_starts(settings: Settings) -> None:
    await _seal_a_token_key(settings)
    application = create_app(settings)
    try:
        async with application.router.lifespan_context(application):
            assert application.state.master_key_checked
    finally:
        await dispose(application)


async def test_a_first_start_on_an_empty_database_takes_any_master_key(settings: Settings) -> None:
    application = create_app(_under_other_key(settings))
    try:
        async with application.router.lifespan_context(application):
            pass
    finally:
        await dispose(application)


async def test_commands_can_check_the_key_on_their_own_engine(settings: Settings) -> None:
    await _seal_a_token_key(settings)
    engine = create_engine(settings.database_url)
    try:
        await key_check.check_master_key_on(engine, SecretsBox.from_master_key(settings.master_key_bytes))
        with pytest.raises(ConfigurationError, match="REGISTRY_MASTER_KEY"):
            await key_check.check_master_key_on(engine, SecretsBox.from_master_key(bytes.fromhex(OTHER_KEY)))
    finally:
        await engine.dispose()


async def test_a_database_out_of_reach_at_start_is_no_refusal_but_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = Settings(
        env="test",
        database_url="postgresql+asyncpg://registry@127.0.0.1:9/registry",  # discard port: connection refused
        master_key=MASTER_KEY,
        public_base_url="https://registry.test",
        data_dir=tmp_path,
        batch_workers=0,
    )
    application = create_app(unreachable)
    try:
        with caplog.at_level(logging.WARNING, logger="registry.serve"):
            async with application.router.lifespan_context(application):
                assert not application.state.master_key_checked  # for /readyz to check once the database answers
    finally:
        await dispose(application)
    assert "the master key was not checked" in caplog.text


async def test_a_key_not_checked_at_start_is_checked_by_the_readiness_probe(settings: Settings) -> None:
    """The database was out of reach at start (the key unchecked): /readyz checks it once the primary answers, and is
    never ready under a key that does not open the database's secrets."""
    await _seal_a_token_key(settings)
    for master_settings, expected in ((_under_other_key(settings), 503), (settings, 200)):
        application = create_app(master_settings)
        application.state.master_key_checked = False
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
                answer = await http.get("/readyz")
                assert answer.status_code == expected, answer.text
                if expected == 503:
                    assert answer.json()["type"].endswith("/master-key-mismatch")
                    assert OTHER_KEY not in answer.text
                    assert MASTER_KEY not in answer.text
                    assert (await http.get("/readyz")).status_code == 503  # checked again, never taken as done
                else:
                    assert application.state.master_key_checked is True
        finally:
            await dispose(application)
