"""Seals brought up to date once, by ``registry migrate`` (which holds the master key the migrations do not).

- ``certificate-status-2`` (migration 0019): every certificate whose version 1 status seal (status fields only) is
  intact is sealed again under version 2, which binds its status-list slot too. A row whose version 1 seal does not
  check out is left as it is: it was tampered with, and stays 'unknown' (status_tampered). Streamed by id a chunk at a
  time, each chunk's UPDATEs in one statement batch and its own transaction, each row's UPDATE conditional on the seal
  it replaces (a row changed meanwhile is left to its changer). Run again after an interruption, it skips what is done.
  Version 1 never covered the slot, so a slot is taken as it stands only where the list's sealed bits agree: a row
  not active whose bit (revocation, or suspension when suspended) is not set at its slot in an intact list, or an
  active one whose slot has either bit set, is left unsealed (read as tampered) and named. An active certificate
  moved to a free index before the upgrade cannot be told apart: its slot is trusted as it stands (README).
- ``status-list-seals`` (migration 0018): lists kept from before list seals are rebuilt from their certificates and
  sealed (``status_lists.seal_legacy_lists``), after the certificates' seals bind their slots.

Each pass done is a row of ``seal_upgrades``, so later starts skip it with one look-up; on PostgreSQL the passes run
under the advisory lock ``registry.migrate`` takes, so that two starters at once run each pass once. After that a list
without a seal is a broken one: it is never sealed by ``registry migrate`` again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from registry import bulk
from registry.certificates import signing, status_lists
from registry.certificates.models import Certificate, Status, StatusList
from registry.db import UTCDateTime, transaction, utcnow
from registry.keys.secrets_box import SecretsBox
from registry.migrate import MIGRATE_LOCK

log = logging.getLogger(__name__)

STATUS_SEAL_2 = "certificate-status-2"
LIST_SEALS = "status-list-seals"
CHUNK = 5000
SEAL_UPGRADES = sa.table("seal_upgrades", sa.column("name", sa.String(64)), sa.column("done_at", UTCDateTime()))
_COLUMNS = (
    col(Certificate.id),
    col(Certificate.number),
    col(Certificate.status),
    col(Certificate.revocation_reason),
    col(Certificate.superseded_by),
    col(Certificate.status_list_id),
    col(Certificate.status_index),
    col(Certificate.status_seal),
)
_table = bulk.table_of(Certificate)
_RESEAL = (
    update(_table)
    .where(_table.c.id == bindparam("b_id"), _table.c.status_seal == bindparam("b_old"))
    .values(status_seal=bindparam("b_new"))
)


@dataclass(frozen=True, slots=True)
class Resealed:
    """What a re-seal pass found: rows sealed again, rows already under version 2, rows whose seal fits neither."""

    resealed: int
    current: int
    tampered: list[str]  # certificate numbers
    seconds: float


async def upgrade_seals(sessions: async_sessionmaker[AsyncSession], box: SecretsBox) -> list[str]:
    """Every pass not yet done, in order; on PostgreSQL one starter at a time (the lock held on a connection of its
    own, in a transaction that does nothing else). Returns the numbers of the certificates this run found whose seal
    fits neither version and left unsealed (read as tampered, verified as 'unknown'): ``registry migrate`` says so and
    exits non-zero, ``registry serve`` serves on (those certificates answer 'unknown', the safe answer)."""
    if not (await _pending(sessions, STATUS_SEAL_2) or await _pending(sessions, LIST_SEALS)):
        return []
    async with transaction(sessions) as guard:
        if bulk.is_postgres(guard):
            # Another starter's passes may outlast the migrations' lock bound: waiting for them here holds no lock a
            # reader needs, and this transaction does nothing else (as registry.migrate's own turn-taking).
            await guard.execute(text("SET LOCAL lock_timeout = 0"))
            await guard.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK})
        return await _upgrade(sessions, box)


async def _upgrade(sessions: async_sessionmaker[AsyncSession], box: SecretsBox) -> list[str]:
    tampered: list[str] = []
    if await _pending(sessions, STATUS_SEAL_2):
        found = await reseal_pass(sessions, box)
        rate = found.resealed / found.seconds if found.seconds else 0.0
        log.info(
            "status seals bound to their slots: %d sealed again, %d already, %.1f s (%.0f rows/s)",
            found.resealed,
            found.current,
            found.seconds,
            rate,
        )
        if found.tampered:
            log.error(
                "%d certificates do not match their status seal, or their status list's sealed bits at their slot, "
                "and were not sealed again (read as tampered): %s",
                len(found.tampered),
                ", ".join(found.tampered[:20]),
            )
        tampered = found.tampered
        await _mark_done(sessions, STATUS_SEAL_2)
    if await _pending(sessions, LIST_SEALS):
        async with transaction(sessions) as session:
            await status_lists.seal_legacy_lists(session, box)
            await _done(session, LIST_SEALS)
    return tampered


async def reseal_pass(sessions: async_sessionmaker[AsyncSession], box: SecretsBox) -> Resealed:
    """Seal again under version 2 every certificate whose version 1 seal is intact."""
    started, after = time.perf_counter(), None
    resealed = current = 0
    tampered: list[str] = []
    while True:
        async with transaction(sessions) as session:
            query = select(*_COLUMNS).order_by(col(Certificate.id)).limit(CHUNK)
            if after is not None:
                query = query.where(col(Certificate.id) > after)
            rows = (await session.execute(query)).mappings().all()
            before = len(tampered)
            changes = _changes(box, rows, await _list_bits(session, box, rows), tampered)
            current += len(rows) - len(changes) - (len(tampered) - before)
            if changes:
                await session.execute(_RESEAL, changes)
            resealed += len(changes)
        if len(rows) < CHUNK:
            return Resealed(resealed, current, tampered, time.perf_counter() - started)
        after = rows[-1]["id"]


async def _list_bits(session: AsyncSession, box: SecretsBox, rows: Any) -> dict[str, tuple[bytes, bytes]]:
    """The (revocation, suspension) bits of each list the chunk's rows name, for lists both of whose seals hold — or
    that carry none yet: kept from before list seals (migration 0018), whose stored bits are what the registry served
    and signed until now, as trustworthy as the version 1 seals being replaced (this pass runs before they are
    sealed). Refusing them would leave every revoked or suspended certificate of an older database unknown."""
    names = {row["status_list_id"] for row in rows if row["status_list_id"] is not None}
    found: dict[str, dict[str, bytes]] = {}
    if names:
        query = select(StatusList).where(col(StatusList.list_id).in_(sorted(names)))
        for item in (await session.execute(query)).scalars():
            if item.seal is None or status_lists.seal_intact(box, item):
                found.setdefault(item.list_id, {})[item.purpose] = bytes(item.bits)
    revocation, suspension = status_lists.Purpose.revocation, status_lists.Purpose.suspension
    return {name: (bits[revocation], bits[suspension]) for name, bits in found.items() if len(bits) == 2}


def _slot_agrees(row: Any, lists: dict[str, tuple[bytes, bytes]]) -> bool:
    """Whether the slot a version 1 row names can be taken as it stands: an active row's unless its intact list has a
    bit set there; any other status's only where its intact list has that status's bit set."""
    bits, index = lists.get(row["status_list_id"] or ""), row["status_index"]
    active = bool(row["status"] == Status.active)
    if bits is None or index is None or not 0 <= index < len(bits[0]) * 8:
        return active
    held = (status_lists.bit(bits[0], index), status_lists.bit(bits[1], index))
    if active:
        return held == (False, False)
    wanted = status_lists.STATUS_BITS.get(Status(row["status"])) if row["status"] in set(Status) else None
    return wanted is not None and all(held[i] for i in (0, 1) if wanted[i])


def _changes(
    box: SecretsBox, rows: Any, lists: dict[str, tuple[bytes, bytes]], tampered: list[str]
) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    for row in rows:
        seal = row["status_seal"]
        if signing.status_seal_intact(box, seal, row):
            continue
        if not signing.legacy_status_seal_intact(box, seal, row) or not _slot_agrees(row, lists):
            tampered.append(row["number"])
            continue
        new = signing.status_seal(
            box,
            certificate_id=row["id"],
            number=row["number"],
            status=row["status"],
            revocation_reason=row["revocation_reason"],
            superseded_by=row["superseded_by"],
            status_list_id=row["status_list_id"],
            status_index=row["status_index"],
        )
        changes.append({"b_id": row["id"], "b_old": seal, "b_new": new})
    return changes


async def _pending(sessions: async_sessionmaker[AsyncSession], name: str) -> bool:
    async with transaction(sessions) as session:
        found = await session.execute(select(SEAL_UPGRADES.c.name).where(SEAL_UPGRADES.c.name == name))
        return found.first() is None


async def _mark_done(sessions: async_sessionmaker[AsyncSession], name: str) -> None:
    async with transaction(sessions) as session:
        await _done(session, name)


async def _done(session: AsyncSession, name: str) -> None:
    """Marked once, whoever gets there first (ON CONFLICT DO NOTHING on both dialects)."""
    insert = postgres_insert if bulk.is_postgres(session) else sqlite_insert
    await session.execute(
        insert(SEAL_UPGRADES).values(name=name, done_at=utcnow()).on_conflict_do_nothing(index_elements=["name"])
    )
