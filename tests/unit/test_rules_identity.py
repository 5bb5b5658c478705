"""Identity numbers at the edges of each document's format, and the exact words a holder or an issuing clerk is told
when a number is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import cast

import pytest

from registry import gb11643
from registry.errors import InvalidIdentityNumber
from registry.holders.identity import IdType, birth_date, mask_id_number, normalize_id_number
from tests.unit.test_identity import resident_id, with_check_char, wrong_check_char

TODAY = date(2025, 6, 1)
MISTYPED = "check character is wrong: a character of the number is mistyped; compare it with the document"


def _refusal(check: Callable[[], object]) -> str:
    with pytest.raises(InvalidIdentityNumber) as refused:
        check()
    return str(refused.value)


def _said(id_type: IdType, raw: str) -> str:
    return _refusal(lambda: normalize_id_number(id_type, raw, today=TODAY))


@pytest.mark.parametrize(
    ("id_type", "raw", "said"),
    [
        pytest.param(
            IdType.PASSPORT,
            "E１２３４５６７８",
            "number may contain only the letters A-Z and the digits 0-9",
            id="full-width",
        ),
        pytest.param(IdType.PASSPORT, " \t ", "number is empty", id="only whitespace"),
        pytest.param(
            IdType.HK_MACAU_PERMIT,
            "H1234567",
            "Hong Kong/Macao permit number must be H or M followed by 8 or 10 digits",
            id="hk-macau",
        ),
        pytest.param(
            IdType.TAIWAN_PERMIT, "1234567", "Taiwan permit number must be 8 digits (or 10 digits on older permits)"
        ),
        pytest.param(IdType.PASSPORT, "E123", "passport number must be 5 to 17 letters A-Z or digits", id="passport"),
        pytest.param(IdType.PASSPORT, "ABCDEF", "passport number must contain at least one digit", id="no digit"),
        pytest.param(
            IdType.FOREIGN_PERMANENT_RESIDENCE,
            "US1100850100120",
            "15-character permanent residence number must be a 3-letter nationality code followed by 12 digits",
            id="2017 permit",
        ),
        pytest.param(
            IdType.FOREIGN_PERMANENT_RESIDENCE,
            "815600019900307012",
            "18-character permanent residence number must be 9 followed by 16 digits and a digit or X",
            id="2023 permit",
        ),
        pytest.param(
            IdType.FOREIGN_PERMANENT_RESIDENCE,
            "9156000199003070",
            "permanent residence number must be 15 or 18 characters, got 16",
            id="permit length",
        ),
    ],
)
def test_a_refused_document_number_says_exactly_what_is_wrong(id_type: IdType, raw: str, said: str) -> None:
    assert _said(id_type, raw) == said


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        pytest.param(
            "110105900307123",
            "this is a 15-digit first-generation resident id; use the 18-digit number on the current card",
            id="first generation",
        ),
        pytest.param("11010519900307123", "resident id must be 18 characters, got 17", id="17 characters"),
        pytest.param("1101051990030712A3", "resident id must be 17 digits followed by a digit or X", id="letter"),
        pytest.param(
            resident_id(region="810100"),
            "region code 810100 is not valid; residence permits for Hong Kong, Macao and Taiwan residents use 810000",
            id="residence permit",
        ),
        pytest.param(
            resident_id(region="110005"),
            "region code 110005 has no valid prefecture part (digits 3-4)",
            id="prefecture",
        ),
        pytest.param(
            resident_id(region="710101"), "region prefix 71 is not a Chinese administrative region", id="province"
        ),
        pytest.param(resident_id(born="18991231"), "birth date is before 1900-01-01", id="before 1900"),
        pytest.param(resident_id(born="20250602"), "birth date is in the future", id="tomorrow"),
        pytest.param(wrong_check_char(resident_id()), MISTYPED, id="mistyped"),
    ],
)
def test_a_refused_resident_id_says_exactly_what_is_wrong(raw: str, said: str) -> None:
    assert _said(IdType.RESIDENT_ID, raw) == said


def test_a_mistyped_2023_permanent_residence_number_says_to_compare_it_with_the_document() -> None:
    number = with_check_char("9156000199003070" + "1")
    assert normalize_id_number(IdType.FOREIGN_PERMANENT_RESIDENCE, number) == number
    assert _said(IdType.FOREIGN_PERMANENT_RESIDENCE, wrong_check_char(number)) == MISTYPED


def test_birth_date_refuses_a_number_of_another_length_in_words() -> None:
    assert _refusal(lambda: birth_date("110105491231002")) == (
        "birth date must be 8 digits at positions 7-14 of an 18-character number"
    )


def test_birth_date_refuses_digits_of_another_script_even_though_python_can_read_them() -> None:
    # Arabic-Indic ١٩٨٠٠١٠١ is 19800101 to int(); only ASCII digits make a birth date.
    assert _refusal(lambda: birth_date("110105" + "\u0661\u0669\u0668\u0660\u0660\u0661\u0660\u0661" + "0013")) == (
        "birth date must be 8 digits at positions 7-14 of an 18-character number"
    )


def test_birth_date_refuses_ascii_letters_in_the_date() -> None:
    assert _refusal(lambda: birth_date("1101051980AB010013")) == (
        "birth date must be 8 digits at positions 7-14 of an 18-character number"
    )


def test_birth_date_says_when_the_date_is_not_on_the_calendar() -> None:
    assert _refusal(lambda: birth_date("110105" + "19900230" + "0013")) == "the birth date in it is not a real date"


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        pytest.param("E12", "E*2", id="3 characters keep one at each end"),
        pytest.param("E1234", "E***4", id="5 characters keep one at each end"),
        pytest.param("E12345", "E***45", id="6 characters keep the first and the last two"),
    ],
)
def test_short_passport_numbers_are_masked_by_their_length(number: str, masked: str) -> None:
    assert mask_id_number(IdType.PASSPORT, number) == masked


def test_an_unknown_document_type_is_a_programming_error_never_an_accepted_number() -> None:
    with pytest.raises(AssertionError, match="driving_licence"):
        normalize_id_number(cast(IdType, "driving_licence"), "D12345678")


@pytest.mark.parametrize(
    ("first17", "check"),
    [("11010519491231002", "X"), ("44052418800101001", "4"), ("00000000000000000", "1"), ("99999999999999999", "3")],
)
def test_the_check_character_is_iso_7064_mod_11_2_over_the_seventeen_digits(first17: str, check: str) -> None:
    assert gb11643.check_char(first17) == check


@pytest.mark.parametrize(
    "first17", ["1101051949123100", "110105194912310021", "1101051949123100X", "١١٠١٠٥١٩٤٩١٢٣١٠٠٢"]
)
def test_the_check_character_is_only_computed_over_seventeen_ascii_digits(first17: str) -> None:
    with pytest.raises(ValueError, match=r"17 digits|'ascii' codec"):
        gb11643.check_char(first17)
