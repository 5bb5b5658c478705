"""Stories about the identity numbers a holder can present, and how they are masked for display."""

from __future__ import annotations

from datetime import date

import pytest

from registry.errors import InvalidIdentityNumber
from registry.holders.identity import (
    IdType,
    birth_date,
    mask_id_number,
    normalize_id_number,
)

TODAY = date(2025, 6, 1)


def with_check_char(first17: str) -> str:
    """Complete a number the ISO 7064 MOD 11-2 way, independently of the module's weight table.

    GB 11643 is MOD 11-2: the weighted sum with weights 2**17 .. 2**0 mod 11 must be 1, and 10 is written X.
    """
    partial = sum(int(digit) * pow(2, 17 - position, 11) for position, digit in enumerate(first17))
    check = next(value for value in range(11) if (partial + value) % 11 == 1)
    return first17 + ("X" if check == 10 else str(check))


def resident_id(region: str = "110105", born: str = "19900307", sequence: str = "123") -> str:
    return with_check_char(region + born + sequence)


def wrong_check_char(number: str) -> str:
    replacement = "0" if number[-1] != "0" else "1"
    return number[:-1] + replacement


def normalize_resident_id(raw: str) -> str:
    return normalize_id_number(IdType.RESIDENT_ID, raw, today=TODAY)


def test_id_types_keep_the_names_that_are_stored_in_the_database() -> None:
    assert [member.value for member in IdType] == [
        "resident_id",
        "passport",
        "hk_macau_permit",
        "taiwan_permit",
        "foreign_permanent_residence",
    ]


def test_the_worked_example_printed_in_gb_11643_is_accepted() -> None:
    # Not a real person's number: it is the standard's own example, and pins the check algorithm independently.
    assert normalize_resident_id("11010519491231002X") == "11010519491231002X"


def test_a_holder_with_a_valid_resident_id_gets_it_back_unchanged() -> None:
    number = resident_id()

    assert normalize_resident_id(number) == number


def test_a_lowercase_x_check_character_is_accepted_and_upper_cased() -> None:
    number = resident_id(sequence="002", born="19491231", region="110105")
    assert number.endswith("X")

    assert normalize_resident_id(number.lower()) == number


def test_whitespace_around_and_inside_the_number_is_removed() -> None:
    number = resident_id()
    typed = f"  {number[:6]} {number[6:14]}\t{number[14:]}\u3000\n"

    assert normalize_resident_id(typed) == number


def test_a_mistyped_check_character_is_rejected() -> None:
    with pytest.raises(InvalidIdentityNumber, match="check character is wrong"):
        normalize_resident_id(wrong_check_char(resident_id()))


def test_a_single_mistyped_sequence_digit_is_caught_by_the_check_character() -> None:
    number = resident_id(sequence="123")
    typo = number[:15] + "9" + number[16:]

    with pytest.raises(InvalidIdentityNumber, match="check character is wrong"):
        normalize_resident_id(typo)


@pytest.mark.parametrize("born", ["19990230", "20000231", "19990431", "20230229", "19991301", "19990001", "19990100"])
def test_a_birth_date_that_is_not_on_the_calendar_is_rejected(born: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match="birth date in it is not a real date"):
        normalize_resident_id(resident_id(born=born))


def test_a_leap_day_birth_date_is_accepted() -> None:
    number = resident_id(born="20000229")

    assert normalize_resident_id(number) == number
    assert birth_date(number) == date(2000, 2, 29)


def test_a_birth_date_after_today_is_rejected() -> None:
    with pytest.raises(InvalidIdentityNumber, match="birth date is in the future"):
        normalize_resident_id(resident_id(born="20250602"))


def test_a_birth_date_of_today_is_accepted() -> None:
    number = resident_id(born="20250601")

    assert normalize_resident_id(number) == number


def test_the_future_is_measured_from_the_real_date_when_no_today_is_given() -> None:
    with pytest.raises(InvalidIdentityNumber, match="birth date is in the future"):
        normalize_id_number(IdType.RESIDENT_ID, resident_id(born="29990101"))


def test_a_birth_date_before_1900_is_rejected() -> None:
    with pytest.raises(InvalidIdentityNumber, match="before 1900-01-01"):
        normalize_resident_id(resident_id(born="18991231"))


