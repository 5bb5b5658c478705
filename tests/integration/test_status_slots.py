"""A certificate's status-list slot (status_list_id, status_index) is bound by its status seal (version 2), so that
someone who can write the database but does not hold the master key cannot move a revoked certificate's bit away from
the index its credential names: not by moving the index, not by clearing the list id, not by then breaking the list's
seal so that it would be rebuilt. Rows sealed under version 1 are sealed again once by `registry migrate`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from cli.database import UNSEALED_CERTIFICATES_EXIT
from registry.certificates import rows, seal_upgrade, signing, status_lists
from registry.certificates.models import Certificate
from registry.db import transaction
from tests.checks import run_sql
from tests.factories import batch_rows, bearer, issued_certificate, resident_id
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.lifecycle_support import CODE, act, set_up
from tests.integration.test_status_list_seal import _assert_unserved, _entry, _rows, _slot

TAMPERINGS = {
    "index moved": "UPDATE certificates SET status_index = :free WHERE number = :n",
    "list id cleared": "UPDATE certificates SET status_list_id = NULL WHERE number = :n",
}
LIST_SEALS = {"cleared": "UPDATE status_lists SET seal = NULL", "garbage": "UPDATE status_lists SET seal = 'ab'"}


async def _row(app: FastAPI, number: str) -> dict[str, Any]:
    async with transaction(app.state.sessions) as session:
        found = await session.execute(select(Certificate).where(Certificate.number == number))  # type: ignore[arg-type]
        return found.scalar_one().model_dump()


async def _result(client: httpx.AsyncClient, certificate: dict[str, Any]) -> tuple[str, str | None]:
    body = (await client.get(f"/v1/verify/{certificate['qr_token']}")).json()
    return body["result"], body.get("reason")


async def _tamper(app: FastAPI, number: str, tampering: str, index: int) -> None:
    statement = TAMPERINGS[tampering]
    params: dict[str, Any] = {"n": number}
    if ":free" in statement:
        params["free"] = (index + 1) % status_lists.LIST_SIZE  # an index no certificate holds
    await run_sql(app, statement, **params)


@pytest.mark.parametrize("list_seal", sorted(LIST_SEALS))
@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
async def test_a_revoked_certificate_moved_off_its_slot_never_reads_valid_offline(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tampering: str, list_seal: str
) -> None:
    """The reviewer's scenario: revoke, move the slot with SQL, break the list's seal so that it would be rebuilt."""
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    other = await issued_certificate(client, world.issuer)  # a broken list takes no new certificates
    number = certificate["number"]
    list_id, index = await _slot(app, number)
    assert (await act(client, world.issuer, number, "revoke")).status_code == 200
    assert await _entry(client, list_id, index) == (0b10, 1, 0)

    await _tamper(app, number, tampering, index)
    await run_sql(app, LIST_SEALS[list_seal] + " WHERE list_id = :l", l=list_id)

    await _assert_unserved(client, list_id)  # never a list saying valid for the index the credential names
    assert await _result(client, certificate) == ("unknown", "status_tampered")  # the moved slot fails the seal

    # `registry migrate` (which seals lists kept from before seals, once) does not seal a rebuild that cannot place
    # a certificate: the list stays unserved.
    code, out, err = await run_registry("migrate", env=registry_env(database_url))
    assert code == UNSEALED_CERTIFICATES_EXIT, out + err  # it says what it could not seal
    assert number in out + err
    await _assert_unserved(client, list_id)

    # Nor does the next flip in the list.
    status_lists._unsealable.clear()  # migrate's rebuild ran in another process
    assert (await _slot(app, other["number"]))[0] == list_id
    assert (await act(client, world.issuer, other["number"], "revoke")).status_code == 200
    box = app.state.context.box
    assert not any(status_lists.seal_intact(box, row) for row in await _rows(app, list_id))
    await _assert_unserved(client, list_id)

    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url))
    assert code == 1, out + err
    assert f"certificate {number}: its status fields do not match their seal" in out + err


async def test_a_status_change_does_not_seal_a_moved_slot(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    """An active certificate's slot moved, then revoked by its body: the row is not sealed again (that would vouch
    for the slot someone else chose) and the bit cannot go where the credential looks, so the body's lists are
    withheld rather than served saying valid at the original index."""
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    list_id, index = await _slot(app, number)
    await _tamper(app, number, "index moved", index)
    assert await _result(client, certificate) == ("unknown", "status_tampered")

    assert (await act(client, world.issuer, number, "revoke")).status_code == 200
    row = await _row(app, number)
    assert row["status"] == "revoked"
    assert not signing.status_seal_intact(app.state.context.box, row["status_seal"], row)
    assert await _result(client, certificate) == ("unknown", "status_tampered")
    await _assert_unserved(client, list_id)


async def _v1_sealed(app: FastAPI, number: str) -> None:
    """The row as a registry before slot-bound seals left it: a version 1 seal over its status fields."""
    row = await _row(app, number)
    box = app.state.context.box
    fields = (row["id"], number, row["status"], row["revocation_reason"], row["superseded_by"])
    await run_sql(
        app,
        "UPDATE certificates SET status_seal = :s WHERE number = :n",
        s=box.seal(*fields, kind="certificate-status"),
        n=number,
    )


async def test_migrate_seals_version_1_rows_again_once_and_leaves_tampered_ones(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    world = await set_up(app, client)
    kept = await issued_certificate(client, world.issuer)
    revoked = await issued_certificate(client, world.issuer)
    moved = await issued_certificate(client, world.issuer)
    assert (await act(client, world.issuer, revoked["number"], "revoke")).status_code == 200
    for certificate in (kept, revoked, moved):
        await _v1_sealed(app, certificate["number"])
    _list_id, index = await _slot(app, moved["number"])
    await _tamper(app, moved["number"], "index moved", index)  # moved under a version 1 seal: not caught by it
    rolled_back = "UPDATE certificates SET status = 'active', revocation_reason = NULL WHERE number = :n"
    await run_sql(app, rolled_back, n=revoked["number"])
    # Before the pass a version 1 seal is not accepted: unknown, never valid.
    assert await _result(client, kept) == ("unknown", "status_tampered")

    code, out, err = await run_registry("migrate", env=registry_env(database_url))
    assert code == UNSEALED_CERTIFICATES_EXIT, out + err  # named, exit 6
    assert revoked["number"] in out + err
    assert await _result(client, kept) == ("valid", None)  # sealed again, under version 2
    assert await _result(client, revoked) == ("unknown", "status_tampered")  # its version 1 seal did not fit
    # Moved before the upgrade, the slot is sealed where it now is; the list still has the bits where they were,
    # and audit verify compares the two.
    async with transaction(app.state.sessions) as session:
        marked = (await session.execute(text("SELECT name FROM seal_upgrades ORDER BY name"))).scalars().all()
    assert list(marked) == [seal_upgrade.STATUS_SEAL_2, seal_upgrade.LIST_SEALS]

    # Done once: a version 1 seal written later (say, saved before the upgrade and written back) is never upgraded.
    await _v1_sealed(app, kept["number"])
    code, out, err = await run_registry("migrate", env=registry_env(database_url))
    assert code == 0, out + err
    assert await _result(client, kept) == ("unknown", "status_tampered")


async def test_the_reseal_pass_streams_in_chunks(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await set_up(app, client)
    certificates = [await issued_certificate(client, world.issuer) for _ in range(5)]
    for certificate in certificates:
        await _v1_sealed(app, certificate["number"])
    monkeypatch.setattr(seal_upgrade, "CHUNK", 2)
    found = await seal_upgrade.reseal_pass(app.state.sessions, app.state.context.box)
    assert (found.resealed, found.current, found.tampered) == (5, 0, [])
    again = await seal_upgrade.reseal_pass(app.state.sessions, app.state.context.box)
    assert (again.resealed, again.current) == (0, 5)
    for certificate in certificates:
        assert await _result(client, certificate) == ("valid", None)


async def _all_sealed_to_their_slots(app: FastAPI) -> int:
    box = app.state.context.box
    async with transaction(app.state.sessions) as session:
        stored = [row.model_dump() for row in (await session.execute(select(Certificate))).scalars()]
    for row in stored:
        assert row["status_list_id"] is not None
        assert row["status_index"] is not None
        assert signing.status_seal_intact(box, row["status_seal"], row), row["number"]
    return len(stored)


async def test_every_way_of_issuing_seals_the_slot(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    world = await set_up(app, client)
    single = await issued_certificate(client, world.issuer)
    response = await client.post(
        "/v1/certificate-batches",
        json={"certificates": batch_rows(3)},
        headers={**bearer(world.issuer), "Idempotency-Key": "slots"},
    )
    assert response.status_code == 201, response.text
    corrected = await client.post(
        f"/v1/certificates/{single['number']}/correct",
        json={"holder_name": "改正", "reason": "typo"},
        headers={**bearer(world.issuer), "Idempotency-Key": "corrected"},
    )
    assert corrected.status_code == 201, corrected.text
    folder = tmp_path / "import"
    folder.mkdir()
    path = folder / "rows.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(rows.CSV_COLUMNS)  # the import's columns, as the batch's
        holder_id = resident_id(sequence=7, birth="19900101")
        writer.writerow(["title", "ENG-AI", "intermediate", "导入", "resident_id", holder_id, "2026-05-01", "", "I-1"])
    code, out, err = await run_registry("import", str(path), "--issuer", CODE, env=registry_env(database_url))
    assert code == 0, out + err
    assert await _all_sealed_to_their_slots(app) == 1 + 3 + 1 + 1  # single, batch, correction, import


async def test_an_upgrade_from_before_list_seals_keeps_revoked_and_suspended_certificates_as_they_were(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    """A database of the release before: version 1 status seals, and lists with no seal yet. Their stored bits are what
    the registry served until now, so they confirm the slots: revoked stays revoked, suspended stays suspended (not
    unknown), and the lists are sealed and served."""
    world = await set_up(app, client)
    revoked = await issued_certificate(client, world.issuer)
    suspended = await issued_certificate(client, world.issuer)
    assert (await act(client, world.issuer, revoked["number"], "revoke")).status_code == 200
    assert (await act(client, world.issuer, suspended["number"], "suspend")).status_code == 200
    for certificate in (revoked, suspended):
        await _v1_sealed(app, certificate["number"])
    await run_sql(app, LIST_SEALS["cleared"])

    code, out, err = await run_registry("migrate", env=registry_env(database_url))
    assert code == 0, out + err
    assert (await _result(client, revoked))[0] == "revoked"
    assert (await _result(client, suspended))[0] == "suspended"
    list_id, index = await _slot(app, revoked["number"])
    assert await _entry(client, list_id, index) == (0b10, 1, 0)  # served again, sealed, with the bit where it was
