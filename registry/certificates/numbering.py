"""Certificate numbers: minting, formatting and checking the number printed on every certificate.

Format: canonical ``RRTYYYYSSSSSSSSC`` (16 characters), shown grouped as ``RR-T-YYYY-SSSSSSSS-C``.

    RR        issuing region, two letters A-Z (e.g. BJ, TJ, HE)
    T         certificate type: T = professional title, S = skill level
    YYYY      year of award, 1900 or later
    SSSSSSSS  8 random characters from Crockford's base32 alphabet 0123456789ABCDEFGHJKMNPQRSTVWXYZ
              (40 random bits, so numbers reveal nothing about how many certificates were issued)
    C         check character: ISO/IEC 7064 MOD 37-2 over the 15 characters before it, with
              0-9 -> 0-9 and A-Z -> 10-35. A serial whose check value would be 36 (MOD 37-2's "*")
              is never issued, so C is always one of 0-9A-Z.

C detects every single-character substitution and every transposition of two characters, adjacent or
not, the check character included: the 16 weights 2^15 .. 2^0 mod 37 are distinct and non-zero, and 37 is
prime. (The hybrid ISO/IEC 7064 MOD 37,36 was rejected because it misses some adjacent transpositions.)

Input is accepted in upper or lower case, with or without spaces and hyphens. Look-alike characters
(O for 0, I or L for 1) are rejected, never silently corrected.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from typing import Final, Literal

from registry import crockford
from registry.errors import InvalidCertificateNumber
from registry.i18n import _

_SYMBOLS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # MOD 37-2 values 0-35, in order
_SYMBOL_VALUES: Final[dict[str, int]] = {symbol: value for value, symbol in enumerate(_SYMBOLS)}
_SERIAL_LENGTH: Final = 8
_SERIAL_BYTES: Final = 5  # 8 symbols x 5 bits
_BODY_LENGTH: Final = 15
_NUMBER_LENGTH: Final = 16
_EARLIEST_YEAR: Final = 1900
_TYPE_CODES: Final[dict[str, str]] = {"title": "T", "skill": "S"}
# Redrawing when the check would be "*" fails with probability 1/37; 64 failures in a row means a broken rng.
_MAX_DRAWS: Final = 64

_REGION: Final = re.compile(r"[A-Z]{2}")
_YEAR: Final = re.compile(r"[0-9]{4}")
_SERIAL: Final = re.compile(f"[{crockford.ALPHABET}]{{{_SERIAL_LENGTH}}}")
_CHECK: Final = re.compile(r"[0-9A-Z]")


def check_char(body15: str) -> str:
    """The check character for the first 15 characters (0-9, A-Z) of a certificate number.

    Raises InvalidCertificateNumber for the 1 in 37 bodies whose MOD 37-2 check would be "*": no number has them.
    """
    if len(body15) != _BODY_LENGTH:
        raise InvalidCertificateNumber(
            _("need the first 15 characters of a certificate number, got {count}", count=len(body15))
        )
    if any(char not in _SYMBOLS for char in body15):
        raise InvalidCertificateNumber(_("a certificate number contains only the digits 0-9 and the letters A-Z"))
    value = _mod37_2(body15)
    if value == len(_SYMBOLS):
        raise InvalidCertificateNumber(_("these 15 characters have no check character in 0-9A-Z and are never issued"))
    return _SYMBOLS[value]


def normalize_number(raw: str) -> str:
    """Return the canonical, ungrouped number or raise InvalidCertificateNumber."""
    number = crockford.folded(raw)  # as a Chinese input method types it too: full-width, long dashes
    # Checked before upper() so that no non-ASCII letter (e.g. "ı") can upper-case its way into a valid number.
    if not number.isascii():
        raise InvalidCertificateNumber(_("certificate number may contain only letters A-Z, digits, spaces and hyphens"))
    number = number.upper()
    if len(number) != _NUMBER_LENGTH:
        raise InvalidCertificateNumber(
            _(
                "certificate number must be 16 characters (RR-T-YYYY-SSSSSSSS-C) not counting hyphens, got {count}",
                count=len(number),
            )
        )
    region, cert_type, year, serial, check = number[:2], number[2], number[3:7], number[7:15], number[15]
    if not _REGION.fullmatch(region):
        raise InvalidCertificateNumber(_("region (characters 1-2) must be two letters"))
    if cert_type not in _TYPE_CODES.values():
        raise InvalidCertificateNumber(_("type (character 3) must be T (title) or S (skill)"))
    if not _YEAR.fullmatch(year) or int(year) < _EARLIEST_YEAR:
        raise InvalidCertificateNumber(
            _("year (characters 4-7) must be a four-digit year from {earliest}", earliest=_EARLIEST_YEAR)
        )
    if not _SERIAL.fullmatch(serial):
        raise InvalidCertificateNumber(_("serial (characters 8-15) may use 0-9 and A-Z except I, L, O and U"))
    if not _CHECK.fullmatch(check):
        raise InvalidCertificateNumber(_("check character (the last one) must be a digit or a letter"))
    if _mod37_2(number[:_BODY_LENGTH]) != _SYMBOLS.index(check):
        raise InvalidCertificateNumber(
            _("check character is wrong: a character of the number is mistyped; compare it with the certificate")
        )
    return number


def format_number(number: str) -> str:
    """The number grouped for print and display, e.g. ``BJ-T-2025-QKCCH3GN-X``; accepts any form normalize accepts."""
    return group_canonical(normalize_number(number))


def group_canonical(canonical: str) -> str:
    """``format_number`` for a number already canonical (as ``new_number`` returns it), without checking it again."""
    return f"{canonical[:2]}-{canonical[2]}-{canonical[3:7]}-{canonical[7:15]}-{canonical[15]}"


def is_valid_number(raw: str) -> bool:
    """Whether ``raw`` normalises to a well-formed number with a correct check character."""
    try:
        normalize_number(raw)
    except InvalidCertificateNumber:
        return False
    return True


def new_number(
    *,
    region: str,
    cert_type: Literal["title", "skill"],
    year: int,
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> str:
    """Mint a fresh number in canonical (ungrouped) form; uniqueness is the caller's to enforce on insert."""
    return new_numbers(region=region, kinds=[(cert_type, year)], rng=rng)[0]


