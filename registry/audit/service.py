"""Appending to the audit log and checking its hash chain."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk
from registry.audit.models import AuditRecord
from registry.canonical import canonical_json, iso_time
from registry.db import utcnow

GENESIS_HASH = "0" * 64
_CHAIN_LOCK = 0x61756469  # "audi": one appender at a time, so the chain never forks


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: a client (``client:<id>``), a holder, the command line, or the public."""

    id: str


def record_hash(prev_hash: str, record: AuditRecord) -> str:
    return fields_hash(
        prev_hash,
        {
            "at": record.at,
            "actor": record.actor,
            "action": record.action,
            "object_type": record.object_type,
            "object_id": record.object_id,
            "purpose": record.purpose,
            "details": record.details,
        },
    )


def fields_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The chain hash of a record given as its columns (a row dict; other keys are ignored): exactly ``record_hash``
    of the same record, without building an ``AuditRecord`` for it."""
    return _chained(prev_hash, _body({name: fields[name] for name in _HASHED}))


_HASHED = ("at", "actor", "action", "object_type", "object_id", "purpose", "details")  # what the chain hash covers


def _body(fields: dict[str, Any]) -> bytes:
    """What a record's chain hash covers (``_HASHED``), as canonical JSON."""
    return canonical_json({**fields, "at": iso_time(fields["at"])})


def _chained(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + body).hexdigest()


async def hold_chain(session: AsyncSession) -> None:
    """Take the chain's turn now, held to the end of the transaction, rather than at its first append: whatever
    appended before has committed, and whatever appends next waits for this transaction to end. (On SQLite every
    writer holds the database's write lock already.) A key rotation dates the old key's retirement once it holds
    the chain: ``registry.issuers.service.rotate_key``."""
    if bulk.is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})


async def _chain_head(session: AsyncSession) -> str:
    await hold_chain(session)
    head = (
        await session.execute(select(col(AuditRecord.hash)).order_by(col(AuditRecord.id).desc()).limit(1))
    ).scalar_one_or_none()
    return head or GENESIS_HASH


class Entry(NamedTuple):
    """What a record says happened (``append``'s fields but the actor's). A tuple, not a dataclass: a batch makes
    10,000, and a frozen dataclass costs four times as much to make."""

    action: str
    object_type: str
    object_id: str
    purpose: str
    details: dict[str, Any]


class Prepared(NamedTuple):
    """An entry made ready to chain (``prepare``) before the chain's turn is taken: the canonical JSON its chain hash
    covers (``_body``), split around the record's time, which is set only once the chain is held, so that the records'
    times follow their ids. A tuple, not a dataclass: a batch prepares 10,000."""

    entry: Entry
    before: bytes  # {"action":…,"actor":…,
    after: bytes  # ,"details":…,"object_id":…,"object_type":…,"purpose":…}


def prepare(entry: Entry, *, actor: Actor) -> Prepared:
    """``entry``'s record by ``actor`` made ready to chain: ``_body``'s bytes but the time's. Canonical JSON is compact
    and sorts its keys, so the fields named before "at" make what comes before it, and the rest what follows."""
    fields = {
        "actor": actor.id,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "purpose": entry.purpose,
        "details": entry.details,
    }
    before = canonical_json({name: fields[name] for name in _BEFORE_AT})[:-1] + b","
    after = canonical_json({name: fields[name] for name in _AFTER_AT})[1:]
    return Prepared(entry, before if _BEFORE_AT else b"{", b"," + after if _AFTER_AT else b"}")


_BEFORE_AT = sorted(name for name in _HASHED if name < "at")
_AFTER_AT = sorted(name for name in _HASHED if name > "at")


