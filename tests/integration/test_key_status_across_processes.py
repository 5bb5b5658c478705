"""A key marked compromised through one process is seen by every other process within the key cache's few seconds
(``registry.keys.service.PUBLIC_KEY_CACHE_SECONDS``), not the half minute it was: a compromise is the one key change
that must spread fast, and each process caches keys for itself."""

from __future__ import annotations

import time
import types

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app, dispose
from registry.config import Settings
from tests.factories import bearer, issued_certificate
from tests.integration.lifecycle_support import CODE, set_up, verified


async def test_a_compromise_made_through_one_process_reaches_another_within_seconds(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    other = create_app(settings)  # a second process on the same database, with caches of its own
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="https://registry.test"
        ) as elsewhere:
            assert (await verified(elsewhere, certificate))["result"] == "valid"  # its key now cached there
            marked = await client.post(
                f"/v1/issuers/{CODE}/keys/{certificate['kid']}/compromise",
                json={"compromised_from": certificate["issued_at"]},
                headers=bearer(world.admin),
            )
            assert marked.status_code == 200, marked.text
            assert (await verified(client, certificate))["result"] == "unknown"  # at once where it was marked

            started = time.monotonic()
            # Only the key cache's clock moves on (the event loop keeps its own).
            later = types.SimpleNamespace(monotonic=lambda: started + 5.01)
            monkeypatch.setattr("registry.keys.service.time", later)
            after = await verified(elsewhere, certificate)
            assert (after["result"], after["reason"]) == ("unknown", "signing_key_compromised")
    finally:
        await dispose(other)
