"""A credential downloaded while its body's key is rotated, on PostgreSQL. The download reads the old key as active
(the rotation has not committed), signs with it, and is served. The rotation had dated the old key's retirement
(its ``valid_until`` in the JWKS) before it committed: a credential signed in between, a second or more later, was
NOT VALID offline ("outside the key's validity window"), yet served with 200. Now the rotation dates the retirement
once it holds the audit chain, and a download whose key was retired before it signed is asked again (503,
Retry-After); asked again, it is signed with the new key."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.credentials.offline import verify_credential
from registry.keys import service as keys
from registry.keys.models import KeyUse
from tests.factories import bearer, issued_certificate
from tests.integration.lifecycle_support import CODE, set_up
from tests.integration.test_algorithms import _jwks, _status_lists

POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has one write lock: nothing to race


async def _someone_waits_for_a_lock(app: FastAPI) -> bool:
    async with app.state.engine.connect() as connection:
        found = await connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return int(found.scalar_one()) > 0


@POSTGRESQL_ONLY
async def test_a_credential_downloaded_while_its_body_key_is_rotated_verifies_offline(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    path = f"/v1/certificates/{certificate['number']}/credential"
    # The rotation stops once it has retired the old key and before it makes the new one, till released: a rotation
    # slow to commit (its keys made, its audit record waiting behind a large batch).
    retired, release = asyncio.Event(), asyncio.Event()
    create_key = keys.create_key

    async def slow(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("use") is KeyUse.certificate and not retired.is_set():
            retired.set()
            await release.wait()
        return await create_key(*args, **kwargs)

    monkeypatch.setattr(keys, "create_key", slow)
    rotation = asyncio.create_task(client.post(f"/v1/issuers/{CODE}/keys/rotate", json={}, headers=bearer(world.admin)))
    await asyncio.wait_for(retired.wait(), timeout=30)
    await asyncio.sleep(1.1)  # the download signs in a later second than the retirement is dated (iat is in seconds)
    download = asyncio.create_task(client.get(path, headers=bearer(world.issuer)))
    for _ in range(400):  # until it has been served, or waits for the rotation (it cannot finish in between)
        if download.done() or await _someone_waits_for_a_lock(app):
            break
        await asyncio.sleep(0.05)
    release.set()
    assert (await asyncio.wait_for(rotation, timeout=30)).status_code == 201
    answer = await asyncio.wait_for(download, timeout=30)

    if answer.status_code == 503:  # asked again, as the answer says
        assert answer.headers["retry-after"] == "1"
        answer = await client.get(path, headers=bearer(world.issuer))
    assert answer.status_code == 200, answer.text
    credential = answer.text.strip()
    report = verify_credential(
        credential, jwks=await _jwks(client), status_lists=await _status_lists(client, credential)
    )
    assert report.verdict == "VALID", report.render("en")
