"""Crockford's base32, the alphabet of certificate serials and claim codes: the digits and the letters without I, L,
O and U, so nothing printed can be misread as something else. One home for the alphabet and for writing random
bytes in it."""

from __future__ import annotations

import base64
import unicodedata
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_FROM_RFC4648: Final = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode("ascii"))


def encode(data: bytes) -> str:
    """``data`` written five bits per character, most significant first: RFC 4648's base32 (in C) with its alphabet
    mapped onto Crockford's, character for character. Eight characters per five bytes; give a multiple of five bytes
    (anything else would end in RFC 4648's "=" padding)."""
    return base64.b32encode(data).translate(_FROM_RFC4648).decode("ascii")


def folded(typed: str) -> str:
    """A code (a certificate number, a claim code) as a person may type it, folded to what it names: full-width forms
    from a Chinese input method as ASCII (NFKC), without white space or dashes of any kind (- － — –: Unicode Pd)."""
    return "".join(
        char
        for char in unicodedata.normalize("NFKC", typed)
        if not char.isspace() and unicodedata.category(char) != "Pd"
    )
