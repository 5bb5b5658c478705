"""Unified social credit codes (统一社会信用代码, GB 32100-2015): validating the code that identifies an issuer."""

from __future__ import annotations

from typing import Final

from registry.errors import InvalidCreditCode
from registry.i18n import _

# 31 symbols: I, O, Z, S and V are left out because they are easily confused with 1, 0, 2, 5 and U.
_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_LENGTH: Final = 18


def credit_code_check_char(first17: str) -> str:
    """The check character (position 18) for the first 17 characters of a credit code."""
    if len(first17) != _LENGTH - 1:
        raise InvalidCreditCode(_("need the first 17 characters of a credit code, got {count}", count=len(first17)))
    _reject_foreign_characters(first17)
    total = sum(_ALPHABET.index(char) * weight for char, weight in zip(first17, _WEIGHTS, strict=True))
    return _ALPHABET[(31 - total % 31) % 31]


def normalize_credit_code(raw: str) -> str:
    """Return the canonical code (whitespace removed, upper case) or raise InvalidCreditCode."""
    code = "".join(raw.split())
    # Checked before upper() so that no non-ASCII letter can upper-case its way into the alphabet.
    if not code.isascii():
        raise InvalidCreditCode(_("credit code may contain only the digits 0-9 and the letters A-Z"))
    code = code.upper()
    if len(code) != _LENGTH:
        raise InvalidCreditCode(_("credit code must be 18 characters, got {count}", count=len(code)))
    _reject_foreign_characters(code)
    if not code[2:8].isdigit():
        raise InvalidCreditCode(_("characters 3-8 of a credit code (the administrative region code) must be digits"))
    if credit_code_check_char(code[:17]) != code[17]:
        raise InvalidCreditCode(
            _("check character is wrong: a character of the code is mistyped; compare it with the licence")
        )
    return code


def _reject_foreign_characters(code: str) -> None:
    foreign = sorted({char for char in code if char not in _ALPHABET})
    if foreign:
        shown = ", ".join(repr(char) for char in foreign)
        raise InvalidCreditCode(
            _(
                "credit code contains {shown}; only 0-9 and A-Z except I, O, S, V and Z are used "
                "(letters are upper case)",
                shown=shown,
            )
        )
