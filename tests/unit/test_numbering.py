"""Stories about certificate numbers: minting them, printing them, and catching the typos people make reading them."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from registry.certificates.numbering import (
    _mod37_2,
    check_char,
    format_number,
    is_valid_number,
    new_number,
    normalize_number,
)
from registry.errors import InvalidCertificateNumber

SYMBOLS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Minted by new_number; chosen to cover both types, several regions and years, and repeated characters.
SAMPLES = [
    "BJT2025SM3JSP32P",
    "TJS2024YPRPA8MHR",
    "HET1999EEMVXX6WY",
    "GDS2030ZMZYPF4QO",
    "BJT2025000000003",
    "BJT2025ZZZZZZZZO",
]


def constant_rng(value: int) -> Callable[[int], bytes]:
    def rng(size: int) -> bytes:
        return value.to_bytes(size, "big")

    return rng


def passes_check(number: str) -> bool:
    """The check-character test alone, without the shape rules, so that every substitution is judged by it."""
    try:
        return check_char(number[:15]) == number[15]
    except InvalidCertificateNumber:
        return False  # the body has no check character at all, so no 16th character can be right


def serial_without_check_char(prefix: str) -> int:
    """The first 40-bit serial value whose body would need MOD 37-2's "*" as its check character."""
    for value in range(1 << 40):
        body = new_serial_body(prefix, value)
        try:
            check_char(body)
        except InvalidCertificateNumber:
            return value
    raise AssertionError("unreachable: 1 in 37 bodies has no check character")


def new_serial_body(prefix: str, value: int) -> str:
    crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return prefix + "".join(crockford[(value >> shift) & 31] for shift in range(35, -1, -5))


@pytest.mark.parametrize(
    ("payload", "check"),
    [
        ("G123498654321", "H"),
        ("A999922654321", "S"),
        ("A999922123458", "J"),
        ("A999916123456", "Q"),
        ("A999922012346", "*"),
        ("ZZZZ", "O"),
    ],
)
def test_the_check_computation_matches_published_iso_7064_mod_37_2_vectors(payload: str, check: str) -> None:
    # ISBT 128 donation numbers use ISO/IEC 7064 MOD 37-2; these check characters are printed in its guides.
    assert (SYMBOLS + "*")[_mod37_2(payload)] == check


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_sample_number_is_valid_and_canonical(sample: str) -> None:
    assert normalize_number(sample) == sample
    assert is_valid_number(sample)


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_single_character_substitution_is_detected(sample: str) -> None:
    for position in range(16):
        for replacement in SYMBOLS:
            if replacement == sample[position]:
                continue
            typo = sample[:position] + replacement + sample[position + 1 :]
            assert not passes_check(typo), typo
            assert not is_valid_number(typo), typo


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_adjacent_transposition_is_detected_including_the_check_character(sample: str) -> None:
    swaps = 0
    for position in range(15):
        left, right = sample[position], sample[position + 1]
        if left == right:
            continue
        typo = sample[:position] + right + left + sample[position + 2 :]
        swaps += 1
        assert not passes_check(typo), typo
        assert not is_valid_number(typo), typo
    assert swaps >= 8
    assert sample[14] != sample[15]  # so the swap with the check character itself was among those tried


@pytest.mark.parametrize("sample", SAMPLES)
def test_even_transpositions_of_characters_far_apart_are_detected(sample: str) -> None:
    for first in range(16):
        for second in range(first + 1, 16):
            if sample[first] == sample[second]:
                continue
            chars = list(sample)
            chars[first], chars[second] = chars[second], chars[first]
            assert not passes_check("".join(chars)), "".join(chars)


def test_detection_holds_for_every_possible_number_not_just_the_samples() -> None:
    # A number passes iff sum(value_i * weight_i) ≡ 1 (mod 37), weight_i = 2**(15 - i). A substitution changes the sum
    # by weight * (a - b) and a transposition by (weight_i - weight_j) * (a - b); 37 is prime and 0 < |a - b| < 37,
    # so both are non-zero exactly when every weight is non-zero and no two weights are equal mod 37.
    weights = [pow(2, 15 - position, 37) for position in range(16)]
    assert all(weight != 0 for weight in weights)
    assert len(set(weights)) == 16
    # ...and the implementation really is that weighted sum, for arbitrary bodies.
    generator = random.Random(7)
    for _ in range(500):
        body = "".join(generator.choice(SYMBOLS) for _ in range(15))
        value = _mod37_2(body)
        total = sum(SYMBOLS.index(char) * weight for char, weight in zip(body, weights[:15], strict=True)) + value
        assert total % 37 == 1


def test_a_new_title_number_has_the_documented_shape() -> None:
    number = new_number(region="BJ", cert_type="title", year=2025, rng=random.Random(0).randbytes)

    assert number == "BJT2025SM3JSP32P"
    assert format_number(number) == "BJ-T-2025-SM3JSP32-P"


def test_a_new_skill_number_carries_the_type_letter_s() -> None:
    number = new_number(region="TJ", cert_type="skill", year=2024, rng=constant_rng(0x0123456789))

    assert number == "TJS202404HMASW9K"


