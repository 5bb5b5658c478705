"""A database holding API clients made before start-up bound a database to its master key, and no signing key, is
bound by nothing a start can check (tests/integration/test_master_key_clients_only.py). Nor may an anonymous request
bind it: the first key it seals (a checkpoint's, a peer's statement's, a holder session's) binds the database to
the running master key, and under the wrong one the right one would be locked out. They are refused, 503 with
Retry-After, until an API client's secret has opened its keyed hash (which proves the key) and its token's key has
bound the database; from then on a start under the wrong key is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app, dispose
from registry.auth import client_secrets, tokens
from registry.certificates import numbering
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import create_engine, session_factory, transaction
from registry.errors import ConfigurationError, ServiceUnavailable
from registry.keys.service import UNPROVEN_KEY_RETRY_AFTER_SECONDS
from tests.conftest import MASTER_KEY
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_import_language import ENGLISH
from tests.integration.test_master_key_clients_only import OTHER_KEY

UNPROVEN = (
    "the registry cannot sign yet: its master key has not been confirmed since an upgrade (an API client's first "
    "token, or `registry keys confirm-master` on the server, confirms it); ask again later"
)
UNPROVEN_ZH = (
    "登记系统暂时无法签名：升级后其主密钥尚未得到确认（API 客户端首次获取令牌，或在服务器上运行 "
    "`registry keys confirm-master`，即可确认）；请稍后再试"
)
CLIENT_ID = "trc_legacy"
SECRET = "a-secret-made-by-an-earlier-version"


async def _sql(settings: Settings, statement: str, **values: Any) -> Any:
    """The statement run in a transaction of its own; for a query, the first column of its first row."""
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            result = await session.execute(text(statement), values)
            return result.scalar() if statement.startswith("SELECT") else None
    finally:
        await engine.dispose()


async def _keys(settings: Settings) -> int:
    return int(await _sql(settings, "SELECT count(*) FROM signing_keys"))


async def _a_client_of_an_earlier_version(settings: Settings) -> None:
    """An admin client whose secret is hashed under the right master key, and no signing key: as an earlier version
    left a database after `registry clients create`."""
    secret_hash = client_secrets.secret_hash(RegistryContext.from_settings(settings).box, SECRET)
    await _sql(
        settings,
        "INSERT INTO api_clients (client_id, secret_hash, role, name, scopes, active, created_at) "
        "VALUES (:client_id, :hash, 'admin', 'ops', '[]', true, CURRENT_TIMESTAMP)",
        client_id=CLIENT_ID,
        hash=secret_hash,
    )
    assert await _keys(settings) == 0


def _under(settings: Settings, master_key: str) -> Settings:
    """The same registry under ``master_key``, in Tianjin with a Beijing peer (never reached: nothing listens)."""
    return Settings(
        **{**settings.model_dump(), "master_key": master_key, "region": "TJ", "peers": {"BJ": "http://127.0.0.1:9"}}
    )


@asynccontextmanager
async def _started(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(settings)
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
                yield http
    finally:
        await dispose(application)


def _refused(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == str(UNPROVEN_KEY_RETRY_AFTER_SECONDS)
    assert response.json()["detail"] == detail


async def _client_token(http: httpx.AsyncClient) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    return await http.post("/oauth/token", data=form)


async def test_anonymous_requests_under_a_wrong_key_seal_no_first_key_of_a_database_holding_only_clients(
    settings: Settings,
) -> None:
    await _a_client_of_an_earlier_version(settings)
    wrong = _under(settings, OTHER_KEY)
    async with _started(wrong) as http:  # not refused: nothing in the database can tell the key is wrong
        _refused(await http.get("/v1/transparency/checkpoint"), UNPROVEN)
        _refused(await http.get("/v1/transparency/checkpoint", headers={"Accept-Language": "zh"}), UNPROVEN_ZH)
        # A Beijing number, asked of its node: this node's service token for the peer needs the node's key.
        number = numbering.new_number(region="BJ", cert_type="title", year=2026)
        _refused(await http.post("/v1/verify", json={"number": number, "holder_name": "张三"}), UNPROVEN)
        # The client's own secret does not open its hash under this key: no proof, no key.
        assert (await _client_token(http)).status_code == 401
    # A holder's session token (what holder sign-in answers with) is signed with the registry's key too. Under the
    # wrong key no holder matches (identity and claim code are keyed hashes), so it is asked for here directly.
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            with pytest.raises(ServiceUnavailable) as refused:
                await tokens.holder_token(
                    RegistryContext.from_settings(wrong),
                    session,
                    holder_index="0" * 64,
                    certificates_of=None,
                    claimed=None,
                )
    finally:
        await engine.dispose()
    assert str(refused.value) == UNPROVEN
    assert refused.value.retry_after == UNPROVEN_KEY_RETRY_AFTER_SECONDS
    assert await _keys(settings) == 0  # nothing binds the database to the wrong key

    right = _under(settings, MASTER_KEY)
    async with _started(right) as http:
        assert (await _client_token(http)).status_code == 200  # the secret opened its hash: the key is proved


async def test_a_client_token_under_the_right_key_binds_the_database_and_the_wrong_key_is_refused_then(
    settings: Settings,
) -> None:
    await _a_client_of_an_earlier_version(settings)
    right = _under(settings, MASTER_KEY)
    async with _started(right) as http:
        # The right key, unproven yet, is no different to an anonymous request.
        _refused(await http.get("/v1/transparency/checkpoint"), UNPROVEN)
        assert await _keys(settings) == 0
        issued = await _client_token(http)
        assert issued.status_code == 200, issued.text
        assert await _keys(settings) == 1  # its token's key binds the database
        checkpoint = await http.get("/v1/transparency/checkpoint")
        assert checkpoint.status_code == 200, checkpoint.text
        assert checkpoint.json()["kid"].startswith("registry-")
    assert await _keys(settings) == 1

    application = create_app(_under(settings, OTHER_KEY))
    try:
        with pytest.raises(ConfigurationError) as refused:
            async with application.router.lifespan_context(application):
                pytest.fail("the registry started under the wrong master key")
    finally:
        await dispose(application)
    assert "REGISTRY_MASTER_KEY is not the key this database's secrets are sealed with" in str(refused.value)
    async with _started(right) as http:  # the right key still opens it
        assert (await _client_token(http)).status_code == 200


async def test_a_registry_key_rotation_from_the_command_line_seals_no_first_key_under_an_unproven_key(
    settings: Settings,
) -> None:
    await _a_client_of_an_earlier_version(settings)
    wrong = {**registry_env(settings.database_url), "REGISTRY_MASTER_KEY": OTHER_KEY}
    code, out, err = await run_registry("keys", "rotate", "--registry", env=wrong | ENGLISH)
    assert code == 1, (out, err)
    assert [line for line in err.splitlines() if '"level"' not in line] == [
        "the master key could not be checked: the database holds API clients but no sealed key yet",
        f"error: {UNPROVEN}",
    ]
    assert await _keys(settings) == 0


async def test_the_pdf_signing_root_is_not_made_under_an_unproven_key(settings: Settings) -> None:
    await _a_client_of_an_earlier_version(settings)
    async with _started(_under(settings, OTHER_KEY)) as http:
        _refused(await http.get("/.well-known/pdf-signing-root.pem"), UNPROVEN)
        _refused(await http.get("/.well-known/pdf-signing-root.crl"), UNPROVEN)
    assert await _keys(settings) == 0
