"""A registry started while its database was out of reach checks the master key at /readyz. Until the database holds
a sealed key there is nothing to open, and /readyz asks again next time: once a command under the right key binds
the database (``registry migrate``, ``registry clients create``), a process started under another key is not ready."""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app, dispose
from registry.config import Settings
from registry.db import create_engine
from registry.keys import key_check
from registry.keys.secrets_box import SecretsBox
from tests.integration.test_master_key_clients_only import OTHER_KEY


async def test_a_process_started_unchecked_is_not_ready_under_a_key_the_database_was_bound_against(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = key_check.check_master_key_on

    async def unreachable(*_args: object) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(key_check, "check_master_key_on", unreachable)
    wrong = create_app(Settings(**{**settings.model_dump(), "master_key": OTHER_KEY}))
    try:
        async with wrong.router.lifespan_context(wrong):
            monkeypatch.setattr(key_check, "check_master_key_on", real)
            transport = httpx.ASGITransport(app=wrong)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                first = await client.get("/readyz")
                engine = create_engine(settings.database_url)  # a command under the right key binds it
                try:
                    await real(engine, SecretsBox.from_master_key(settings.master_key_bytes))
                finally:
                    await engine.dispose()
                second = await client.get("/readyz")
    finally:
        await dispose(wrong)
    assert first.status_code == 200, first.text  # nothing sealed yet: nothing to refuse
    assert second.status_code == 503, second.text
    assert second.json()["type"].endswith("/master-key-mismatch"), second.text
