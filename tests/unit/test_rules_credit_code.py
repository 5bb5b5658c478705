"""Unified social credit codes: the exact words an administrator is told when a body's code is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from registry.errors import InvalidCreditCode
from registry.issuers.credit_code import credit_code_check_char, normalize_credit_code

HUAWEI = "914403001922038216"  # 华为技术有限公司, as published


def _refusal(check: Callable[[], object]) -> str:
    with pytest.raises(InvalidCreditCode) as refused:
        check()
    return str(refused.value)


def test_check_char_says_how_many_characters_it_was_given() -> None:
    assert _refusal(lambda: credit_code_check_char("9144")) == "need the first 17 characters of a credit code, got 4"


def test_a_code_with_a_full_width_digit_is_refused_before_upper_casing() -> None:
    assert (
        _refusal(lambda: normalize_credit_code("91440300192203821６"))
        == "credit code may contain only the digits 0-9 and the letters A-Z"
    )


def test_a_code_of_the_wrong_length_says_how_long_it_was() -> None:
    assert _refusal(lambda: normalize_credit_code(HUAWEI[:17])) == "credit code must be 18 characters, got 17"


def test_a_code_with_letters_outside_the_alphabet_names_each_of_them_once_in_order() -> None:
    assert _refusal(lambda: normalize_credit_code("91440300O922I3O216")) == (
        "credit code contains 'I', 'O'; only 0-9 and A-Z except I, O, S, V and Z are used (letters are upper case)"
    )


def test_a_letter_in_the_region_code_is_refused_even_with_a_matching_check_character() -> None:
    first17 = "91A40300192203821"  # character 3, the first of the region code, is a letter
    code = first17 + credit_code_check_char(first17)
    assert _refusal(lambda: normalize_credit_code(code)) == (
        "characters 3-8 of a credit code (the administrative region code) must be digits"
    )


def test_a_letter_in_the_last_place_of_the_region_code_is_refused_too() -> None:
    first17 = "9144030A192203821"
    code = first17 + credit_code_check_char(first17)
    assert _refusal(lambda: normalize_credit_code(code)) == (
        "characters 3-8 of a credit code (the administrative region code) must be digits"
    )


def test_a_mistyped_code_says_to_compare_it_with_the_licence() -> None:
    assert _refusal(lambda: normalize_credit_code(HUAWEI[:17] + "7")) == (
        "check character is wrong: a character of the code is mistyped; compare it with the licence"
    )