def test_the_first_of_january_1900_is_the_earliest_birth_date_accepted() -> None:
    number = resident_id(born="19000101")

    assert normalize_resident_id(number) == number


@pytest.mark.parametrize("prefix", ["99", "00", "10", "16", "24", "38", "47", "55", "66", "71", "80", "84"])
def test_a_region_prefix_that_is_no_province_is_rejected(prefix: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match=f"region prefix {prefix} is not a Chinese administrative region"):
        normalize_resident_id(resident_id(region=prefix + "0105"))


@pytest.mark.parametrize("region", ["110105", "150102", "230103", "370102", "460105", "540102", "650102", "429004"])
def test_numbers_from_every_province_group_and_province_run_cities_are_accepted(region: str) -> None:
    number = resident_id(region=region)

    assert normalize_resident_id(number) == number


@pytest.mark.parametrize("region", ["110001", "440000", "429101"])
def test_a_region_code_without_a_prefecture_part_is_rejected(region: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match=f"region code {region} has no valid prefecture part"):
        normalize_resident_id(resident_id(region=region))


@pytest.mark.parametrize("region", ["810000", "820000", "830000"])
def test_residence_permits_of_hong_kong_macao_and_taiwan_residents_are_accepted(region: str) -> None:
    number = resident_id(region=region)

    assert normalize_resident_id(number) == number


@pytest.mark.parametrize("region", ["810100", "820001", "831000"])
def test_a_residence_permit_with_more_than_a_province_code_is_rejected(region: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match=f"use {region[:2]}0000"):
        normalize_resident_id(resident_id(region=region))


def test_a_15_digit_first_generation_number_is_refused_with_a_pointer_to_the_18_digit_one() -> None:
    with pytest.raises(InvalidIdentityNumber, match="use the 18-digit number"):
        normalize_resident_id("110105491231002")


@pytest.mark.parametrize("raw", ["11010519900307123", "1101051990030712345", ""])
def test_a_resident_id_of_the_wrong_length_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidIdentityNumber):
        normalize_resident_id(raw)


def test_a_letter_other_than_a_final_x_is_rejected() -> None:
    with pytest.raises(InvalidIdentityNumber, match="17 digits followed by a digit or X"):
        normalize_resident_id("1101051990030712X3")


def test_digits_from_other_scripts_are_not_mistaken_for_ascii_digits() -> None:
    arabic_indic = resident_id().replace("1", "\u0661")

    with pytest.raises(InvalidIdentityNumber, match="only the letters A-Z and the digits 0-9"):
        normalize_resident_id(arabic_indic)


def test_birth_date_reads_positions_7_to_14() -> None:
    assert birth_date("11010519491231002X") == date(1949, 12, 31)


def test_birth_date_refuses_a_number_that_is_too_short() -> None:
    with pytest.raises(InvalidIdentityNumber, match="18-character number"):
        birth_date("110105491231002")


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("E12345678", "E12345678"),
        ("g1234567", "G1234567"),
        (" EA 1234567 ", "EA1234567"),
        ("12345", "12345"),
        ("AB1234567890CDEFG", "AB1234567890CDEFG"),
    ],
)
def test_a_passport_number_of_letters_and_digits_is_accepted(raw: str, canonical: str) -> None:
    assert normalize_id_number(IdType.PASSPORT, raw) == canonical


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("E123", "5 to 17"),
        ("AB1234567890CDEFGH", "5 to 17"),
        ("E1234-5678", "5 to 17"),
        ("ABCDEFGH", "at least one digit"),
        ("E1234ß678", "only the letters A-Z"),
        ("", "empty"),
    ],
)
def test_a_malformed_passport_number_is_rejected(raw: str, reason: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match=reason):
        normalize_id_number(IdType.PASSPORT, raw)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("H12345678", "H12345678"), ("m1234567890", "M1234567890"), ("H 1234 5678", "H12345678")],
)
def test_a_hong_kong_or_macao_permit_number_is_accepted(raw: str, canonical: str) -> None:
    assert normalize_id_number(IdType.HK_MACAU_PERMIT, raw) == canonical


