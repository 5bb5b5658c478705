"""Claim codes: the one-time secret an evaluation body hands a holder at issuance, to sign in with later.

Made here, stored only as a keyed hash, and compared here, whatever way a holder types it (case, spaces, hyphens).
"""

from __future__ import annotations

import secrets

from registry import crockford
from registry.keys.secrets_box import SecretsBox

_KIND = "claim-code"
_DRAWN_BYTES = 10  # per code: 80 bits, 16 base32 characters, of which the first 12 (60 bits) are kept


def new_claim_code() -> str:
    """12 Crockford base32 characters (60 bits) in groups of four; guessing is throttled at the holder sign-in."""
    return new_claim_codes(1)[0]


def new_claim_codes(count: int) -> list[str]:
    """``count`` claim codes from one call to the system's random source (a batch of 10,000 makes one, not 10,000).

    Each code's 10 bytes are written in Crockford's base32 (``registry.crockford``) and its first 12 characters kept:
    each character uniform and independent of the others, exactly as twelve ``secrets.choice`` calls would make
    them."""
    text = crockford.encode(secrets.token_bytes(_DRAWN_BYTES * count))
    step = _DRAWN_BYTES * 8 // 5
    return [f"{text[at : at + 4]}-{text[at + 4 : at + 8]}-{text[at + 8 : at + 12]}" for at in range(0, len(text), step)]


def normalize_claim_code(raw: str) -> str:
    """The code as it is hashed: upper case, without spaces or hyphens."""
    return "".join(raw.upper().split()).replace("-", "")


def claim_code_hash(box: SecretsBox, code: str) -> str:
    """The keyed hash stored with a certificate, and compared at sign-in (the code as given, normalised here)."""
    return box.hash_secret(normalize_claim_code(code), kind=_KIND)
