"""Seals brought up to date once, by ``registry migrate`` (which holds the master key the migrations do not).

- ``certificate-status-2`` (migration 0019): every certificate whose version 1 status seal (status fields only) is
  intact is sealed again under version 2, which binds its status-list slot too. A row whose version 1 seal does not
  check out is left as it is: it was tampered with, and stays 'unknown' (status_tampered). Streamed by id a chunk at a
  time, each chunk's UPDATEs in one statement batch and its own transaction, each row's UPDATE conditional on the seal
  it replaces (a row changed meanwhile is left to its changer). Run again after an interruption, it skips what is done.
- ``status-list-seals`` (migration 0018): lists kept from before list seals are rebuilt from their certificates and
  sealed (``status_lists.seal_legacy_lists``), after the certificates' seals bind their slots.

Each pass done is a row of ``seal_upgrades``, so later starts skip it with one look-up. After that a list without a
seal is a broken one: it is never sealed by ``registry migrate`` again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from registry import bulk
from registry.certificates import signing, status_lists
from registry.certificates.models import Certificate
from registry.db import UTCDateTime, transaction, utcnow
from registry.keys.secrets_box import SecretsBox

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


async def upgrade_seals(sessions: async_sessionmaker[AsyncSession], box: SecretsBox) -> None:
    """Every pass not yet done, in order."""
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
                "%d certificates do not match their status seal and were not sealed again (read as tampered): %s",
                len(found.tampered),
                ", ".join(found.tampered[:20]),
            )
        await _mark_done(sessions, STATUS_SEAL_2)
    if await _pending(sessions, LIST_SEALS):
        async with transaction(sessions) as session:
            await status_lists.seal_legacy_lists(session, box)
            await _done(session, LIST_SEALS)


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
            changes = _changes(box, rows, tampered)
            current += len(rows) - len(changes) - (len(tampered) - before)
            if changes:
                await session.execute(_RESEAL, changes)
            resealed += len(changes)
        if len(rows) < CHUNK:
            return Resealed(resealed, current, tampered, time.perf_counter() - started)
        after = rows[-1]["id"]


def _changes(box: SecretsBox, rows: Any, tampered: list[str]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    for row in rows:
        seal = row["status_seal"]
        if signing.status_seal_intact(box, seal, row):
            continue
        if not signing.legacy_status_seal_intact(box, seal, row):
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
    if (await session.execute(select(SEAL_UPGRADES.c.name).where(SEAL_UPGRADES.c.name == name))).first() is None:
        await session.execute(sa.insert(SEAL_UPGRADES).values(name=name, done_at=utcnow()))
