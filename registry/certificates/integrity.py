"""Checking what the status seals cannot: that each certificate's status is the one its history ends in, and that each
status list says what its certificates' statuses say. ``registry audit verify`` runs it.

A status seal binds a certificate's status fields to each other, not to time: a row saved while active and written back
after a revocation still carries a matching seal. The revocation stays in the status history (``certificate_events``),
in the hash-chained audit log and in the transparency log (a Merkle tree whose heads are published), so a status that
disagrees with where any of them ends is a rollback. None of the three is keyed, so an entry can be appended to each
(a 'reinstated' after the revocation): each history is replayed through the lifecycle's transitions and the three must
hold the same status changes in the same order (``histories``). Certificates are read a chunk at a time (keyset by id),
with their events and transparency leaves looked up per chunk through the indexes on certificate_id and number; the
audit log, which has no index on the certificate number, is read once in id order, keeping the status-change actions
of the certificates changed (one short name per status change, none per issuance). Messages name certificate numbers
and list ids, never anything personal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk
from registry.audit.models import AuditRecord
from registry.certificates import histories, signing, status_lists
from registry.certificates.models import Certificate, CertificateEvent, Status, StatusList
from registry.certificates.status_lists import Purpose
from registry.errors import IllegalHistory
from registry.keys.secrets_box import SecretsBox
from registry.transparency.models import TransparencyLeaf

CHUNK = 5000
# The status each entry of a certificate's history leaves it in.
EVENT_STATUS: dict[str, Status] = {
    "issued": Status.active,
    "suspended": Status.suspended,
    "reinstated": Status.active,
    "revoked": Status.revoked,
    "superseded": Status.superseded,
}
AUDIT_STATUS: dict[str, Status] = {f"certificate.{event}": status for event, status in EVENT_STATUS.items()}
_STATUS_CHANGES = [action for action, status in AUDIT_STATUS.items() if action != "certificate.issued"]
_AUDIT_EVENT = {action: action.removeprefix("certificate.") for action in _STATUS_CHANGES}


@dataclass(frozen=True, slots=True)
class StatusBreak:
    """The first certificate or status list whose status does not check out, said in a sentence."""

    message: str

    def describe(self) -> str:
        return self.message


async def first_status_break(session: AsyncSession, box: SecretsBox) -> StatusBreak | None:
    """The first certificate whose status fields break their seal or disagree with its history, else the first status
    list that disagrees with its certificates; None when everything agrees."""
    audited = await _audited_histories(session)
    postgres = bulk.is_postgres(session)
    after: uuid.UUID | None = None
    while True:
        # What the status seal covers, the slot among it: a slot moved with SQL fails it.
        query = select(*status_lists.SEALED_COLUMNS).order_by(col(Certificate.id))
        if after is not None:
            query = query.where(col(Certificate.id) > after)
        rows = [cast(dict[str, Any], dict(row)) for row in (await session.execute(query.limit(CHUNK))).mappings()]
        if not rows:
            break
        events = await _event_histories(session, [row["id"] for row in rows], postgres=postgres)
        leaves = await _leaf_histories(session, [row["number"] for row in rows], postgres=postgres)
        for row in rows:
            problem = _disagreement(box, row, events.get(row["id"], []), leaves.get(row["number"], []), audited)
            if problem is not None:
                return StatusBreak(problem)
        after = rows[-1]["id"]
    return await first_list_break(session, box)


def _disagreement(
    box: SecretsBox, row: dict[str, Any], events: list[str], leaves: list[str], audited: dict[str, list[str]]
) -> str | None:
    """What is wrong with one certificate's status: a broken seal, a history the lifecycle cannot have written, a
    history ending elsewhere than its status, or histories that differ in their status changes."""
    number, status = row["number"], row["status"]
    if not signing.status_seal_intact(box, row["status_seal"], row):
        return f"certificate {number}: its status fields do not match their seal"
    sources = (
        ("its status history (certificate_events)", events, True),
        ("the transparency log", leaves, True),
        ("the audit log", audited.get(number, []), False),
    )
    for source, history, from_issuance in sources:
        if from_issuance and not history:
            return f"certificate {number}: is {status}, but {source} has no entry for it"
        try:
            expected = histories.replay(history, begins_with_issuance=from_issuance)
        except IllegalHistory as illegal:
            return f"certificate {number}: {source} {illegal}"
        if expected != status:
            return f"certificate {number}: is {status}, but {source} says {expected.value} (status rolled back?)"
    changes = [(source, history[1:] if from_issuance else history) for source, history, from_issuance in sources]
    differs = histories.first_disagreement(changes)
    return None if differs is None else f"certificate {number}: {differs}"


async def _event_histories(
    session: AsyncSession, ids: Sequence[uuid.UUID], *, postgres: bool
) -> dict[uuid.UUID, list[str]]:
    """Each certificate's events, oldest first. In id order, not time: a certificate's changes are made one at a time
    under its row lock, so ids follow them even across clocks."""
    event = CertificateEvent
    found: dict[uuid.UUID, list[str]] = {}
    column = bulk.table_of(event).c.certificate_id
    for chunk in bulk.lookup_chunks(ids, postgres=postgres):
        rows = await session.execute(
            select(column, col(event.event))
            .where(bulk.one_of(column, chunk, postgres=postgres, element=column.type))
            .order_by(column, col(event.id))
        )
        for certificate_id, name in rows:
            found.setdefault(certificate_id, []).append(name)
    return found


async def _leaf_histories(session: AsyncSession, numbers: Sequence[str], *, postgres: bool) -> dict[str, list[str]]:
    """Each certificate's transparency leaves as history entries, in log order."""
    leaf = TransparencyLeaf
    found: dict[str, list[str]] = {}
    for chunk in bulk.lookup_chunks(numbers, postgres=postgres):
        rows = await session.execute(
            select(col(leaf.number), col(leaf.data))
            .where(bulk.one_of(col(leaf.number), chunk, postgres=postgres))
            .order_by(col(leaf.leaf_index))
        )
        for number, data in rows:
            found.setdefault(number, []).append(_leaf_entry(bytes(data)))
    return found


