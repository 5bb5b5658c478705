"""Identity documents a holder may present: validating a number to its canonical form, and masking it for display."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Final, assert_never

from registry import clock
from registry.errors import InvalidIdentityNumber
from registry.gb11643 import PROVINCE_CODES as _PROVINCE_CODES
from registry.gb11643 import RESIDENCE_PERMIT_CODES as _RESIDENCE_PERMIT_CODES
from registry.gb11643 import check_char as _gb11643_check_char
from registry.i18n import _


class IdType(StrEnum):
    RESIDENT_ID = "resident_id"
    PASSPORT = "passport"
    HK_MACAU_PERMIT = "hk_macau_permit"  # 港澳居民来往内地通行证
    TAIWAN_PERMIT = "taiwan_permit"  # 台湾居民来往大陆通行证
    FOREIGN_PERMANENT_RESIDENCE = "foreign_permanent_residence"  # 外国人永久居留身份证


_EARLIEST_BIRTH_DATE: Final = date(1900, 1, 1)

# Explicit [0-9] everywhere: \d would also accept Arabic-Indic and other Unicode digits.
_RESIDENT_ID_SHAPE: Final = re.compile(r"[0-9]{17}[0-9X]")
_PASSPORT_SHAPE: Final = re.compile(r"[A-Z0-9]{5,17}")
_HK_MACAU_SHAPE: Final = re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?")
_TAIWAN_SHAPE: Final = re.compile(r"[0-9]{8}(?:[0-9]{2})?")
_FOREIGN_PR_2017_SHAPE: Final = re.compile(r"[A-Z]{3}[0-9]{12}")
_FOREIGN_PR_2023_SHAPE: Final = re.compile(r"9[0-9]{16}[0-9X]")


def normalize_id_number(id_type: IdType, raw: str, *, today: date | None = None) -> str:
    """Return the canonical form of ``raw`` (whitespace removed, upper case) or raise InvalidIdentityNumber.

    ``today`` bounds resident-id birth dates; it defaults to the local date and exists so tests can pin it.
    """
    number = "".join(raw.split())
    # Checked before upper(): "ß".upper() is "SS" and "ı".upper() is "I", which would forge a plausible number.
    if not number.isascii():
        raise InvalidIdentityNumber(_("number may contain only the letters A-Z and the digits 0-9"))
    number = number.upper()
    if not number:
        raise InvalidIdentityNumber(_("number is empty"))
    match id_type:
        case IdType.RESIDENT_ID:
            return _validate_resident_id(number, today if today is not None else clock.today())
        case IdType.PASSPORT:
            return _validate_passport(number)
        case IdType.HK_MACAU_PERMIT:
            if not _HK_MACAU_SHAPE.fullmatch(number):
                raise InvalidIdentityNumber(
                    _("Hong Kong/Macao permit number must be H or M followed by 8 or 10 digits")
                )
            return number
        case IdType.TAIWAN_PERMIT:
            if not _TAIWAN_SHAPE.fullmatch(number):
                raise InvalidIdentityNumber(_("Taiwan permit number must be 8 digits (or 10 digits on older permits)"))
            return number
        case IdType.FOREIGN_PERMANENT_RESIDENCE:
            return _validate_foreign_permanent_residence(number)
        case _:
            assert_never(id_type)


def mask_id_number(id_type: IdType, number: str) -> str:
    """Mask a canonical number for display, keeping its length.

    Resident ids and 18-character permanent-residence numbers keep 2 leading and 2 trailing characters (the birth
    date sits in between); other documents keep 1 and 2; numbers shorter than 6 keep 1 and 1.
    """
    length = len(number)
    if length <= 2:
        # Keeping one character at each end would reveal the whole number.
        return "*" * length
    if length < 6:
        head, tail = 1, 1
    elif id_type == IdType.RESIDENT_ID or (id_type == IdType.FOREIGN_PERMANENT_RESIDENCE and length == 18):
        head, tail = 2, 2
    else:
        head, tail = 1, 2
    return number[:head] + "*" * (length - head - tail) + number[length - tail :]


def birth_date(number: str) -> date:
    """The birth date encoded in characters 7-14 (YYYYMMDD) of an 18-character resident id."""
    digits = number[6:14]
    if len(number) != 18 or not (digits.isascii() and digits.isdigit()):
        raise InvalidIdentityNumber(_("birth date must be 8 digits at positions 7-14 of an 18-character number"))
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise InvalidIdentityNumber(_("the birth date in it is not a real date")) from None


def _validate_resident_id(number: str, today: date) -> str:
    if len(number) == 15 and number.isdigit():
        raise InvalidIdentityNumber(
            _("this is a 15-digit first-generation resident id; use the 18-digit number on the current card")
        )
    if len(number) != 18:
        raise InvalidIdentityNumber(_("resident id must be 18 characters, got {count}", count=len(number)))
    if not _RESIDENT_ID_SHAPE.fullmatch(number):
        raise InvalidIdentityNumber(_("resident id must be 17 digits followed by a digit or X"))
    _check_region(number)
    born = birth_date(number)
    if born < _EARLIEST_BIRTH_DATE:
        raise InvalidIdentityNumber(_("birth date is before 1900-01-01"))
    if born > today:
        raise InvalidIdentityNumber(_("birth date is in the future"))
    # Checked last so that a mistyped region or date gets the more specific message above.
    if _gb11643_check_char(number[:17]) != number[17]:
        raise InvalidIdentityNumber(
            _("check character is wrong: a character of the number is mistyped; compare it with the document")
        )
    return number


def _check_region(number: str) -> None:
    province = int(number[:2])
    if province in _RESIDENCE_PERMIT_CODES:
        if number[2:6] != "0000":
            raise InvalidIdentityNumber(
                _(
                    "region code {region} is not valid; residence permits for Hong Kong, Macao and Taiwan residents "
                    "use {province}0000",
                    region=number[:6],
                    province=number[:2],
                )
            )
    elif province in _PROVINCE_CODES:
        # 01-70 are prefectures, 90 the county-level cities run directly by the province; 00 is no place at all.
        if not 1 <= int(number[2:4]) <= 90:
            raise InvalidIdentityNumber(
                _("region code {region} has no valid prefecture part (digits 3-4)", region=number[:6])
            )
    else:
        raise InvalidIdentityNumber(
            _("region prefix {province} is not a Chinese administrative region", province=number[:2])
        )


def _validate_passport(number: str) -> str:
    if not _PASSPORT_SHAPE.fullmatch(number):
        raise InvalidIdentityNumber(_("passport number must be 5 to 17 letters A-Z or digits"))
    if not any(char.isdigit() for char in number):
        raise InvalidIdentityNumber(_("passport number must contain at least one digit"))
    return number


def _validate_foreign_permanent_residence(number: str) -> str:
    if len(number) == 15:
        if not _FOREIGN_PR_2017_SHAPE.fullmatch(number):
            raise InvalidIdentityNumber(
                _("15-character permanent residence number must be a 3-letter nationality code followed by 12 digits")
            )
        return number
    if len(number) == 18:
        if not _FOREIGN_PR_2023_SHAPE.fullmatch(number):
            raise InvalidIdentityNumber(
                _("18-character permanent residence number must be 9 followed by 16 digits and a digit or X")
            )
        if _gb11643_check_char(number[:17]) != number[17]:
            raise InvalidIdentityNumber(
                _("check character is wrong: a character of the number is mistyped; compare it with the document")
            )
        return number
    raise InvalidIdentityNumber(
        _("permanent residence number must be 15 or 18 characters, got {count}", count=len(number))
    )
