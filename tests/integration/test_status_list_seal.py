"""Status lists are sealed: bits changed with SQL alone (no master key) are never signed as stored. A list whose seal
is missing or broken is not served at all (503, never rebuilt per request), a bit flip never seals bits someone else
wrote (it rebuilds the list from its certificates' sealed statuses first), and lists kept from before seals are sealed
from their certificates by `registry migrate`."""

from __future__ import annotations

import base64
import gzip
import logging
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlmodel import col

from registry.certificates import status_lists
from registry.certificates.models import StatusList
from registry.config import Settings
from registry.db import transaction
from tests.checks import run_sql
from tests.factories import issued_certificate
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.lifecycle_support import CODE, act, set_up


async def _slot(app: FastAPI, number: str) -> tuple[str, int]:
    async with transaction(app.state.sessions) as session:
        row = (
            await session.execute(
                text("SELECT status_list_id, status_index FROM certificates WHERE number = :n"), {"n": number}
            )
        ).one()
    return str(row[0]), int(row[1])


async def _served_bits(client: httpx.AsyncClient, list_name: str) -> bytes:
    response = await client.get(f"/v1/status-lists/{CODE}/{list_name}")
    assert response.status_code == 200, response.text
    claims: dict[str, Any] = jwt.decode(response.text.strip(), options={"verify_signature": False})
    encoded = claims["credentialSubject"]["encodedList"][1:]
    return gzip.decompress(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


async def _entry(client: httpx.AsyncClient, list_id: str, index: int) -> tuple[int, int, int]:
    """(message value, revocation bit, suspension bit) as served for ``index``."""
    message = await _served_bits(client, f"{list_id}-message")
    value = status_lists.bit(message, 2 * index) << 1 | status_lists.bit(message, 2 * index + 1)
    revocation = status_lists.bit(await _served_bits(client, f"{list_id}-revocation"), index)
    suspension = status_lists.bit(await _served_bits(client, f"{list_id}-suspension"), index)
    return value, int(revocation), int(suspension)


async def _clear_bit(app: FastAPI, list_id: str, index: int, purpose: str = "revocation") -> None:
    """What an attacker with write access but no master key does: clear the bit, leave the seal as it is."""
    async with transaction(app.state.sessions) as session:
        bits = (
            await session.execute(
                text("SELECT bits FROM status_lists WHERE list_id = :l AND purpose = :p"), {"l": list_id, "p": purpose}
            )
        ).scalar_one()
    await run_sql(
        app,
        "UPDATE status_lists SET bits = :b WHERE list_id = :l AND purpose = :p",
        b=status_lists.with_bit(bytes(bits), index, False),
        l=list_id,
        p=purpose,
    )


async def _rows(app: FastAPI, list_id: str) -> list[StatusList]:
    async with transaction(app.state.sessions) as session:
        query = select(StatusList).where(col(StatusList.list_id) == list_id).order_by(col(StatusList.purpose))
        return list((await session.execute(query)).scalars())


async def _revoked(app: FastAPI, client: httpx.AsyncClient) -> tuple[Any, str, str, int]:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    assert (await act(client, world.issuer, certificate["number"], "revoke")).status_code == 200
    list_id, index = await _slot(app, certificate["number"])
    return world, certificate["number"], list_id, index


async def test_lists_are_sealed_when_opened_and_at_every_flip(app: FastAPI, client: httpx.AsyncClient) -> None:
    _world, _number, list_id, _index = await _revoked(app, client)
    rows = await _rows(app, list_id)
    assert [row.purpose for row in rows] == ["revocation", "suspension"]
    box = app.state.context.box
    assert all(row.seal is not None and status_lists.seal_intact(box, row) for row in rows)


async def _assert_unserved(
    client: httpx.AsyncClient, list_id: str, names: tuple[str, ...] = ("message", "revocation", "suspension")
) -> None:
    """Each list named answers 503 with Retry-After, as problem+json, and never a signed list."""
    for name in names:
        response = await client.get(f"/v1/status-lists/{CODE}/{list_id}-{name}")
        assert response.status_code == 503, (name, response.text)
        assert int(response.headers["retry-after"]) > 0
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "no-store" in response.headers.get("cache-control", "")


async def test_a_bit_cleared_in_the_database_is_not_signed(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    _world, _number, list_id, index = await _revoked(app, client)
    assert await _entry(client, list_id, index) == (0b10, 1, 0)
    await _clear_bit(app, list_id, index)

    status_lists._reported.clear()
    with caplog.at_level(logging.ERROR, logger="registry.certificates.status_lists"):
        await _assert_unserved(client, list_id, ("message", "revocation"))
        await _assert_unserved(client, list_id, ("message", "revocation"))
    assert (await client.get(f"/v1/status-lists/{CODE}/{list_id}-suspension")).status_code == 200  # its seal holds
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    named = [message for message in errors if f"status list {list_id}-revocation does not match its seal" in message]
    assert len(named) == 1, errors  # once per list and interval, however often it is asked for


async def test_a_list_without_a_seal_is_not_served(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Lists kept from before seals were sealed by `registry migrate`: a list without one now is a broken one, and
    is not rebuilt per request (seconds of CPU for a full list, for anyone who asks)."""
    _world, _number, list_id, index = await _revoked(app, client)
    await _clear_bit(app, list_id, index)
    await run_sql(app, "UPDATE status_lists SET seal = NULL WHERE list_id = :l", l=list_id)
    await _assert_unserved(client, list_id)


async def test_a_certificate_whose_status_seal_fails_keeps_its_list_unsealed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world, number, list_id, index = await _revoked(app, client)
    other = await issued_certificate(client, world.issuer)  # before the list breaks: a broken list takes none
    # Both at once: the list's bit cleared, and the certificate said active (without the key, its seal cannot follow).
    await _clear_bit(app, list_id, index)
    await run_sql(
        app, "UPDATE certificates SET status = 'active', revocation_reason = NULL WHERE number = :n", n=number
    )
    await _assert_unserved(client, list_id, ("message", "revocation"))
    # A flip in the list rebuilds it, the tampered certificate read as revoked and suspended, never valid. A rebuild
    # with a certificate its seal does not confirm is not sealed: here it happens to be the very bits last sealed (the
    # certificate was revoked), so the old seal fits again and the list is served, saying revoked.
    assert (await act(client, world.issuer, other["number"], "suspend")).status_code == 200
    revocation, _suspension = await _rows(app, list_id)
    assert status_lists.bit(bytes(revocation.bits), index)  # fail closed: read as revoked (and suspended)
    assert (await _entry(client, list_id, index))[1] == 1


async def test_a_bit_flip_does_not_seal_bits_someone_else_wrote(app: FastAPI, client: httpx.AsyncClient) -> None:
    world, _number, list_id, index = await _revoked(app, client)
    other = await issued_certificate(client, world.issuer)  # before the list breaks: a broken list takes none
    await _clear_bit(app, list_id, index)
    other_list, other_index = await _slot(app, other["number"])
    assert other_list == list_id
    assert (await act(client, world.issuer, other["number"], "suspend")).status_code == 200

    rows = await _rows(app, list_id)
    box = app.state.context.box
    assert all(status_lists.seal_intact(box, row) for row in rows)  # sealed again, over the rebuilt bits
    assert status_lists.bit(bytes(rows[0].bits), index)  # the cleared bit was put back before sealing
    assert status_lists.bit(bytes(rows[1].bits), other_index)
    assert await _entry(client, list_id, index) == (0b10, 1, 0)


async def test_lists_from_before_seals_are_sealed_from_their_certificates(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _world, _number, list_id, index = await _revoked(app, client)
    await _clear_bit(app, list_id, index)
    await run_sql(app, "UPDATE status_lists SET seal = NULL WHERE list_id = :l", l=list_id)

    box = app.state.context.box
    async with transaction(app.state.sessions) as session:
        assert await status_lists.seal_legacy_lists(session, box) == 1
    async with transaction(app.state.sessions) as session:
        assert await status_lists.seal_legacy_lists(session, box) == 0  # nothing left to seal

    rows = await _rows(app, list_id)
    assert all(status_lists.seal_intact(box, row) for row in rows)
    assert status_lists.bit(bytes(rows[0].bits), index)
    assert not status_lists.bit(bytes(rows[1].bits), index)


async def test_registry_migrate_seals_the_lists_kept_from_before_seals(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """`registry migrate` (and `registry serve`, which migrates) holds the master key the migration does not."""
    _world, _number, list_id, index = await _revoked(app, client)
    await _clear_bit(app, list_id, index)
    await run_sql(app, "UPDATE status_lists SET seal = NULL WHERE list_id = :l", l=list_id)

    code, _out, err = await run_registry("migrate", env=registry_env(settings.database_url))
    assert code == 0, err

    rows = await _rows(app, list_id)
    assert all(status_lists.seal_intact(app.state.context.box, row) for row in rows)
    assert status_lists.bit(bytes(rows[0].bits), index)  # rebuilt from the revoked certificate, not trusted as stored
