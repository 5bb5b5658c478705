"""Claim codes: the one-time secret an evaluation body hands a holder at issuance, to sign in with later.

Made here, stored only as a keyed hash, and compared here, whatever way a holder types it (case, spaces, hyphens).
"""

from __future__ import annotations

import secrets

from registry.keys.secrets_box import SecretsBox

_KIND = "claim-code"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def new_claim_code() -> str:
    """12 Crockford base32 characters (60 bits) in groups of four; guessing is throttled at the holder sign-in.

    One 60-bit draw, five bits per character: each character is uniform and independent of the others, exactly as
    twelve ``secrets.choice`` calls would make them, for one call to the system's random source instead of twelve."""
    value = secrets.randbits(60)
    raw = "".join(_ALPHABET[(value >> shift) & 0b11111] for shift in range(55, -1, -5))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalize_claim_code(raw: str) -> str:
    """The code as it is hashed: upper case, without spaces or hyphens."""
    return "".join(raw.upper().split()).replace("-", "")


def claim_code_hash(box: SecretsBox, code: str) -> str:
    """The keyed hash stored with a certificate, and compared at sign-in (the code as given, normalised here)."""
    return box.hash_secret(normalize_claim_code(code), kind=_KIND)
