"""Crockford's base32, the alphabet of certificate serials and claim codes: the digits and the letters without I, L,
O and U, so nothing printed can be misread as something else. One home for the alphabet and for writing random
bytes in it."""

from __future__ import annotations

import base64
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_FROM_RFC4648: Final = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode("ascii"))


def encode(data: bytes) -> str:
    """``data`` written five bits per character, most significant first: RFC 4648's base32 (in C) with its alphabet
    mapped onto Crockford's, character for character. Eight characters per five bytes; give a multiple of five bytes
    (anything else would end in RFC 4648's "=" padding)."""
    return base64.b32encode(data).translate(_FROM_RFC4648).decode("ascii")