@pytest.mark.parametrize("raw", ["H1234567", "H123456789", "M12345678901", "K12345678", "12345678", "HH1234567"])
def test_a_malformed_hong_kong_or_macao_permit_number_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match="H or M followed by 8 or 10 digits"):
        normalize_id_number(IdType.HK_MACAU_PERMIT, raw)


@pytest.mark.parametrize("raw", ["12345678", "1234567890", " 1234 5678 "])
def test_a_taiwan_permit_number_of_8_or_10_digits_is_accepted(raw: str) -> None:
    assert normalize_id_number(IdType.TAIWAN_PERMIT, raw) == "".join(raw.split())


@pytest.mark.parametrize("raw", ["1234567", "123456789", "12345678901", "A1234567", "T12345678"])
def test_a_malformed_taiwan_permit_number_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match="8 digits"):
        normalize_id_number(IdType.TAIWAN_PERMIT, raw)


def test_a_2017_style_permanent_residence_number_is_accepted() -> None:
    assert normalize_id_number(IdType.FOREIGN_PERMANENT_RESIDENCE, "usa110085010012") == "USA110085010012"


def test_a_2023_style_permanent_residence_number_is_accepted() -> None:
    number = with_check_char("93115619850101001")

    assert normalize_id_number(IdType.FOREIGN_PERMANENT_RESIDENCE, number) == number


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("US1110085010012", "3-letter nationality code followed by 12 digits"),
        ("USA11008501001X", "3-letter nationality code followed by 12 digits"),
        (with_check_char("83115619850101001"), "9 followed by 16 digits"),
        (wrong_check_char(with_check_char("93115619850101001")), "check character is wrong"),
        ("USA1100850100123", "15 or 18 characters"),
    ],
)
def test_a_malformed_permanent_residence_number_is_rejected(raw: str, reason: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match=reason):
        normalize_id_number(IdType.FOREIGN_PERMANENT_RESIDENCE, raw)


def test_a_resident_id_is_masked_to_its_first_and_last_two_characters() -> None:
    assert mask_id_number(IdType.RESIDENT_ID, "11010519491231002X") == "11" + "*" * 14 + "2X"


@pytest.mark.parametrize("born", ["19491231", "20000229", "19900307", "19000101", "20250601"])
@pytest.mark.parametrize("region", ["110105", "810000", "429004"])
def test_a_masked_resident_id_never_shows_the_birth_date(region: str, born: str) -> None:
    number = resident_id(region=region, born=born)

    masked = mask_id_number(IdType.RESIDENT_ID, number)

    assert born not in masked
    assert masked[2:16] == "*" * 14
    assert len(masked) == len(number)


def test_a_2023_permanent_residence_number_is_masked_like_a_resident_id() -> None:
    number = with_check_char("93115619850101001")

    masked = mask_id_number(IdType.FOREIGN_PERMANENT_RESIDENCE, number)

    assert masked == number[:2] + "*" * 14 + number[-2:]
    assert "19850101" not in masked


@pytest.mark.parametrize(
    ("id_type", "number", "masked"),
    [
        (IdType.PASSPORT, "E12345678", "E******78"),
        (IdType.PASSPORT, "12345", "1***5"),
        (IdType.HK_MACAU_PERMIT, "H12345678", "H******78"),
        (IdType.HK_MACAU_PERMIT, "M1234567890", "M********90"),
        (IdType.TAIWAN_PERMIT, "12345678", "1*****78"),
        (IdType.FOREIGN_PERMANENT_RESIDENCE, "USA110085010012", "U************12"),
    ],
)
def test_other_documents_keep_their_first_and_last_two_characters(id_type: IdType, number: str, masked: str) -> None:
    assert mask_id_number(id_type, number) == masked
    assert len(masked) == len(number)


@pytest.mark.parametrize(("number", "masked"), [("AB", "**"), ("A", "*"), ("", "")])
def test_numbers_too_short_to_mask_partially_are_masked_entirely(number: str, masked: str) -> None:
    assert mask_id_number(IdType.PASSPORT, number) == masked


def test_an_id_type_read_back_from_the_database_as_plain_text_masks_the_same_way() -> None:
    number = resident_id()

    assert mask_id_number(IdType("resident_id"), number) == mask_id_number(IdType.RESIDENT_ID, number)
    assert mask_id_number("resident_id", number) == number[:2] + "*" * 14 + number[-2:]  # type: ignore[arg-type]
