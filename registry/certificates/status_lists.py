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
import time
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Integer, or_, select
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
# What a certificate's status seal covers (signing.status_seal_intact), as a rebuild and `registry audit verify`
# (registry.certificates.integrity) read it.
SEALED_COLUMNS = (
    col(Certificate.id),
    col(Certificate.number),
    col(Certificate.status),
    col(Certificate.revocation_reason),
    col(Certificate.superseded_by),
    col(Certificate.status_seal),
    col(Certificate.status_list_id),
    col(Certificate.status_index),
)
REPORT_INTERVAL = 60.0  # seconds between two ERROR lines for the same unserved list
_reported: dict[str, float] = {}  # list row name -> when it was last reported unserved (monotonic)
REBUILD_RETRY = 600.0  # seconds before a list whose rebuild could not be sealed is rebuilt again by a flip
_unsealable: dict[str, float] = {}  # list id -> when its last rebuild could not be sealed (monotonic)


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
    return (await _open_pair(session, box, issuer_id=issuer_id))[0]


async def _open_pair(session: AsyncSession, box: SecretsBox, *, issuer_id: int) -> tuple[StatusList, bytes]:
    """``open_list``, and the indexes its pair's sealed bits hold (revocation or suspension set): never handed out,
    whatever the certificates' rows say (a certificate moved off its slot with SQL leaves its bit behind). A pair
    either of whose seals does not check out takes no new entries (closed, logged): a new pair opens instead."""
    limit = int(LIST_SIZE * FILL_LIMIT)
    query = (
        select(StatusList)
        .where(col(StatusList.issuer_id) == issuer_id, col(StatusList.purpose) == Purpose.revocation)
        .where(col(StatusList.used) < limit)
        .order_by(col(StatusList.id))
        .limit(1)
        .with_for_update()
    )
    while (current := (await session.execute(query)).scalar_one_or_none()) is not None:
        other = await get_list(session, issuer_id=issuer_id, list_id=current.list_id, purpose=Purpose.suspension)
        if other is not None and seal_intact(box, current) and seal_intact(box, other):
            held = int.from_bytes(current.bits, "big") | int.from_bytes(other.bits, "big")
            return current, held.to_bytes(len(current.bits), "big")
        log.error("status list %s does not match its seal: closed to new certificates", current.list_id)
        current.used = limit
        await session.flush()
    list_id = secrets.token_hex(6)
    for purpose in Purpose:
        row = StatusList(list_id=list_id, issuer_id=issuer_id, purpose=purpose, size=LIST_SIZE, bits=empty_bits())
        reseal(box, row)
        session.add(row)
    await session.flush()
    return (await session.execute(query)).scalar_one(), empty_bits()


async def take_slots(session: AsyncSession, box: SecretsBox, *, issuer_id: int, count: int) -> list[tuple[str, int]]:
    """Random free indexes for ``count`` new certificates, in random order: the open list pair fills up, and new pairs
    open as needed. One look-up per round of candidates, whether one certificate is issued or ten thousand."""
    slots: list[tuple[str, int]] = []
    limit = int(LIST_SIZE * FILL_LIMIT)
    postgres = bulk.is_postgres(session)
    while len(slots) < count:
        current, held = await _open_pair(session, box, issuer_id=issuer_id)  # locked to the end of the transaction
        room = min(count - len(slots), limit - current.used)
        picked = await _free_indexes(session, current, held, room, postgres=postgres)
        current.used += room
        slots.extend((current.list_id, index) for index in picked)  # in draw order: rows map to random indexes
        await session.flush()
    return slots


