"""The two-bit ``message`` status list: revocation and suspension in one Bitstring Status List, composed on request.

Open Badges 3.0 allows a credential one ``credentialStatus`` (0..1), yet a certificate can be revoked *and* it can be
suspended. The W3C Bitstring Status List's ``message`` purpose is made for multi-state status: each entry is
``statusSize`` = 2 bits, and the credential's entry spells out every value in ``statusMessage``:

    0x0 valid · 0x1 suspended · 0x2 revoked · 0x3 revoked (a suspended certificate that was then revoked)

i.e. value = revoked << 1 | suspended. Nothing new is stored: the list ``{list_id}-message`` is composed from the same
``list_id``'s revocation and suspension rows each time it is served, so it can never disagree with them. Entry ``i``
is bits ``2i`` and ``2i+1`` in W3C order (index 0 is the most significant bit of the first byte), the most significant
bit of the value first; 131,072 entries make a 32 KiB bitstring (the recommendation's minimum is 131,072 entries).

The one-bit lists ``{list_id}-revocation`` and ``{list_id}-suspension`` stay served: credentials signed before
the message list existed name them, and offline verification accepts both shapes.
"""

from __future__ import annotations

from typing import Any

from registry.certificates.status_lists import bit

PURPOSE = "message"
STATUS_SIZE = 2
VALID, SUSPENDED, REVOKED = 0x0, 0x1, 0x2
STATUS_MESSAGES = (
    (0x0, "valid"),
    (0x1, "suspended"),
    (0x2, "revoked"),
    (0x3, "revoked"),  # revoked while suspended: revocation is final, so it reads as revoked
)


def _spread(nibble: int) -> int:
    """The four bits of ``nibble`` (most significant first) as the high bits of four 2-bit entries in one byte."""
    return sum(((nibble >> (3 - k)) & 1) << (7 - 2 * k) for k in range(4))


# bytes.translate tables: a revocation (or suspension) byte's high (or low) nibble spread over one output byte, so the
# whole list composes in a few C-level passes rather than a Python loop over 16,384 bytes.
_REVOKED_HIGH = bytes(_spread(b >> 4) for b in range(256))
_REVOKED_LOW = bytes(_spread(b & 0x0F) for b in range(256))
_SUSPENDED_HIGH = bytes(_spread(b >> 4) >> 1 for b in range(256))
_SUSPENDED_LOW = bytes(_spread(b & 0x0F) >> 1 for b in range(256))


def _or(first: bytes, second: bytes) -> bytes:
    return (int.from_bytes(first, "big") | int.from_bytes(second, "big")).to_bytes(len(first), "big")


def compose(revocation: bytes, suspension: bytes) -> bytes:
    """The two-bit list of two one-bit lists of the same size: entry i = revocation[i] << 1 | suspension[i]."""
    if len(revocation) != len(suspension):
        raise ValueError("the revocation and suspension lists differ in size")
    high = _or(revocation.translate(_REVOKED_HIGH), suspension.translate(_SUSPENDED_HIGH))
    low = _or(revocation.translate(_REVOKED_LOW), suspension.translate(_SUSPENDED_LOW))
    composed = bytearray(2 * len(revocation))
    composed[0::2] = high  # entries 8k .. 8k+3 of the pair's byte k
    composed[1::2] = low  # entries 8k+4 .. 8k+7
    return bytes(composed)


def status_value(bits: bytes, index: int, size: int = STATUS_SIZE) -> int:
    """The ``size``-bit value of entry ``index``, most significant bit first; IndexError past the end."""
    if index < 0 or size < 1:
        raise IndexError(index)
    value = 0
    for position in range(index * size, (index + 1) * size):
        value = value << 1 | bit(bits, position)
    return value


def entry(*, url: str, index: int) -> dict[str, Any]:
    """A credential's single ``credentialStatus``: its index in the message list, with what each value means."""
    return {
        "id": f"{url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": PURPOSE,
        "statusListIndex": str(index),
        "statusListCredential": url,
        "statusSize": STATUS_SIZE,
        "statusMessage": [{"status": hex(value), "message": message} for value, message in STATUS_MESSAGES],
    }
