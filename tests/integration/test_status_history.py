"""`registry audit verify` replays each certificate's whole status history through the lifecycle's transitions, and
requires its three records of it (certificate_events, the audit log, the transparency log) to hold the same status
changes in the same order: a forged entry appended to all three, after a revocation, is named, and so is an entry
deleted from one of them, not only a last entry that disagrees with the status."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.audit import service as audit
from registry.certificates import histories, journal
from registry.certificates.models import CertificateEvent, Status
from registry.db import transaction, utcnow
from registry.errors import IllegalHistory
from registry.transparency import service as transparency
from registry.transparency.models import LeafKind
from tests.checks import run_sql
from tests.factories import bearer, issued_certificate
from tests.integration.lifecycle_support import CODE, act, set_up
from tests.integration.test_status_rollback import _audit_verify, _issued_and_saved, _roll_back


async def _list_rows(app: FastAPI, list_id: str) -> list[dict[str, Any]]:
    async with transaction(app.state.sessions) as session:
        rows = await session.execute(
            text("SELECT id, bits, seal, size FROM status_lists WHERE list_id = :l"), {"l": list_id}
        )
        return [dict(row._mapping) for row in rows]


async def _forge_reinstatement(app: FastAPI, number: str, lists: list[dict[str, Any]]) -> None:
    """What someone with write access to the database and no master key can do: write back the list rows saved while
    the certificate was active, and append a 'reinstated' entry to each history (none of them is keyed)."""
    async with transaction(app.state.sessions) as session:
        for row in lists:
            await session.execute(
                text("UPDATE status_lists SET bits = :b, seal = :s, size = :z WHERE id = :i"),
                {"b": row["bits"], "s": row["seal"], "z": row["size"], "i": row["id"]},
            )
        found = (
            await session.execute(text("SELECT id, signature FROM certificates WHERE number = :n"), {"n": number})
        ).one()
        certificate_id = found[0] if isinstance(found[0], uuid.UUID) else uuid.UUID(str(found[0]))
        at = utcnow()
        session.add(CertificateEvent(certificate_id=certificate_id, at=at, event="reinstated", reason="x", actor="x"))
        entry = audit.Entry(
            action="certificate.reinstated",
            object_type="certificate",
            object_id=number,
            purpose="status change",
            details={"from": "revoked", "to": "active"},
        )
        leaf = transparency.Entry(
            kind=LeafKind.status_change,
            number=number,
            at=at,
            event="reinstated",
            status="active",
            issuer=CODE,
            signature=found[1],
        )
        await journal.record(session, actor=audit.Actor("client:x"), events=[journal.Event(entry, leaf)])


async def _delete_events(app: FastAPI, number: str, event: str, *, count: int) -> None:
    """The first ``count`` events named ``event`` of a certificate, deleted."""
    await run_sql(
        app,
        "DELETE FROM certificate_events WHERE id IN (SELECT id FROM certificate_events WHERE event = :e AND "
        "certificate_id = (SELECT id FROM certificates WHERE number = :n) ORDER BY id LIMIT :c)",
        e=event,
        n=number,
        c=count,
    )


async def test_a_forged_reinstatement_after_a_revocation_is_named(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    world, id_number, certificate, saved = await _issued_and_saved(app, client)
    number = certificate["number"]
    lists = await _list_rows(app, saved["status_list_id"])
    assert (await act(client, world.issuer, number, "revoke")).status_code == 200
    await _roll_back(app, number, saved)
    await _forge_reinstatement(app, number, lists)
    verification = (await client.get(f"/v1/verify/{certificate['qr_token']}")).json()
    assert verification["result"] == "valid"  # every seal and every last entry agree: only the history's order tells

    code, out = await _audit_verify(database_url)

    assert code == 1, out
    assert f"certificate {number}: its status history (certificate_events) has reinstated after revoked" in out
    assert id_number not in out


async def test_legitimate_histories_pass(app: FastAPI, client: httpx.AsyncClient, database_url: str) -> None:
    world = await set_up(app, client)
    revoked, corrected, suspended = [await issued_certificate(client, world.issuer) for _ in range(3)]
    for action in ("suspend", "reinstate", "suspend", "reinstate", "suspend", "reinstate", "suspend", "revoke"):
        assert (await act(client, world.issuer, revoked["number"], action)).status_code == 200
    for action in ("suspend", "reinstate"):
        assert (await act(client, world.issuer, corrected["number"], action)).status_code == 200
    answer = await client.post(
        f"/v1/certificates/{corrected['number']}/correct",
        json={"reason": "wrong level", "level": "senior"},
        headers=bearer(world.issuer),
    )
    assert answer.status_code == 201, answer.text
    successor = answer.json()["number"]
    for number, action in ((successor, "suspend"), (suspended["number"], "suspend"), (successor, "revoke")):
        assert (await act(client, world.issuer, number, action)).status_code == 200

    code, out = await _audit_verify(database_url)

    assert code == 0, out
    assert "certificate statuses agree with their history and status lists" in out


async def test_a_deleted_middle_event_is_named(app: FastAPI, client: httpx.AsyncClient, database_url: str) -> None:
    world = await set_up(app, client)
    number = (await issued_certificate(client, world.issuer))["number"]
    for action in ("suspend", "revoke"):
        assert (await act(client, world.issuer, number, action)).status_code == 200
    await _delete_events(app, number, "suspended", count=1)  # issued, revoked: legal, and ends in the status

    code, out = await _audit_verify(database_url)

    assert code == 1, out
    assert (
        f"certificate {number}: its status history (certificate_events) has 1 status change, "
        "but the transparency log has 2"
    ) in out


async def test_a_deleted_suspension_and_reinstatement_are_named(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    world = await set_up(app, client)
    number = (await issued_certificate(client, world.issuer))["number"]
    for action in ("suspend", "reinstate", "suspend", "reinstate"):
        assert (await act(client, world.issuer, number, action)).status_code == 200
    await _delete_events(app, number, "suspended", count=1)
    await _delete_events(app, number, "reinstated", count=1)

    code, out = await _audit_verify(database_url)

    assert code == 1, out
    assert (
        f"certificate {number}: its status history (certificate_events) has 2 status changes, "
        "but the transparency log has 4"
    ) in out


@pytest.mark.parametrize(
    ("history", "status"),
    [
        (["issued"], Status.active),
        (["issued", "suspended", "reinstated", "suspended", "reinstated"], Status.active),
        (["issued", "suspended", "revoked"], Status.revoked),
        (["issued", "superseded"], Status.superseded),
    ],
)
def test_a_legal_history_replays_to_its_status(history: list[str], status: Status) -> None:
    assert histories.replay(history) is status


@pytest.mark.parametrize(
    ("history", "problem"),
    [
        (["issued", "revoked", "reinstated"], "has reinstated after revoked"),
        (["issued", "superseded", "suspended"], "has suspended after superseded"),
        (["issued", "reinstated"], "has reinstated after active"),
        (["issued", "suspended", "superseded"], "has superseded after suspended"),
        (["issued", "issued"], "has issued after active"),
        (["suspended"], "begins with suspended, not with its issuance"),
        (["issued", "restored"], "has an unknown entry 'restored'"),
    ],
)
def test_an_illegal_history_is_named(history: list[str], problem: str) -> None:
    with pytest.raises(IllegalHistory, match=problem):
        histories.replay(history)


def test_histories_that_differ_in_order_are_named() -> None:
    differs = histories.first_disagreement(
        [("a", ["suspended", "reinstated"]), ("b", ["suspended", "reinstated"]), ("c", ["reinstated", "suspended"])]
    )
    assert differs == "status change 1 is suspended in a, but reinstated in c"