async def _free_indexes(
    session: AsyncSession, current: StatusList, held: bytes, wanted: int, *, postgres: bool
) -> list[int]:
    """``wanted`` distinct unused indexes of ``current`` (no certificate there, no bit set in ``held``), each
    uniformly random. Below the fill limit at least a
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
                if index not in picked and not held[index >> 3] & (0x80 >> (index & 7)):
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
    the result. A list whose seal does not check out (changed with SQL) is first rebuilt from its certificates: a flip
    must never seal bits someone else wrote. The rebuild is sealed only when every certificate of the list's body
    carries an intact status seal (status and slot; ``rebuild``): else it stays unsealed, so unserved, till repaired,
    and for ``REBUILD_RETRY`` after such a rebuild flips only set the stored bits (unsealed whichever way they go): a
    rebuild reads every certificate of the body under the lock issuance takes."""
    row = (
        await session.execute(
            select(StatusList)
            .where(col(StatusList.list_id) == list_id, col(StatusList.purpose) == purpose)
            .with_for_update()
        )
    ).scalar_one()
    bits, intact = row.bits, seal_intact(box, row)
    failed = _unsealable.get(list_id)
    if not intact and (failed is None or time.monotonic() - failed >= REBUILD_RETRY):
        rebuilt = await rebuild(session, box, list_id=list_id, issuer_id=row.issuer_id)
        bits, intact = rebuilt.bits[purpose], rebuilt.trustworthy
        _report_rebuilt(row, rebuilt)
        _note_rebuild(list_id, sealed=intact)
    row.bits = with_bit(bits, index, value)
    row.size = len(row.bits) * 8
    row.updated_at = utcnow()
    if intact:
        reseal(box, row)
    await session.flush()


async def withhold_lists(session: AsyncSession, *, issuer_id: int) -> int:
    """Leave every list of the body unsealed, so unserved: what a status change of a certificate whose slot cannot be
    vouched for does (its bits cannot be put where its credential looks). Locked in id order, as a flip locks a pair
    (revocation row first); a flip rebuilding one of them later finds that certificate and does not seal it either."""
    rows = (
        await session.execute(
            select(StatusList)
            .where(col(StatusList.issuer_id) == issuer_id)
            .order_by(col(StatusList.id))
            .with_for_update()
        )
    ).scalars()
    withheld = 0
    for row in rows:
        row.seal, row.updated_at = None, utcnow()
        withheld += 1
    await session.flush()
    return withheld


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


def _note_rebuild(list_id: str, *, sealed: bool) -> None:
    if sealed:
        _unsealable.pop(list_id, None)
        return
    if len(_unsealable) >= 10_000:
        _unsealable.clear()
    _unsealable[list_id] = time.monotonic()


def _report_rebuilt(row: StatusList, rebuilt: Rebuilt) -> None:
    name, said = f"{row.list_id}-{row.purpose}", "has no seal" if row.seal is None else "does not match its seal"
    if rebuilt.trustworthy:
        log.error("status list %s %s (written outside the registry): rebuilt from its certificates, sealed", name, said)
    else:
        log.error(
            "status list %s %s (written outside the registry), and %d of its certificates do not match their status "
            "seals: rebuilt, left unsealed (not served); registry audit verify names them",
            name,
            said,
            rebuilt.unconfirmed,
        )


def _report_unserved(row: StatusList) -> None:
    """One ERROR per list row and ``REPORT_INTERVAL``: every request for a broken list would otherwise log one."""
    name, now = f"{row.list_id}-{row.purpose}", time.monotonic()
    last = _reported.get(name)
    if last is not None and now - last < REPORT_INTERVAL:
        return
    if len(_reported) >= 10_000:
        _reported.clear()
    _reported[name] = now
    said = "has no seal" if row.seal is None else "does not match its seal"
    log.error(
        "status list %s %s (written outside the registry): answered 503, never signed, until a status change in it "
        "(or registry status-lists repair) rebuilds it from its certificates; registry status-lists check names what "
        "fails",
        name,
        said,
    )


def checked_bits(box: SecretsBox, rows: Sequence[StatusList]) -> dict[Purpose, bytes] | None:
    """The bits of ``rows`` (the rows of one list id) as they may be published: as stored when every seal checks out,
    else None (logged). Never rebuilt here: a rebuild reads every certificate of the list (seconds of CPU for a full
    one), which an unauthenticated request must not be able to cause; and lists kept from before seals were sealed by
    ``registry migrate``, so a list without a seal is a broken one."""
    broken = [row for row in rows if not seal_intact(box, row)]
    for row in broken:
        _report_unserved(row)
    return None if broken else {Purpose(row.purpose): bytes(row.bits) for row in rows}


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """A list's two bitstrings made from its certificates (``certified``), and as a rebuild stores them (``bits``):
    with each bit set as stored at a slot no certificate holds kept set (``unproven``: a certificate row deleted
    leaves its slot empty, and nothing proves its bit may be cleared); and the numbers of the certificates that fail
    their status seal (``failing``: each counted revoked and suspended, at the index it claims: its real slot is not
    known, so a rebuild with any is not sealed)."""

    bits: dict[Purpose, bytes]
    certified: dict[Purpose, bytes]
    failing: tuple[str, ...]
    unproven: tuple[int, ...]

    @property
    def unconfirmed(self) -> int:
        return len(self.failing)

    @property
    def trustworthy(self) -> bool:
        return not self.failing


