"""Slots and the sealed lists: what the version 1 → 2 re-seal pass will not vouch for, indexes whose bits a sealed list
still holds are never handed out again, a list whose rebuild cannot be sealed is not rebuilt at every flip, and two
starters running the re-seal pass at once run it once."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import FastAPI

from registry.certificates import seal_upgrade, status_lists
from tests.checks import run_sql
from tests.factories import issued_certificate
from tests.integration.lifecycle_support import act, set_up
from tests.integration.test_status_list_seal import _assert_unserved, _clear_bit, _entry, _rows, _slot
from tests.integration.test_status_slots import _result, _v1_sealed

MOVE = "UPDATE certificates SET status_index = :i WHERE number = :n"


def _draw_first(monkeypatch: pytest.MonkeyPatch, index: int) -> None:
    """The next draw of candidates starts with ``index`` (a database writer can force it by filling every other
    index with placeholder rows; by chance it happens as the list fills)."""
    real, drawn = status_lists.random_indexes, list[int]()

    def draw(size: int, count: int) -> list[int]:
        if drawn:
            return real(size, count)
        drawn.append(index)
        return [index, *real(size, count - 1)]

    monkeypatch.setattr(status_lists, "random_indexes", draw)


async def _upgrade(app: FastAPI) -> None:
    """The re-seal pass again, as `registry migrate` runs it on a database the previous release left."""
    await run_sql(app, "DELETE FROM seal_upgrades")
    await seal_upgrade.upgrade_seals(app.state.sessions, app.state.context.box)


@pytest.mark.parametrize("action", ["revoke", "suspend"])
async def test_the_upgrade_does_not_seal_a_slot_the_sealed_list_does_not_confirm(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, action: str
) -> None:
    """A certificate not active, moved before the upgrade (version 1 seals never covered the slot): its list's sealed
    bit is still where its credential looks, its row names an index without it. Left unsealed, named."""
    world = await set_up(app, client)
    victim = await issued_certificate(client, world.issuer)
    bystander = await issued_certificate(client, world.issuer)
    list_id, index = await _slot(app, victim["number"])
    assert (await act(client, world.issuer, victim["number"], action)).status_code == 200
    for certificate in (victim, bystander):
        await _v1_sealed(app, certificate["number"])
    await run_sql(app, MOVE, i=(index + 7777) % status_lists.LIST_SIZE, n=victim["number"])

    with caplog.at_level(logging.ERROR, logger="registry.certificates.seal_upgrade"):
        await _upgrade(app)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert errors[0].startswith("1 certificates"), errors
    assert victim["number"] in errors[0], errors
    assert await _result(client, victim) == ("unknown", "status_tampered")
    assert await _result(client, bystander) == ("valid", None)
    expected = (0b10, 1, 0) if action == "revoke" else (0b01, 0, 1)
    assert await _entry(client, list_id, index) == expected  # the list as sealed, still served


async def test_the_upgrade_does_not_seal_swapped_slots(app: FastAPI, client: httpx.AsyncClient) -> None:
    """An active and a revoked certificate swap slots before the upgrade: the active one sits on a revoked bit, the
    revoked one on a clear index. Neither is sealed again."""
    world = await set_up(app, client)
    active = await issued_certificate(client, world.issuer)
    revoked = await issued_certificate(client, world.issuer)
    assert (await act(client, world.issuer, revoked["number"], "revoke")).status_code == 200
    (_list, a), (_same, r) = await _slot(app, active["number"]), await _slot(app, revoked["number"])
    for certificate in (active, revoked):
        await _v1_sealed(app, certificate["number"])
    await run_sql(app, MOVE, i=(r + 7777) % status_lists.LIST_SIZE, n=revoked["number"])
    await run_sql(app, MOVE, i=r, n=active["number"])
    await run_sql(app, MOVE, i=a, n=revoked["number"])

    found = await seal_upgrade.reseal_pass(app.state.sessions, app.state.context.box)
    assert sorted(found.tampered) == sorted([active["number"], revoked["number"]])
    assert found.resealed == 0
    for certificate in (active, revoked):
        assert await _result(client, certificate) == ("unknown", "status_tampered")


async def test_moved_revoked_slot_reused(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reviewer's scenario: R revoked, moved off its slot with SQL (list seal untouched); the draw for a new
    certificate lands on R's old index. Its revocation bit is still set in the sealed list: never handed out."""
    world = await set_up(app, client)
    r = await issued_certificate(client, world.issuer)
    list_id, index = await _slot(app, r["number"])
    assert (await act(client, world.issuer, r["number"], "revoke")).status_code == 200
    await run_sql(app, MOVE, i=(index + 7777) % status_lists.LIST_SIZE, n=r["number"])
    _draw_first(monkeypatch, index)
    n = await issued_certificate(client, world.issuer)
    assert await _slot(app, n["number"]) != (list_id, index)
    assert (await act(client, world.issuer, n["number"], "suspend")).status_code == 200
    assert (await act(client, world.issuer, n["number"], "reinstate")).status_code == 200
    assert await _entry(client, list_id, index) == (0b10, 1, 0)


