"""W3C Bitstring Status Lists: one pair (revocation, suspension) at a time per evaluation body, random indexes.

Index 0 is the most significant bit of the first byte, and the published ``encodedList`` is the multibase
(``u`` = base64url, no padding) encoding of the GZIP-compressed bitstring, as the W3C recommendation specifies.
"""

from __future__ import annotations

import array
import base64
import gzip
import hashlib
import logging
import secrets
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Integer, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk
from registry.certificates import signing
from registry.certificates.models import Certificate, Status, StatusList
from registry.db import utcnow
from registry.keys.secrets_box import SecretsBox

log = logging.getLogger(__name__)

LIST_SIZE = 131_072  # the recommendation's minimum: large enough that one index says nothing about a holder
FILL_LIMIT = 0.75  # start a new pair before random picks start colliding often


class Purpose(StrEnum):
    revocation = "revocation"
    suspension = "suspension"


# What each status means for the two published bits (revocation, suspension).
STATUS_BITS: dict[Status, tuple[bool, bool]] = {
    Status.active: (False, False),
    Status.suspended: (False, True),
    Status.revoked: (True, False),
    Status.superseded: (True, False),  # the old credential must not pass offline checks once replaced
}
# A certificate whose status seal does not check out, in a rebuilt list: fail closed, never valid.
UNCONFIRMED_BITS = (True, True)
SEAL_KIND = "status-list"
REBUILD_CHUNK = 10_000


