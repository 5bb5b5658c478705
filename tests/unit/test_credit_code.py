"""Stories about the unified social credit code that identifies an evaluation body."""

from __future__ import annotations

import pytest

from registry.errors import InvalidCreditCode
from registry.issuers.credit_code import credit_code_check_char, normalize_credit_code

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

# Published codes of well-known companies, recalled from public business-registration records. Memory alone would
# not be enough, but a wrong recollection passes the check with odds of 1 in 31, and all of these do pass.
PUBLISHED_CODES = [
    "914403001922038216",  # 华为技术有限公司
    "91440300708461136T",  # 深圳市腾讯计算机系统有限公司
    "91110108551385082Q",  # 北京小米科技有限责任公司
    "91310000MA1FL1MMXL",  # a Shanghai company; letters throughout the body
    "9144030071526726XG",  # a Shenzhen company; an X inside the body
]


@pytest.mark.parametrize("code", PUBLISHED_CODES)
def test_a_published_credit_code_is_accepted_unchanged(code: str) -> None:
    assert normalize_credit_code(code) == code


@pytest.mark.parametrize("code", PUBLISHED_CODES)
def test_the_check_character_of_a_published_code_is_recomputed_exactly(code: str) -> None:
    assert credit_code_check_char(code[:17]) == code[17]


def test_a_code_typed_in_lower_case_with_spaces_is_normalised() -> None:
    assert normalize_credit_code("  9131 0000 ma1f l1mm xl \n") == "91310000MA1FL1MMXL"


def test_a_mistyped_check_character_is_rejected() -> None:
    with pytest.raises(InvalidCreditCode, match="check character is wrong"):
        normalize_credit_code("91440300708461136U")


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
def test_letters_that_credit_codes_never_use_are_rejected_by_name(letter: str) -> None:
    code = "91310000MA1FL1MM" + letter + "L"

    with pytest.raises(InvalidCreditCode, match=f"'{letter}'"):
        normalize_credit_code(code)


def test_punctuation_is_rejected_rather_than_ignored() -> None:
    with pytest.raises(InvalidCreditCode, match="'-'"):
        normalize_credit_code("9144030019-2203821")


@pytest.mark.parametrize("code", ["91440300192203821", "9144030019220382160", "440301000012345", ""])
def test_a_code_of_the_wrong_length_is_rejected(code: str) -> None:
    with pytest.raises(InvalidCreditCode, match="must be 18 characters"):
        normalize_credit_code(code)


def test_a_region_code_containing_letters_is_rejected() -> None:
    first17 = "9144A300192203821"
    code = first17 + credit_code_check_char(first17)

    with pytest.raises(InvalidCreditCode, match="region code"):
        normalize_credit_code(code)


def test_non_ascii_characters_are_rejected_before_upper_casing() -> None:
    with pytest.raises(InvalidCreditCode, match="only the digits 0-9 and the letters A-Z"):
        normalize_credit_code("91440300708461136ı")


def test_every_single_character_typo_in_a_published_code_is_caught() -> None:
    code = "91310000MA1FL1MMXL"
    for position in range(18):
        for replacement in ALPHABET:
            if replacement == code[position]:
                continue
            typo = code[:position] + replacement + code[position + 1 :]
            with pytest.raises(InvalidCreditCode):
                normalize_credit_code(typo)


def test_the_check_char_function_refuses_input_that_is_not_17_code_characters() -> None:
    with pytest.raises(InvalidCreditCode, match="first 17 characters"):
        credit_code_check_char("9144030019220382")
    with pytest.raises(InvalidCreditCode, match="'O'"):
        credit_code_check_char("91440300192203O21")
