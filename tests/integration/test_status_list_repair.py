"""`registry status-lists check` and `repair`: an operator finds the withheld status lists and repairs them, as a
status change in them would (rebuilt from the certificates' sealed statuses, sealed only when every certificate of the
body checks out), with an audit record; and a bit no certificate proves wrong (its certificate row deleted) is never
cleared, by a repair or by a status change's rebuild."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from registry.certificates import status_lists
from registry.config import Settings
from registry.db import transaction
from tests.checks import run_sql
from tests.factories import issued_certificate
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.lifecycle_support import CODE, act
from tests.integration.test_status_list_seal import _assert_unserved, _clear_bit, _entry, _revoked, _rows, _slot

REPAIRED = "status_list.repaired"


def _env(settings: Settings) -> dict[str, str]:
    """The command's environment, in English whatever the machine's locale (the lines asserted are English)."""
    return {**registry_env(settings.database_url), "LC_ALL": "C"}


async def _repair_records(app: FastAPI) -> list[tuple[str, str]]:
    async with transaction(app.state.sessions) as session:
        rows = await session.execute(
            text("SELECT object_id, actor FROM audit_log WHERE action = :a ORDER BY id"), {"a": REPAIRED}
        )
        return [(str(row[0]), str(row[1])) for row in rows]


async def _delete_certificate(app: FastAPI, number: str) -> None:
    """What someone with write access to the database does to make a revoked certificate disappear: delete its row
    (and the rows that point at it; on PostgreSQL, past the trigger that refuses it, as the tables' owner can)."""
    if app.state.engine.dialect.name == "postgresql":
        await run_sql(app, "ALTER TABLE certificates DISABLE TRIGGER certificates_never_deleted")
    for table in ("certificate_events", "share_links", "verification_visits"):
        await run_sql(
            app,
            f"DELETE FROM {table} WHERE certificate_id IN (SELECT id FROM certificates WHERE number = :n)",  # noqa: S608
            n=number,
        )
    await run_sql(app, "DELETE FROM certificates WHERE number = :n", n=number)


async def test_check_names_a_withheld_list_and_repair_seals_it_once(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    _world, _number, list_id, index = await _revoked(app, client)
    await _clear_bit(app, list_id, index)
    await _assert_unserved(client, list_id, ("revocation",))
    env = _env(settings)

    code, out, err = await run_registry("status-lists", "check", "--issuer", CODE, env=env)
    assert code == 1, (out, err)
    assert f"{CODE} {list_id}: WITHHELD (seal fails: revocation); 1 of 131072 slots held" in out

    code, out, err = await run_registry("status-lists", "repair", "--issuer", CODE, "--yes", env=env)
    assert code == 0, (out, err)
    assert f"{list_id}: repaired, rebuilt from its certificates and sealed (revocation)" in out
    box = app.state.context.box
    assert all(status_lists.seal_intact(box, row) for row in await _rows(app, list_id))
    assert await _entry(client, list_id, index) == (0b10, 1, 0)  # served again, the cleared bit put back
    assert await _repair_records(app) == [(list_id, "cli")]

    code, out, err = await run_registry("status-lists", "check", env=env)  # every body
    assert (code, out.splitlines()[-1]) == (0, "1 lists: 0 withheld, 0 with bits set at slots no certificate holds")
    code, out, err = await run_registry("status-lists", "repair", "--yes", env=env)
    assert code == 0, (out, err)
    assert "nothing to repair" in out
    assert await _repair_records(app) == [(list_id, "cli")]  # a good list is left as it is, and not audited again
    code, out, err = await run_registry("audit", "verify", env=env)
    assert code == 0, (out, err)  # the chain holds the repair's record, and the list agrees with its certificates


async def test_repair_refuses_a_list_whose_certificates_fail_their_seals_and_names_them(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    _world, number, list_id, index = await _revoked(app, client)
    await _clear_bit(app, list_id, index)
    # Said active with SQL: without the master key its status seal cannot follow, so it fails.
    await run_sql(
        app, "UPDATE certificates SET status = 'active', revocation_reason = NULL WHERE number = :n", n=number
    )
    env = _env(settings)

    code, out, err = await run_registry("status-lists", "check", "--issuer", CODE, env=env)
    assert code == 1, (out, err)
    assert f"certificates whose status seals fail: {number}" in out

    code, out, err = await run_registry("status-lists", "repair", "--issuer", CODE, "--yes", env=env)
    assert code == 1, (out, err)
    assert f"{list_id}: NOT repaired: 1 certificates of its body fail their status seals: {number}." in out
    assert "Restore them from a backup" in out
    assert not status_lists.seal_intact(app.state.context.box, (await _rows(app, list_id))[0])
    await _assert_unserved(client, list_id, ("revocation",))
    assert await _repair_records(app) == []


async def test_an_unknown_body_is_named_and_nothing_is_read(app: FastAPI, settings: Settings) -> None:
    code, out, err = await run_registry("status-lists", "check", "--issuer", "NO-SUCH-BODY", env=_env(settings))
    assert (code, out) == (2, "")
    assert "no evaluation body NO-SUCH-BODY" in err


async def test_repair_keeps_the_bit_of_a_deleted_certificate(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    world, number, list_id, index = await _revoked(app, client)
    await issued_certificate(client, world.issuer)  # the list keeps a certificate
    await _delete_certificate(app, number)
    await run_sql(app, "UPDATE status_lists SET seal = 'forged' WHERE list_id = :l", l=list_id)
    env = _env(settings)

    code, out, err = await run_registry("status-lists", "repair", "--issuer", CODE, "--yes", env=env)
    assert code == 3, (out, err)
    assert f"bits set at 1 slots no certificate holds: {index}" in out
    assert f"{list_id}: repaired, rebuilt from its certificates and sealed (revocation, suspension); 1 bits" in out
    revocation, suspension = await _rows(app, list_id)
    assert status_lists.bit(bytes(revocation.bits), index)  # kept: no certificate proves it may be cleared
    assert not status_lists.bit(bytes(suspension.bits), index)
    assert (await _entry(client, list_id, index))[1] == 1

    code, out, err = await run_registry("status-lists", "check", "--issuer", CODE, env=env)
    assert code == 3, (out, err)
    assert f"{CODE} {list_id}: sealed; 1 of 131072 slots held" in out


async def test_a_status_change_rebuilding_its_list_keeps_the_bit_of_a_deleted_certificate(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world, number, list_id, index = await _revoked(app, client)
    other = await issued_certificate(client, world.issuer)
    assert (await _slot(app, other["number"]))[0] == list_id
    await _delete_certificate(app, number)
    await run_sql(app, "UPDATE status_lists SET seal = 'forged' WHERE list_id = :l", l=list_id)

    assert (await act(client, world.issuer, other["number"], "suspend")).status_code == 200  # rebuilds, seals
    assert all(status_lists.seal_intact(app.state.context.box, row) for row in await _rows(app, list_id))
    assert await _entry(client, list_id, index) == (0b10, 1, 0)  # still revoked as served, not cleared
