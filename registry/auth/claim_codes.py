"""Claim codes: the one-time secret an evaluation body hands a holder at issuance, to sign in with later.

Made here, stored only as a keyed hash, and compared here, whatever way a holder types it (case, spaces, hyphens).
"""

from __future__ import annotations

import secrets
from typing import Final

from registry import crockford
from registry.i18n import _
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


CLAIM_CODE_LENGTH: Final = 12
# Crockford's reading of the letters it leaves out: an O is a zero, an I or an L a one.
_MISREAD: Final = str.maketrans("OIL", "011")


def normalize_claim_code(raw: str) -> str:
    """The code as it is hashed, however it was typed: full-width characters (a Chinese input method) as their ASCII
    selves, upper case, without spaces or dashes of any kind (- － — –), and O, I and L read as 0, 1 and 1."""
    return crockford.folded(raw).upper().translate(_MISREAD)


def claim_code_problem(raw: str) -> str | None:
    """Why ``raw`` cannot be a claim code at all, or None: such a code is refused as malformed, not counted as a
    wrong guess towards the holder's lockout."""
    code = normalize_claim_code(raw)
    wrong = sorted({char for char in code if char not in crockford.ALPHABET})
    if wrong:
        return _("may hold only digits and the letters A-Z without U (not {characters})", characters=" ".join(wrong))
    if len(code) != CLAIM_CODE_LENGTH:
        return _(
            "must be {length} characters without spaces or hyphens (given {given})",
            length=CLAIM_CODE_LENGTH,
            given=len(code),
        )
    return None


def claim_code_hash(box: SecretsBox, code: str) -> str:
    """The keyed hash stored with a certificate, and compared at sign-in (the code as given, normalised here)."""
    return box.hash_secret(normalize_claim_code(code), kind=_KIND)
