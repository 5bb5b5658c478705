"""Key rotations and body suspensions racing each other on PostgreSQL: however many arrive at once, each owner is left
with exactly one active key, and a body is suspended (and audited) once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app, dispose
from registry.config import Settings
from registry.db import transaction
from tests.checks import assert_problem
from tests.factories import admin_token, bearer, create_issuer, issued_certificate
from tests.integration.lifecycle_support import CODE, set_up

POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has one write lock: nothing to race
AT_ONCE = 12
BODY = "BJ-AI-COMMITTEE"


async def _all_at_once(client: httpx.AsyncClient, path: str, admin: str, **kwargs: Any) -> list[httpx.Response]:
    return list(await asyncio.gather(*(client.post(path, headers=bearer(admin), **kwargs) for _ in range(AT_ONCE))))


async def _jwks(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys


async def _stored(app: FastAPI, sql: str, **params: Any) -> list[Any]:
    async with transaction(app.state.sessions) as session:
        return list((await session.execute(text(sql), params)).all())


@POSTGRESQL_ONLY
async def test_registry_key_rotations_at_once_all_succeed_and_leave_one_active_token_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Each rotation retires the key the one before it made, as twelve rotations one by one would."""
    admin = await admin_token(app, client)
    [(first,)] = await _stored(app, "SELECT kid FROM signing_keys WHERE use = 'access_token' AND status = 'active'")

    answers = await _all_at_once(client, "/v1/registry/keys/rotate", admin)

    assert [a.status_code for a in answers] == [201] * AT_ONCE, [(a.status_code, a.text[:300]) for a in answers]
    made = [a.json()["kid"] for a in answers]
    active = [k["kid"] for k in await _jwks(client) if k["key_use"] == "access_token" and k["status"] == "active"]
    print("ACTIVE", active)
    assert len(active) == 1, active
    assert active[0] in made
    stored = await _stored(app, "SELECT kid FROM signing_keys WHERE use = 'access_token' AND status = 'active'")
    assert stored == [(active[0],)]
    retired = [[old["kid"] for old in a.json()["retired"]] for a in answers]
    assert all(len(kids) == 1 for kids in retired), retired  # one predecessor each: no key retired twice
    assert sorted(kid for kids in retired for kid in kids) == sorted({first, *made} - {active[0]})


@POSTGRESQL_ONLY
async def test_body_key_rotations_at_once_all_succeed_and_leave_the_body_one_active_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin, code=BODY)

    answers = await _all_at_once(client, f"/v1/issuers/{BODY}/keys/rotate", admin)

    assert [a.status_code for a in answers] == [201] * AT_ONCE, [(a.status_code, a.text[:300]) for a in answers]
    published = {k["kid"].rsplit("/", 1)[-1] for k in await _jwks(client) if k.get("issuer_code") == BODY}
    active = {
        k["kid"].rsplit("/", 1)[-1]
        for k in await _jwks(client)
        if k.get("issuer_code") == BODY and k["status"] == "active"
    }
    print("ACTIVE", active)
    assert len(active) == 1, active
    assert active <= {a.json()["kid"] for a in answers}
    assert len(published) == AT_ONCE + 1  # the key it was registered with, and one per rotation
    stored = await _stored(
        app,
        "SELECT k.kid FROM signing_keys k JOIN issuers i ON i.id = k.issuer_id"
        " WHERE i.code = :code AND k.use = 'certificate' AND k.status = 'active'",
        code=BODY,
    )
    assert stored == [(next(iter(active)),)]


@POSTGRESQL_ONLY
async def test_suspensions_of_a_body_at_once_are_one_success_and_the_rest_conflicts_with_one_audit_record(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin, code=BODY)

    answers = await _all_at_once(client, f"/v1/issuers/{BODY}/suspend", admin, json={"reason": "核查"})

    assert Counter(a.status_code for a in answers) == {200: 1, 409: AT_ONCE - 1}, [a.text[:200] for a in answers]
    for refused in (a for a in answers if a.status_code == 409):
        assert_problem(refused, 409)
    [accepted] = [a for a in answers if a.status_code == 200]
    assert accepted.json()["status"] == "suspended"
    records = await _stored(
        app, "SELECT details FROM audit_log WHERE action = 'issuer.suspended' AND object_id = :code", code=BODY
    )
    assert len(records) == 1, records


@POSTGRESQL_ONLY
async def test_pdfs_asked_for_at_once_after_a_rotation_make_one_document_key(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """The body's document key is made on first use, under the same turn as its rotations: of PDFs asked of two
    processes at once, one makes it and the others use it (each process made its own before, and all stayed
    active). Two apps on one database stand for two processes: within one, PDFs of one key are made one at a time."""
    world = await set_up(app, client)
    number = (await issued_certificate(client, world.issuer))["number"]
    other = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="https://registry.test"
        ) as second:
            for _round in range(3):
                rotated = await client.post(f"/v1/issuers/{CODE}/keys/rotate", headers=bearer(world.admin))
                assert rotated.status_code == 201
                path = f"/v1/certificates/{number}.pdf"
                pdfs = await asyncio.gather(
                    *(http.get(path, headers=bearer(world.issuer)) for http in (client, second) * 4)
                )
                assert [pdf.status_code for pdf in pdfs] == [200] * 8
                active = await _stored(
                    app,
                    "SELECT kid FROM signing_keys k JOIN issuers i ON i.id = k.issuer_id "
                    "WHERE k.use = 'document' AND k.status = 'active' AND i.code = :code",
                    code=CODE,
                )
                assert len(active) == 1, active
    finally:
        await dispose(other)