async def rebuild(session: AsyncSession, box: SecretsBox, *, list_id: str, issuer_id: int | None = None) -> Rebuilt:
    """Both bitstrings of ``list_id`` made from its certificates, a chunk of rows at a time: each certificate's bits
    by its status, where its sealed slot says, or revoked and suspended (never valid) when its status seal (status and
    slot) does not check out; a bit set as stored where no certificate holds the slot stays set. Given the list's body
    (``issuer_id``), a rebuild to be sealed: its certificates outside the list that fail their seals count too."""
    revocation, suspension, held = bytearray(LIST_SIZE // 8), bytearray(LIST_SIZE // 8), bytearray(LIST_SIZE // 8)
    failing: list[str] = []
    async for index, number, said in certificate_bits(session, box, list_id=list_id):
        if said == UNCONFIRMED_BITS:
            failing.append(number)
        if not 0 <= index < LIST_SIZE:
            continue
        mask = 0x80 >> (index % 8)
        held[index // 8] |= mask
        if said[0]:
            revocation[index // 8] |= mask
        if said[1]:
            suspension[index // 8] |= mask
    if issuer_id is not None:
        failing += await strays(session, box, issuer_id=issuer_id, list_id=list_id)
    certified = {Purpose.revocation: bytes(revocation), Purpose.suspension: bytes(suspension)}
    query = select(col(StatusList.purpose), col(StatusList.bits)).where(col(StatusList.list_id) == list_id)
    stored = {Purpose(purpose): bytes(data) for purpose, data in (await session.execute(query)).all()}
    unheld = ~int.from_bytes(held, "big")
    kept = {purpose: _as_int(stored.get(purpose, b"")) & unheld for purpose in Purpose}
    bits = {purpose: (_as_int(certified[purpose]) | kept[purpose]).to_bytes(len(held), "big") for purpose in Purpose}
    either = kept[Purpose.revocation] | kept[Purpose.suspension]
    unproven = tuple(LIST_SIZE - 1 - i for i in reversed(range(either.bit_length())) if either >> i & 1)
    return Rebuilt(bits, certified, tuple(failing), unproven)


def _as_int(bits: bytes) -> int:
    """A stored bitstring as one number, index 0 its highest bit, cut or padded to ``LIST_SIZE`` bits."""
    return int.from_bytes(bytes(bits)[: LIST_SIZE // 8].ljust(LIST_SIZE // 8, b"\0"), "big")


async def rebuilt_bits(session: AsyncSession, box: SecretsBox, *, list_id: str) -> dict[Purpose, bytes]:
    """What the list's certificates alone say: a bit kept set at a slot no certificate holds disagrees with them."""
    return (await rebuild(session, box, list_id=list_id)).certified


async def repair_list(session: AsyncSession, box: SecretsBox, *, list_id: str) -> tuple[Rebuilt | None, list[str]]:
    """Rebuild ``list_id`` as a flip does (``rebuild``, with its body), its rows locked as a flip locks them (in id
    order, revocation first), and seal the rows whose seal does not check out, only when the rebuild is
    trustworthy: (the rebuild, or None when every row's seal checks out and nothing is done; the purposes sealed)."""
    query = select(StatusList).where(col(StatusList.list_id) == list_id).order_by(col(StatusList.id))
    rows = (await session.execute(query.with_for_update())).scalars().all()
    broken = [row for row in rows if not seal_intact(box, row)]
    if not broken:
        return None, []
    rebuilt = await rebuild(session, box, list_id=list_id, issuer_id=rows[0].issuer_id)
    _note_rebuild(list_id, sealed=rebuilt.trustworthy)
    if not rebuilt.trustworthy:
        _report_rebuilt(rows[0], rebuilt)
        return rebuilt, []
    for row in broken:
        row.bits, row.size, row.updated_at = rebuilt.bits[Purpose(row.purpose)], LIST_SIZE, utcnow()
        reseal(box, row)
    await session.flush()
    return rebuilt, [row.purpose for row in broken]


async def get_list(session: AsyncSession, *, issuer_id: int, list_id: str, purpose: Purpose) -> StatusList | None:
    query = select(StatusList).where(
        col(StatusList.issuer_id) == issuer_id, col(StatusList.list_id) == list_id, col(StatusList.purpose) == purpose
    )
    return (await session.execute(query)).scalar_one_or_none()


async def certificate_bits(
    session: AsyncSession, box: SecretsBox, *, list_id: str
) -> AsyncIterator[tuple[int, str, tuple[bool, bool]]]:
    """(index, number, (revoked, suspended)) of each certificate of ``list_id``, in index order, read a chunk at a time
    (the list's unique index on (status_list_id, status_index) walks them): what its status says, when its status seal
    checks out, else ``UNCONFIRMED_BITS``."""
    cert = Certificate
    after = -1
    while True:
        query = (
            select(*SEALED_COLUMNS)
            .where(col(cert.status_list_id) == list_id, col(cert.status_index) > after)
            .order_by(col(cert.status_index))
            .limit(REBUILD_CHUNK)
        )
        rows = (await session.execute(query)).mappings().all()
        for row in rows:
            yield int(row["status_index"]), str(row["number"]), _bits_of(box, cast(Mapping[str, Any], row))
        if len(rows) < REBUILD_CHUNK:
            return
        after = int(rows[-1]["status_index"])


async def strays(session: AsyncSession, box: SecretsBox, *, issuer_id: int, list_id: str) -> list[str]:
    """The numbers of the body's certificates outside ``list_id`` that fail their status seal: a certificate moved
    out of the list with SQL (its list id changed or cleared) is one of them, and a rebuild of the list cannot tell
    which index it held. Reads every such certificate, a chunk at a time: only a rebuild that would be sealed asks."""
    cert = Certificate
    elsewhere = or_(col(cert.status_list_id).is_(None), col(cert.status_list_id) != list_id)
    query = select(*SEALED_COLUMNS).where(col(cert.issuer_id) == issuer_id, elsewhere).order_by(col(cert.id))
    failing: list[str] = []
    after = None
    while True:
        chunk = query if after is None else query.where(col(cert.id) > after)
        rows = (await session.execute(chunk.limit(REBUILD_CHUNK))).mappings().all()
        for row in rows:
            if not signing.status_seal_intact(box, row["status_seal"], cast(Mapping[str, Any], row)):
                failing.append(str(row["number"]))
        if len(rows) < REBUILD_CHUNK:
            return failing
        after = rows[-1]["id"]


def _bits_of(box: SecretsBox, row: Mapping[str, Any]) -> tuple[bool, bool]:
    if not signing.status_seal_intact(box, row["status_seal"], row):
        return UNCONFIRMED_BITS
    try:
        return STATUS_BITS[Status(row["status"])]
    except ValueError:
        return UNCONFIRMED_BITS


async def seal_legacy_lists(session: AsyncSession, box: SecretsBox) -> int:
    """Seal every list kept from before seals (migration 0018), its bits rebuilt from its certificates rather than
    trusted as stored; the number of list ids sealed. Run once by ``registry migrate``, which holds the master key
    (``seal_upgrade``), after the certificates' seals bind their slots: a list any of whose certificates fails its
    status seal is left unsealed (so unserved), and named."""
    unsealed = (
        await session.execute(select(col(StatusList.list_id)).where(col(StatusList.seal).is_(None)).distinct())
    ).scalars()
    sealed = 0
    for list_id in list(unsealed):
        rebuilt, _sealed = await repair_list(session, box, list_id=list_id)
        sealed += rebuilt is not None and rebuilt.trustworthy
    await session.flush()
    return sealed
