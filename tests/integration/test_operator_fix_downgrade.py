"""An operator who migrated the database down with the alembic CLI below migration 0005 (which drops the status seals
only the registry, holding the master key, can make) and then ran ``registry migrate`` was told "database is at the
latest revision", exit 0, while every certificate now verifies as 'unknown'. ``registry migrate`` now says so in the
reader's language, with what to do next, and exits 6; the service still serves those certificates, as 'unknown'."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app, dispose
from cli.database import UNSEALED_CERTIFICATES_EXIT
from registry.config import Settings
from registry.db import create_engine
from tests.factories import issued_certificate, ready_issuer
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.server_support import Server

ROOT = Path(__file__).resolve().parents[2]


async def _alembic_downgrade(database_url: str, revision: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alembic",
        "-c",
        str(ROOT / "alembic.ini"),
        "downgrade",
        revision,
        cwd=ROOT,
        env={**os.environ, **registry_env(database_url)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode == 0, (out + err).decode()


async def _lose_the_seals(database_url: str, backend: str) -> None:
    """What the operator did: ``alembic downgrade`` below 0005 on PostgreSQL. On SQLite alembic's batch downgrade of a
    database holding certificates stops at ``DROP TABLE certificates`` (FOREIGN KEY constraint failed), so the state
    that downgrade and the upgrade after it leave is made directly: no status seals, no re-seal pass recorded."""
    if backend == "postgresql":
        await _alembic_downgrade(database_url, "20261122_0004")
        return
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE certificates SET status_seal = NULL"))
            await connection.execute(text("DELETE FROM seal_upgrades"))
    finally:
        await engine.dispose()


async def test_migrate_after_an_alembic_downgrade_below_the_seals_says_what_happened_and_exits_6(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str, settings: Settings
) -> None:
    issuer = await ready_issuer(app, client)
    certificate = await issued_certificate(client, issuer)
    before = (await client.get(f"/v1/verify/{certificate['qr_token']}")).json()
    assert before["result"] == "valid", before
    await dispose(app)

    await _lose_the_seals(database_url, backend)
    env = registry_env(database_url)
    code, out, err = await run_registry("migrate", env={**env, "LANG": "C.UTF-8", "LC_ALL": ""})

    assert code == UNSEALED_CERTIFICATES_EXIT == 6, out + err
    assert "do not match their status seal" in err, err
    assert certificate["number"] in err, err
    assert "registry audit verify" in err, err
    assert "backup" in err, err
    assert "alembic" in err, err

    served = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
            answer = await http.get(f"/v1/verify/{certificate['qr_token']}")
    finally:
        await dispose(served)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "unknown", answer.json()  # the safe answer, never 'valid'
    assert answer.json()["reason"] in {"status_tampered", "signing_key_unknown"}, answer.json()


async def test_migrate_says_it_in_chinese_to_a_chinese_reader(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, backend: str
) -> None:
    issuer = await ready_issuer(app, client)
    certificate = await issued_certificate(client, issuer)
    await dispose(app)
    await _lose_the_seals(database_url, backend)

    code, out, err = await run_registry("migrate", env={**registry_env(database_url), "LC_ALL": "zh_CN.UTF-8"})

    assert code == 6, out + err
    assert "与其状态封印不符" in err, err
    assert "registry audit verify" in err, err
    assert certificate["number"] in err, err


async def test_migrate_of_an_intact_database_still_says_it_is_at_the_latest_revision(database_url: str) -> None:
    code, out, err = await run_registry("migrate", env={**registry_env(database_url), "LC_ALL": "C.UTF-8"})
    assert code == 0, out + err
    assert "database is at the latest revision" in err, err


async def test_serve_after_the_seals_were_lost_keeps_serving_and_answers_unknown(
    app: FastAPI, client: httpx.AsyncClient, backend: str, settings: Settings, tmp_path: Path
) -> None:
    issuer = await ready_issuer(app, client)
    certificate = await issued_certificate(client, issuer)
    await dispose(app)
    await _lose_the_seals(settings.database_url, backend)

    log = tmp_path / "server.log"
    async with Server.for_settings(settings, log) as server, httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get(f"/v1/verify/{certificate['qr_token']}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "unknown", answer.json()
    written = log.read_text(encoding="utf-8")
    assert "do not match their status seal" in written, written[-2000:]
    assert certificate["number"] in written, written[-2000:]