def new_numbers(
    *,
    region: str,
    kinds: Sequence[tuple[Literal["title", "skill"], int]],
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> list[str]:
    """A fresh number for each (type, year) of ``kinds``, in order: every serial from one call to ``rng`` (a batch of
    10,000 asks the system's random source once, not 10,000 times); a serial whose check would be "*" is drawn again
    on its own. Where no serial is redrawn, the same numbers, character for character, as ``new_number`` one by one
    makes from the same bytes."""
    prefixes = {kind: _prefix(region, *kind) for kind in set(kinds)}
    remainders = {kind: _mod37_2_remainder(prefix) for kind, prefix in prefixes.items()}  # the prefix's share, once
    serials = _crockford_serials(rng(_SERIAL_BYTES * len(kinds)), len(kinds))
    numbers: list[str] = []
    for kind, serial in zip(kinds, serials, strict=True):
        for _draw in range(_MAX_DRAWS):
            value = (38 - _mod37_2_remainder(serial, remainders[kind])) % 37
            if value < len(_SYMBOLS):
                numbers.append(prefixes[kind] + serial + _SYMBOLS[value])
                break
            serial = _crockford_serials(rng(_SERIAL_BYTES), 1)[0]
        else:
            raise RuntimeError(f"rng produced {_MAX_DRAWS} serials in a row without a check character in 0-9A-Z")
    return numbers


def _prefix(region: str, cert_type: str, year: int) -> str:
    if not _REGION.fullmatch(region):
        raise ValueError(f"region must be two upper-case letters A-Z, got {region!r}")
    if cert_type not in _TYPE_CODES:
        raise ValueError(f"cert_type must be 'title' or 'skill', got {cert_type!r}")
    if not _EARLIEST_YEAR <= year <= 9999:
        raise ValueError(f"year must be between {_EARLIEST_YEAR} and 9999, got {year}")
    return f"{region}{_TYPE_CODES[cert_type]}{year:04d}"


def _mod37_2(body: str) -> int:
    """ISO/IEC 7064 MOD 37-2 check value (0-36) of ``body``, whose characters must all be in 0-9A-Z."""
    return (38 - _mod37_2_remainder(body)) % 37


def _mod37_2_remainder(chars: str, remainder: int = 0) -> int:
    """The running remainder of MOD 37-2 after ``chars``, starting from ``remainder`` (that of the characters before
    them): the check value of ``a + b`` is ``(38 - _mod37_2_remainder(b, _mod37_2_remainder(a))) % 37``."""
    for char in chars:
        remainder = (remainder + _SYMBOL_VALUES[char]) * 2 % 37
    return remainder


def _crockford_serials(random_bytes: bytes, count: int) -> list[str]:
    """``count`` serials of 8 characters, 5 bytes each, in order, in Crockford's base32."""
    if len(random_bytes) != _SERIAL_BYTES * count:
        raise ValueError(f"rng must return exactly {_SERIAL_BYTES * count} bytes, got {len(random_bytes)}")
    text = crockford.encode(random_bytes)
    return [text[start : start + _SERIAL_LENGTH] for start in range(0, len(text), _SERIAL_LENGTH)]