class Preparing:
    """``prepare`` for many entries by one actor with one action, object type and purpose, differing only in object id
    and details (a batch's issuances): what the shared fields write is written once, and each entry's bytes are
    joined around its own two values — the bytes ``prepare`` makes, at a third of the cost."""

    __slots__ = ("_action", "_before", "_object_type", "_purpose", "_rest")

    _OWN = b',"details":{},"object_id":""'  # how an entry's own values begin ``after``, written empty

    def __init__(self, *, actor: Actor, action: str, object_type: str, purpose: str) -> None:
        self._action, self._object_type, self._purpose = action, object_type, purpose
        _, self._before, after = prepare(Entry(action, object_type, "", purpose, {}), actor=actor)
        if not after.startswith(self._OWN):  # a hashed field added between "at" and "details": join it otherwise
            raise RuntimeError("audit.Preparing no longer writes what audit.prepare writes")
        self._rest = after[len(self._OWN) :]

    def prepare(self, object_id: str, details: dict[str, Any]) -> Prepared:
        entry = Entry(self._action, self._object_type, object_id, self._purpose, details)
        own = b',"details":' + canonical_json(details) + b',"object_id":' + canonical_json(object_id)
        return Prepared(entry, self._before, own + self._rest)


_COLUMNS = (*_HASHED, "prev_hash", "hash")


async def append_many(session: AsyncSession, *, actor: Actor, entries: list[Entry]) -> None:
    """Chain many records in one go: ``append_prepared`` of every entry."""
    await append_prepared(session, actor=actor, prepared=[prepare(entry, actor=actor) for entry in entries])


async def append_prepared(session: AsyncSession, *, actor: Actor, prepared: Sequence[Prepared]) -> None:
    """Chain many records in one go (batch issuance): one head read, one bulk insert, each record dated now and hashed
    as the insert takes it — ``fields_hash``'s hashes. ``prepared`` were made (``prepare``) for the same ``actor``,
    whenever that was; the chain is taken here, in the caller's transaction."""
    if not prepared:
        return
    prev_hash = await _chain_head(session)
    at = utcnow()  # once the chain is held: records' times follow their ids
    dated, actor_id = b'"at":' + canonical_json(iso_time(at)), actor.id

    def records() -> Iterator[tuple[Any, ...]]:
        chained = prev_hash
        for entry, before, after in prepared:
            hashed = _chained(chained, before + dated + after)
            yield (
                at,
                actor_id,
                entry.action,
                entry.object_type,
                entry.object_id,
                entry.purpose,
                entry.details,
                chained,
                hashed,
            )
            chained = hashed

    table = bulk.table_of(AuditRecord)
    await bulk.insert_records(session, table, _COLUMNS, records())  # in order: ids follow the chain


async def append(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    purpose: str,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append in the caller's transaction: the record exists exactly when the change it describes does."""
    prev_hash = await _chain_head(session)
    record = AuditRecord(
        at=utcnow(),
        actor=actor.id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        purpose=purpose,
        details=details or {},
        prev_hash=prev_hash,
        hash="",
    )
    record.hash = record_hash(prev_hash, record)
    session.add(record)
    await session.flush()
    return record


class ChainFault(StrEnum):
    """Why a record does not check out."""

    altered = "altered"  # its hash does not match its contents: the record itself was changed
    unlinked = "unlinked"  # it does not follow on from the record before it: a predecessor was removed or altered


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first record where the chain does not check out, and why."""

    record_id: int
    fault: ChainFault

    def describe(self) -> str:
        if self.fault is ChainFault.altered:
            return f"audit record {self.record_id} was altered: its hash does not match its contents"
        return (
            f"audit record {self.record_id} does not follow on from the record before it: "
            "the record before it was removed (or altered and re-hashed)"
        )


async def first_broken_record(session: AsyncSession) -> ChainBreak | None:
    """The first record whose hash or link does not check out, or None when the chain is intact.

    A record is checked against its own contents first, so an altered record is named as such rather than as a
    broken link. Removing the newest records leaves no trace in the chain itself."""
    expected_prev = GENESIS_HASH
    result = await session.stream(select(AuditRecord).order_by(col(AuditRecord.id)))
    async for (record,) in result:
        assert record.id is not None
        if record_hash(record.prev_hash, record) != record.hash:
            return ChainBreak(record.id, ChainFault.altered)
        if record.prev_hash != expected_prev:
            return ChainBreak(record.id, ChainFault.unlinked)
        expected_prev = record.hash
    return None


async def count_records(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(AuditRecord))).scalar_one())