async def test_a_suspended_bit_is_never_handed_out_either(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await set_up(app, client)
    s = await issued_certificate(client, world.issuer)
    list_id, index = await _slot(app, s["number"])
    assert (await act(client, world.issuer, s["number"], "suspend")).status_code == 200
    await run_sql(app, "UPDATE certificates SET status_list_id = NULL WHERE number = :n", n=s["number"])
    _draw_first(monkeypatch, index)
    n = await issued_certificate(client, world.issuer)
    assert await _slot(app, n["number"]) != (list_id, index)


async def test_a_broken_list_takes_no_new_certificates(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    first = await issued_certificate(client, world.issuer)
    list_id, index = await _slot(app, first["number"])
    assert (await act(client, world.issuer, first["number"], "revoke")).status_code == 200
    await _clear_bit(app, list_id, index)
    later = await issued_certificate(client, world.issuer)
    new_list, _index = await _slot(app, later["number"])
    assert new_list != list_id  # a new pair, sealed and served
    box = app.state.context.box
    assert all(status_lists.seal_intact(box, row) for row in await _rows(app, new_list))
    await _assert_unserved(client, list_id, ("revocation",))


async def test_a_list_whose_rebuild_cannot_be_sealed_is_not_rebuilt_at_every_flip(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await set_up(app, client)
    bad, one, two, three = [await issued_certificate(client, world.issuer) for _ in range(4)]
    list_id, _index = await _slot(app, one["number"])
    await run_sql(app, "UPDATE certificates SET status_seal = 'ab' WHERE number = :n", n=bad["number"])
    await run_sql(app, "UPDATE status_lists SET seal = 'ab' WHERE list_id = :l", l=list_id)
    status_lists._unsealable.clear()
    calls: list[str] = []
    real = status_lists.rebuild

    async def counted(*args: object, **kwargs: object) -> status_lists.Rebuilt:
        calls.append(str(kwargs["list_id"]))
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(status_lists, "rebuild", counted)
    assert (await act(client, world.issuer, one["number"], "revoke")).status_code == 200
    assert (await act(client, world.issuer, two["number"], "suspend")).status_code == 200
    assert calls == [list_id]  # one rebuild (not sealed: `bad` fails its seal); the second flip set its bit only
    revocation, suspension = await _rows(app, list_id)
    assert status_lists.bit(bytes(revocation.bits), (await _slot(app, one["number"]))[1])
    assert status_lists.bit(bytes(suspension.bits), (await _slot(app, two["number"]))[1])
    await _assert_unserved(client, list_id)
    # A reinstate in between clears its bit in the stored bits, and the list stays unsealed.
    assert (await act(client, world.issuer, two["number"], "reinstate")).status_code == 200
    await _assert_unserved(client, list_id)
    assert calls == [list_id]
    # After the interval, the next flip rebuilds again.
    status_lists._unsealable[list_id] -= status_lists.REBUILD_RETRY
    assert (await act(client, world.issuer, three["number"], "suspend")).status_code == 200
    assert len(calls) == 2


async def test_two_starters_run_the_pass_once(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite: one writer at a time")
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    await _v1_sealed(app, certificate["number"])
    await run_sql(app, "DELETE FROM seal_upgrades")
    passes: list[int] = []
    real = seal_upgrade.reseal_pass

    async def counted(*args: object, **kwargs: object) -> seal_upgrade.Resealed:
        passes.append(1)
        await asyncio.sleep(0.2)  # both starters past their first look-up
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(seal_upgrade, "reseal_pass", counted)
    box = app.state.context.box
    await asyncio.gather(*(seal_upgrade.upgrade_seals(app.state.sessions, box) for _ in range(2)))
    assert passes == [1]
    assert await _result(client, certificate) == ("valid", None)