def _leaf_entry(data: bytes) -> str:
    try:
        body = json.loads(data)
        return histories.leaf_entry(str(body["event"]), str(body["status"]), EVENT_STATUS)
    except (ValueError, KeyError, TypeError):
        return "an unreadable leaf"


async def _audited_histories(session: AsyncSession) -> dict[str, list[str]]:
    """Each changed certificate's status changes as the audit log records them, oldest first (by number; issuance
    records are not read, so this holds one entry per status change, not per certificate)."""
    found: dict[str, list[str]] = {}
    after = 0
    while True:
        rows = (
            await session.execute(
                select(col(AuditRecord.id), col(AuditRecord.object_id), col(AuditRecord.action))
                .where(col(AuditRecord.action).in_(_STATUS_CHANGES), col(AuditRecord.id) > after)
                .where(col(AuditRecord.object_type) == "certificate")
                .order_by(col(AuditRecord.id))
                .limit(CHUNK)
            )
        ).all()
        for _record_id, number, action in rows:
            found.setdefault(number, []).append(_AUDIT_EVENT[action])
        if len(rows) < CHUNK:
            return found
        after = int(rows[-1][0] or 0)


async def first_list_break(session: AsyncSession, box: SecretsBox) -> StatusBreak | None:
    """The first status list whose seal is missing or broken or whose bits differ from its certificates' statuses
    (lists kept from before seals were sealed by ``registry migrate``: one without a seal is a broken one)."""
    after, rebuilt = 0, ("", dict[Purpose, bytes]())  # a pair's rows are made together: one rebuild serves both
    while True:
        rows = (
            (
                await session.execute(
                    select(StatusList).where(col(StatusList.id) > after).order_by(col(StatusList.id)).limit(100)
                )
            )
            .scalars()
            .all()
        )
        for row in rows:
            name = f"status list {row.list_id}-{row.purpose}"
            if row.seal is None:
                return StatusBreak(f"{name}: it has no seal (not served)")
            if not status_lists.seal_intact(box, row):
                return StatusBreak(f"{name}: its bits do not match their seal (not served)")
            if rebuilt[0] != row.list_id:
                rebuilt = (row.list_id, await status_lists.rebuilt_bits(session, box, list_id=row.list_id))
            expected = rebuilt[1][Purpose(row.purpose)]
            if bytes(row.bits) != expected:
                return StatusBreak(f"{name}: {_first_difference(bytes(row.bits), expected)}")
        if not rows:
            return None
        after = rows[-1].id or 0


def _first_difference(stored: bytes, expected: bytes) -> str:
    if len(stored) != len(expected):
        return f"holds {len(stored) * 8} bits, not {len(expected) * 8}"
    pairs = enumerate(zip(stored, expected, strict=True))
    index = next(i * 8 + 8 - (a ^ b).bit_length() for i, (a, b) in pairs if a != b)  # the first bit that differs
    said = "set" if status_lists.bit(stored, index) else "clear"
    return f"bit {index} is {said}, but its certificate's status says otherwise"