def empty_bits(size: int = LIST_SIZE) -> bytes:
    return bytes(size // 8)


def with_bit(bits: bytes, index: int, value: bool) -> bytes:
    data = bytearray(bits)
    mask = 0x80 >> (index % 8)
    data[index // 8] = data[index // 8] | mask if value else data[index // 8] & ~mask
    return bytes(data)


def bit(bits: bytes, index: int) -> bool:
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def encode(bits: bytes) -> str:
    # mtime=0: the same bitstring always encodes to the same text, so ETags stay stable.
    return "u" + base64.urlsafe_b64encode(gzip.compress(bits, mtime=0)).rstrip(b"=").decode("ascii")


def decode(encoded: str, *, most: int | None = None) -> bytes:
    """The bitstring of an ``encodedList``; with ``most``, a ValueError rather than more than ``most`` bytes (a list
    read from elsewhere: a few kilobytes of gzip can inflate to gigabytes)."""
    if not encoded.startswith("u"):
        raise ValueError("encodedList must be multibase base64url ('u' prefix)")
    payload = encoded[1:]
    packed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if most is None:
        return gzip.decompress(packed)
    inflater = zlib.decompressobj(wbits=31)  # 31: a gzip member, header and trailer checked
    bits = inflater.decompress(packed, most + 1)
    if len(bits) > most:
        raise ValueError(f"encodedList inflates to more than {most:,} bytes")
    if not inflater.eof or inflater.unused_data:
        raise ValueError("encodedList is not one whole gzip member")
    return bits


async def open_list(session: AsyncSession, box: SecretsBox, *, issuer_id: int) -> StatusList:
    """The body's revocation list that still takes new entries (locked), opening a new pair when none does."""
    query = (
        select(StatusList)
        .where(col(StatusList.issuer_id) == issuer_id, col(StatusList.purpose) == Purpose.revocation)
        .where(col(StatusList.used) < int(LIST_SIZE * FILL_LIMIT))
        .order_by(col(StatusList.id))
        .limit(1)
        .with_for_update()
    )
    current = (await session.execute(query)).scalar_one_or_none()
    if current is None:
        list_id = secrets.token_hex(6)
        for purpose in Purpose:
            row = StatusList(list_id=list_id, issuer_id=issuer_id, purpose=purpose, size=LIST_SIZE, bits=empty_bits())
            reseal(box, row)
            session.add(row)
        await session.flush()
        current = (await session.execute(query)).scalar_one()
    return current


async def take_slots(session: AsyncSession, box: SecretsBox, *, issuer_id: int, count: int) -> list[tuple[str, int]]:
    """Random free indexes for ``count`` new certificates, in random order: the open list pair fills up, and new pairs
    open as needed. One look-up per round of candidates, whether one certificate is issued or ten thousand."""
    slots: list[tuple[str, int]] = []
    limit = int(LIST_SIZE * FILL_LIMIT)
    postgres = bulk.is_postgres(session)
    while len(slots) < count:
        current = await open_list(session, box, issuer_id=issuer_id)  # locked to the end of the transaction
        room = min(count - len(slots), limit - current.used)
        picked = await _free_indexes(session, current, room, postgres=postgres)
        current.used += room
        slots.extend((current.list_id, index) for index in picked)  # in draw order: rows map to random indexes
        await session.flush()
    return slots


async def _free_indexes(session: AsyncSession, current: StatusList, wanted: int, *, postgres: bool) -> list[int]:
    """``wanted`` distinct unused indexes of ``current``, each uniformly random. Below the fill limit at least a
    quarter of the list is free, so twice as many random candidates as still wanted finish in a round or two.
    Candidates are kept in the order they were drawn: a set's iteration order would prefer some residues."""
    picked: dict[int, None] = {}  # insertion-ordered: draw order
    in_list = col(Certificate.status_list_id) == current.list_id
    while len(picked) < wanted:
        need = wanted - len(picked)
        candidates: dict[int, None] = {}
        enough = min(2 * need + 8, current.size - len(picked))
        while len(candidates) < enough:
            for index in random_indexes(current.size, enough - len(candidates)):
                if index not in picked:
                    candidates[index] = None
        taken: set[int] = set()
        for chunk in bulk.lookup_chunks(list(candidates), postgres=postgres):
            found = await session.execute(
                select(col(Certificate.status_index)).where(
                    in_list, bulk.one_of(col(Certificate.status_index), chunk, postgres=postgres, element=Integer())
                )
            )
            taken.update(index for index in found.scalars() if index is not None)
        free = [index for index in candidates if index not in taken]
        picked.update(dict.fromkeys(free[:need]))
    return list(picked)


def random_indexes(size: int, count: int) -> list[int]:
    """``count`` independent, uniformly random indexes below ``size`` (at most; a few are thrown away), from one call
    to the system's random source: each is a word of at least 32 random bits masked to the bits ``size`` needs, kept
    when below ``size`` (rejection sampling, as ``secrets.randbelow`` does one call at a time — 5x slower for a
    batch's 20,000)."""
    if not 0 < size <= 1 << 32:
        raise ValueError(f"size must be between 1 and 2**32, got {size}")
    mask = (1 << (size - 1).bit_length()) - 1
    words = array.array("L", secrets.token_bytes(count * array.array("L").itemsize))  # C unsigned long: >= 32 bits
    return [index for index in (word & mask for word in words) if index < size]


async def set_status(
    session: AsyncSession, box: SecretsBox, *, list_id: str, index: int, purpose: Purpose, value: bool
) -> None:
    """Flip one bit in the caller's transaction, so the list never disagrees with the certificate's status, and seal
    the result. A list whose seal does not check out (changed with SQL, or made before seals) is first rebuilt from its
    certificates: a flip must never seal bits someone else wrote."""
    row = (
        await session.execute(
            select(StatusList)
            .where(col(StatusList.list_id) == list_id, col(StatusList.purpose) == purpose)
            .with_for_update()
        )
    ).scalar_one()
    bits = row.bits
    if not seal_intact(box, row):
        _report_unsealed(row)
        bits = (await rebuilt_bits(session, box, list_id=list_id))[purpose]
    row.bits = with_bit(bits, index, value)
    row.size = len(row.bits) * 8
    row.updated_at = utcnow()
    reseal(box, row)
    await session.flush()


def list_seal(box: SecretsBox, *, list_id: str, issuer_id: int, purpose: str, size: int, bits: bytes) -> str:
    """The keyed MAC over a list row: what someone who can write the database but not read the master key cannot
    make for bits of their own. Made at every flip, checked at every serving: a SHA-256 over the 16 KiB and an HMAC
    (tens of µs, a fraction of what gzipping the list for serving costs)."""
    return box.seal(*_sealed_fields(list_id, issuer_id, purpose, size, bits), kind=SEAL_KIND)


def _sealed_fields(list_id: str, issuer_id: int, purpose: str, size: int, bits: bytes) -> tuple[object, ...]:
    return (list_id, issuer_id, purpose, size, hashlib.sha256(bits).hexdigest())


def reseal(box: SecretsBox, row: StatusList) -> None:
    row.seal = list_seal(
        box, list_id=row.list_id, issuer_id=row.issuer_id, purpose=row.purpose, size=row.size, bits=bytes(row.bits)
    )


def seal_intact(box: SecretsBox, row: StatusList) -> bool:
    fields = _sealed_fields(row.list_id, row.issuer_id, row.purpose, row.size, bytes(row.bits))
    return box.seal_matches(row.seal, *fields, kind=SEAL_KIND)


def _report_unsealed(row: StatusList) -> None:
    """An unsealed list is one kept from before seals; a broken seal means the bits were written around the registry."""
    if row.seal is None:
        log.warning("status list %s-%s has no seal yet: rebuilt from its certificates", row.list_id, row.purpose)
    else:
        log.error(
            "status list %s-%s does not match its seal (its bits were changed outside the registry): rebuilt from "
            "its certificates",
            row.list_id,
            row.purpose,
        )


async def checked_bits(session: AsyncSession, box: SecretsBox, rows: Sequence[StatusList]) -> dict[Purpose, bytes]:
    """The bits of ``rows`` (the rows of one list id) as they may be published: as stored when every seal checks out,
    else rebuilt from the list's certificates. Reads only, so it runs on a replica."""
    broken = [row for row in rows if not seal_intact(box, row)]
    if not broken:
        return {Purpose(row.purpose): bytes(row.bits) for row in rows}
    for row in broken:
        _report_unsealed(row)
    rebuilt = await rebuilt_bits(session, box, list_id=rows[0].list_id)
    return {Purpose(row.purpose): rebuilt[Purpose(row.purpose)] for row in rows}


async def rebuilt_bits(session: AsyncSession, box: SecretsBox, *, list_id: str) -> dict[Purpose, bytes]:
    """Both bitstrings of ``list_id`` made from its certificates, a chunk of rows at a time: each certificate's bits
    by its status, or revoked and suspended (never valid) when its status seal does not check out."""
    revocation, suspension = bytearray(LIST_SIZE // 8), bytearray(LIST_SIZE // 8)
    async for index, bits in certificate_bits(session, box, list_id=list_id):
        if not 0 <= index < LIST_SIZE:
            continue
        mask = 0x80 >> (index % 8)
        if bits[0]:
            revocation[index // 8] |= mask
        if bits[1]:
            suspension[index // 8] |= mask
    return {Purpose.revocation: bytes(revocation), Purpose.suspension: bytes(suspension)}


async def get_list(session: AsyncSession, *, issuer_id: int, list_id: str, purpose: Purpose) -> StatusList | None:
    query = select(StatusList).where(
        col(StatusList.issuer_id) == issuer_id, col(StatusList.list_id) == list_id, col(StatusList.purpose) == purpose
    )
    return (await session.execute(query)).scalar_one_or_none()


async def certificate_bits(
    session: AsyncSession, box: SecretsBox, *, list_id: str
) -> AsyncIterator[tuple[int, tuple[bool, bool]]]:
    """(index, (revoked, suspended)) of each certificate of ``list_id``, in index order, read a chunk at a time (the
    list's unique index on (status_list_id, status_index) walks them): what its status says, when its status seal
    checks out, else ``UNCONFIRMED_BITS``."""
    cert = Certificate
    columns = (
        col(cert.id),
        col(cert.number),
        col(cert.status),
        col(cert.revocation_reason),
        col(cert.superseded_by),
        col(cert.status_seal),
        col(cert.status_index),
    )
    after = -1
    while True:
        query = (
            select(*columns)
            .where(col(cert.status_list_id) == list_id, col(cert.status_index) > after)
            .order_by(col(cert.status_index))
            .limit(REBUILD_CHUNK)
        )
        rows = (await session.execute(query)).mappings().all()
        for row in rows:
            yield int(row["status_index"]), _bits_of(box, cast(Mapping[str, Any], row))
        if len(rows) < REBUILD_CHUNK:
            return
        after = int(rows[-1]["status_index"])


def _bits_of(box: SecretsBox, row: Mapping[str, Any]) -> tuple[bool, bool]:
    if not signing.status_seal_intact(box, row["status_seal"], row):
        return UNCONFIRMED_BITS
    try:
        return STATUS_BITS[Status(row["status"])]
    except ValueError:
        return UNCONFIRMED_BITS


async def seal_legacy_lists(session: AsyncSession, box: SecretsBox) -> int:
    """Seal every list kept from before seals (migration 0018), its bits rebuilt from its certificates rather than
    trusted as stored; the number of list ids sealed. Run by ``registry migrate``, which holds the master key."""
    unsealed = (
        await session.execute(select(col(StatusList.list_id)).where(col(StatusList.seal).is_(None)).distinct())
    ).scalars()
    sealed = 0
    for list_id in list(unsealed):
        rows = (
            (
                await session.execute(
                    select(StatusList)
                    .where(col(StatusList.list_id) == list_id)
                    .order_by(col(StatusList.purpose))
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        rebuilt = await rebuilt_bits(session, box, list_id=list_id)
        for row in rows:
            if row.seal is None or not seal_intact(box, row):
                row.bits = rebuilt[Purpose(row.purpose)]
                row.size = LIST_SIZE
                reseal(box, row)
        sealed += 1
    await session.flush()
    return sealed
