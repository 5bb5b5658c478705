"""W3C Bitstring Status Lists: one pair (revocation, suspension) at a time per evaluation body, random indexes.

Index 0 is the most significant bit of the first byte, and the published ``encodedList`` is the multibase
(``u`` = base64url, no padding) encoding of the GZIP-compressed bitstring, as the W3C recommendation specifies.
"""

from __future__ import annotations

import array
import base64
import gzip
import secrets
import zlib
from enum import StrEnum

from sqlalchemy import Integer, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk
from registry.certificates.models import Certificate, StatusList
from registry.db import utcnow

LIST_SIZE = 131_072  # the recommendation's minimum: large enough that one index says nothing about a holder
FILL_LIMIT = 0.75  # start a new pair before random picks start colliding often


class Purpose(StrEnum):
    revocation = "revocation"
    suspension = "suspension"


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


async def open_list(session: AsyncSession, *, issuer_id: int) -> StatusList:
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
            session.add(
                StatusList(list_id=list_id, issuer_id=issuer_id, purpose=purpose, size=LIST_SIZE, bits=empty_bits())
            )
        await session.flush()
        current = (await session.execute(query)).scalar_one()
    return current


async def take_slots(session: AsyncSession, *, issuer_id: int, count: int) -> list[tuple[str, int]]:
    """Random free indexes for ``count`` new certificates, in random order: the open list pair fills up, and new pairs
    open as needed. One look-up per round of candidates, whether one certificate is issued or ten thousand."""
    slots: list[tuple[str, int]] = []
    limit = int(LIST_SIZE * FILL_LIMIT)
    postgres = bulk.is_postgres(session)
    while len(slots) < count:
        current = await open_list(session, issuer_id=issuer_id)  # locked to the end of the transaction
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


async def set_status(session: AsyncSession, *, list_id: str, index: int, purpose: Purpose, value: bool) -> None:
    """Flip one bit in the caller's transaction, so the list never disagrees with the certificate's status."""
    row = (
        await session.execute(
            select(StatusList)
            .where(col(StatusList.list_id) == list_id, col(StatusList.purpose) == purpose)
            .with_for_update()
        )
    ).scalar_one()
    row.bits = with_bit(row.bits, index, value)
    row.updated_at = utcnow()
    await session.flush()


async def get_list(session: AsyncSession, *, issuer_id: int, list_id: str, purpose: Purpose) -> StatusList | None:
    query = select(StatusList).where(
        col(StatusList.issuer_id) == issuer_id, col(StatusList.list_id) == list_id, col(StatusList.purpose) == purpose
    )
    return (await session.execute(query)).scalar_one_or_none()