def test_the_serial_is_40_random_bits_written_in_crockford_base32() -> None:
    requested: list[int] = []

    def recording_rng(size: int) -> bytes:
        requested.append(size)
        return bytes(size)

    assert new_number(region="HE", cert_type="title", year=2020, rng=recording_rng)[7:15] == "00000000"
    assert requested == [5]
    assert new_number(region="HE", cert_type="title", year=2020, rng=constant_rng((1 << 40) - 1))[7:15] == "ZZZZZZZZ"


def test_new_numbers_use_the_secure_random_source_by_default() -> None:
    numbers = {new_number(region="BJ", cert_type="title", year=2025) for _ in range(200)}

    assert len(numbers) == 200
    assert all(is_valid_number(number) for number in numbers)


def test_a_serial_that_would_need_a_star_check_character_is_drawn_again() -> None:
    unusable = serial_without_check_char("BJT2025")
    draws = iter([unusable, 0])

    def rng(size: int) -> bytes:
        return next(draws).to_bytes(size, "big")

    assert new_number(region="BJ", cert_type="title", year=2025, rng=rng) == "BJT2025000000003"


def test_a_random_source_stuck_on_an_unusable_serial_fails_loudly() -> None:
    stuck = constant_rng(serial_without_check_char("BJT2025"))

    with pytest.raises(RuntimeError, match="without a check character"):
        new_number(region="BJ", cert_type="title", year=2025, rng=stuck)


def test_a_random_source_returning_the_wrong_number_of_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly 5 bytes"):
        new_number(region="BJ", cert_type="title", year=2025, rng=lambda size: bytes(size + 1))


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"region": "bj", "cert_type": "title", "year": 2025}, "region"),
        ({"region": "B1", "cert_type": "title", "year": 2025}, "region"),
        ({"region": "BJX", "cert_type": "title", "year": 2025}, "region"),
        ({"region": "BJ", "cert_type": "diploma", "year": 2025}, "cert_type"),
        ({"region": "BJ", "cert_type": "title", "year": 1899}, "year"),
        ({"region": "BJ", "cert_type": "title", "year": 10000}, "year"),
    ],
)
def test_minting_refuses_arguments_outside_the_format(arguments: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        new_number(**arguments)


@pytest.mark.parametrize(
    "typed",
    ["BJ-T-2025-SM3JSP32-P", "bj-t-2025-sm3jsp32-p", " BJ T 2025 SM3J SP32 P ", "BJT2025SM3JSP32P", "bjt2025sm3jsp32p"],
)
def test_a_number_typed_in_any_case_with_spaces_or_hyphens_is_recognised(typed: str) -> None:
    assert normalize_number(typed) == "BJT2025SM3JSP32P"
    assert format_number(typed) == "BJ-T-2025-SM3JSP32-P"


def test_formatting_a_formatted_number_changes_nothing() -> None:
    formatted = format_number("HET1999EEMVXX6WY")

    assert format_number(formatted) == formatted


def test_a_letter_o_typed_for_a_zero_is_rejected_not_corrected() -> None:
    with pytest.raises(InvalidCertificateNumber, match="except I, L, O and U"):
        normalize_number("BJT2025O00000003")


@pytest.mark.parametrize("look_alike", ["I", "L", "O", "U"])
def test_letters_outside_crockford_base32_are_refused_in_the_serial_even_with_a_matching_check(look_alike: str) -> None:
    body = "BJT2025SM3" + look_alike + "SP32"
    number = body + check_char(body)

    with pytest.raises(InvalidCertificateNumber, match="serial"):
        normalize_number(number)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("BJT2025SM3JSP32", "16 characters"),
        ("BJT2025SM3JSP32PP", "16 characters"),
        ("", "16 characters"),
        ("B1T2025SM3JSP32P", "region"),
        ("BJX2025SM3JSP32P", "type"),
        ("BJT1899SM3JSP32P", "year"),
        ("BJT20A5SM3JSP32P", "year"),
        ("BJT2025SM3JSP32*", "check character"),
        ("BJT2025SM3JSP32Q", "check character is wrong"),
        ("BJT2025SM3JSP32_", "check character"),
        ("BJT2025SM3JSP3ı2P", "may contain only"),
        ("BJ.T.2025.SM3JSP32.P", "16 characters"),
    ],
)
def test_a_malformed_number_is_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidCertificateNumber, match=reason):
        normalize_number(raw)
    assert not is_valid_number(raw)


def test_check_char_accepts_only_15_characters_from_0_to_9_and_a_to_z() -> None:
    with pytest.raises(InvalidCertificateNumber, match="first 15 characters"):
        check_char("BJT2025SM3JSP3")
    with pytest.raises(InvalidCertificateNumber, match="only the digits 0-9 and the letters A-Z"):
        check_char("bjt2025sm3jsp32")


def test_check_char_refuses_a_body_that_no_number_can_have() -> None:
    body = new_serial_body("BJT2025", serial_without_check_char("BJT2025"))

    with pytest.raises(InvalidCertificateNumber, match="never issued"):
        check_char(body)


def test_a_number_typed_full_width_or_with_any_dash_is_the_same_number() -> None:
    number = "BJT20262M5TJCY9M"
    full_width = "".join(chr(ord(char) + 0xFEE0) for char in number)
    assert normalize_number(full_width) == number
    assert normalize_number("BJ—T—2026—2M5TJCY9—M") == number
    assert normalize_number("bj－t－2026－2m5tjcy9－m") == number
