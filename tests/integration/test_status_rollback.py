"""A status rolled back in the database — the row saved while active written back after a revocation, seal and all —
carries a matching status seal, but not a matching history: `registry audit verify` checks every certificate's status
against its latest event, its transparency leaves and the audit log, and every status list against its certificates,
exiting 1 naming the first certificate number or list that disagrees (never an identity number)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from registry.certificates import status_lists
from registry.db import transaction
from tests.checks import run_sql
from tests.factories import bearer, issued_certificate, resident_id
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.lifecycle_support import World, act, set_up


async def _status_row(app: FastAPI, number: str) -> dict[str, Any]:
    async with transaction(app.state.sessions) as session:
        row = (
            await session.execute(
                text(
                    "SELECT status, revocation_reason, status_seal, status_list_id, status_index FROM certificates "
                    "WHERE number = :n"
                ),
                {"n": number},
            )
        ).one()
    return dict(row._mapping)


async def _roll_back(app: FastAPI, number: str, saved: dict[str, Any]) -> None:
    await run_sql(
        app,
        "UPDATE certificates SET status = :s, revocation_reason = :r, status_seal = :seal WHERE number = :n",
        s=saved["status"],
        r=saved["revocation_reason"],
        seal=saved["status_seal"],
        n=number,
    )


async def _issued_and_saved(
    app: FastAPI, client: httpx.AsyncClient
) -> tuple[World, str, dict[str, Any], dict[str, Any]]:
    """A certificate issued to 王五 (with the identity number no output may show), and its status row as it stands:
    what someone with write access saves before the revocation they mean to undo."""
    world = await set_up(app, client)
    id_number = resident_id()
    certificate = await issued_certificate(
        client, world.issuer, holder={"name": "王五", "id_type": "resident_id", "id_number": id_number}
    )
    return world, id_number, certificate, await _status_row(app, certificate["number"])


async def _audit_verify(database_url: str) -> tuple[int, str]:
    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url))
    return code, out + err


async def test_audit_verify_passes_after_every_kind_of_status_change(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    world = await set_up(app, client)
    first = await issued_certificate(client, world.issuer)
    second = await issued_certificate(client, world.issuer)
    third = await issued_certificate(client, world.issuer)
    for action in ("suspend", "reinstate", "suspend", "revoke"):
        assert (await act(client, world.issuer, first["number"], action)).status_code == 200
    assert (await act(client, world.issuer, second["number"], "suspend")).status_code == 200
    corrected = await client.post(
        f"/v1/certificates/{third['number']}/correct",
        json={"reason": "wrong level", "level": "senior"},
        headers=bearer(world.issuer),
    )
    assert corrected.status_code == 201, corrected.text

    code, out = await _audit_verify(database_url)

    assert code == 0, out
    assert "certificate statuses agree with their history and status lists" in out


async def test_audit_verify_names_a_certificate_whose_revocation_was_rolled_back(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    world, id_number, certificate, saved = await _issued_and_saved(app, client)
    number = certificate["number"]
    assert (await act(client, world.issuer, number, "revoke")).status_code == 200
    await _roll_back(app, number, saved)
    verification = (await client.get(f"/v1/verify/{certificate['qr_token']}")).json()
    assert verification["result"] == "valid"  # the seal matches: what only the history shows

    code, out = await _audit_verify(database_url)

    assert code == 1, out
    assert f"certificate {number}: is active, but its status history (certificate_events) says revoked" in out
    assert id_number not in out


async def test_a_rollback_with_its_events_deleted_is_still_caught(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    saved = await _status_row(app, number)
    assert (await act(client, world.issuer, number, "revoke")).status_code == 200
    await _roll_back(app, number, saved)
    await run_sql(
        app,
        "DELETE FROM certificate_events WHERE event = 'revoked' AND certificate_id = "
        "(SELECT id FROM certificates WHERE number = :n)",
        n=number,
    )

    code, out = await _audit_verify(database_url)

    assert code == 1, out
    assert f"certificate {number}: is active, but the transparency log says revoked" in out


async def test_a_rolled_back_list_bit_is_named(app: FastAPI, client: httpx.AsyncClient, database_url: str) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    row = await _status_row(app, certificate["number"])
    list_id, index = row["status_list_id"], row["status_index"]
    async with transaction(app.state.sessions) as session:
        before = (
            await session.execute(
                text("SELECT bits, seal FROM status_lists WHERE list_id = :l AND purpose = 'revocation'"),
                {"l": list_id},
            )
        ).one()
    assert (await act(client, world.issuer, certificate["number"], "revoke")).status_code == 200
    # The whole row rolled back, bits and seal: both match each other, not the certificate.
    await run_sql(
        app,
        "UPDATE status_lists SET bits = :b, seal = :s WHERE list_id = :l AND purpose = 'revocation'",
        b=bytes(before[0]),
        s=before[1],
        l=list_id,
    )

    code, out = await _audit_verify(database_url)

    assert code == 1, out
    assert f"status list {list_id}-revocation: bit {index} is clear, but its certificate's status says otherwise" in out


async def test_a_list_bit_changed_without_the_key_breaks_its_seal(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    assert (await act(client, world.issuer, certificate["number"], "revoke")).status_code == 200
    row = await _status_row(app, certificate["number"])
    list_id, index = row["status_list_id"], row["status_index"]
    async with transaction(app.state.sessions) as session:
        bits = (
            await session.execute(
                text("SELECT bits FROM status_lists WHERE list_id = :l AND purpose = 'revocation'"), {"l": list_id}
            )
        ).scalar_one()
    await run_sql(
        app,
        "UPDATE status_lists SET bits = :b WHERE list_id = :l AND purpose = 'revocation'",
        b=status_lists.with_bit(bytes(bits), index, False),
        l=list_id,
    )

    code, out = await _audit_verify(database_url)

    assert code == 1, out
    assert f"status list {list_id}-revocation: its bits do not match their seal" in out
