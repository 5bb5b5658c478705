"""W3C Bitstring Status Lists: one pair (revocation, suspension) at a time per evaluation body, random indexes.

Index 0 is the most significant bit of the first byte, and the published ``encodedList`` is the multibase
(``u`` = base64url, no padding) encoding of the GZIP-compressed bitstring, as the W3C recommendation specifies.
"""

from __future__ import annotations

import base64
import gzip
import secrets
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.certificates.models import Certificate, StatusList
from registry.db import utcnow

LIST_SIZE = 131_072  # the recommendation's minimum: large enough that one index says nothing about a holder
FILL_LIMIT = 0.75
LIST_VALIDITY = timedelta(days=1)  # start a new pair before random picks start colliding often
_PICK_ATTEMPTS = 64
VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"


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


def decode(encoded: str) -> bytes:
    if not encoded.startswith("u"):
        raise ValueError("encodedList must be multibase base64url ('u' prefix)")
    payload = encoded[1:]
    return gzip.decompress(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def list_url(base_url: str, issuer_code: str, list_id: str, purpose: Purpose) -> str:
    return f"{base_url}/v1/status-lists/{issuer_code}/{list_id}-{purpose.value}"


def parse_list_name(name: str) -> tuple[str, Purpose] | None:
    list_id, _, purpose = name.rpartition("-")
    if not list_id or purpose not in Purpose.__members__:
        return None
    return list_id, Purpose(purpose)


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


async def assign_slot(session: AsyncSession, *, issuer_id: int) -> tuple[str, int]:
    """A random free index in the body's open list pair."""
    current = await open_list(session, issuer_id=issuer_id)
    for _ in range(_PICK_ATTEMPTS):
        index = secrets.randbelow(current.size)
        taken = await session.execute(
            select(col(Certificate.id)).where(
                col(Certificate.status_list_id) == current.list_id, col(Certificate.status_index) == index
            )
        )
        if taken.first() is None:
            current.used += 1
            return current.list_id, index
    raise RuntimeError("no free status-list index found; the fill limit should make this impossible")


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


def list_credential_claims(*, url: str, issuer_id: str, purpose: Purpose, row: StatusList) -> dict[str, Any]:
    """Valid for a day from the minute it is served: an offline verifier can tell a current list from a stale one,
    and within a minute the bytes (and ETag) stay the same for caches."""
    valid_from = utcnow().replace(second=0, microsecond=0)
    return {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer_id,
        "validFrom": valid_from.isoformat(),
        "validUntil": (valid_from + LIST_VALIDITY).isoformat(),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose.value,
            "encodedList": encode(row.bits),
        },
        "iss": issuer_id,
        "jti": url,
        "iat": int(valid_from.timestamp()),
    }


def entries_for(*, base_url: str, issuer_code: str, list_id: str, index: int) -> list[dict[str, Any]]:
    """The ``credentialStatus`` entries of a certificate's credential, one per purpose."""
    return [
        {
            "id": f"{list_url(base_url, issuer_code, list_id, purpose)}#{index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": purpose.value,
            "statusListIndex": str(index),
            "statusListCredential": list_url(base_url, issuer_code, list_id, purpose),
            "status_list_url": list_url(base_url, issuer_code, list_id, purpose),
            "index": index,
        }
        for purpose in Purpose
    ]
