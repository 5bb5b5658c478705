"""Certificate numbers at the edges of their format, and the exact words a person is told when one is refused (the
verification page shows them as they are)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from registry.certificates.numbering import check_char, new_number, normalize_number
from registry.errors import InvalidCertificateNumber


def _zeros(size: int) -> bytes:
    return bytes(size)


def _refusal(check: Callable[[], object]) -> str:
    with pytest.raises(InvalidCertificateNumber) as refused:
        check()
    return str(refused.value)


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        pytest.param(  # a full-width Ｐ is read as P (as a Chinese input method types it); a look-alike is not
            "BJ-T-2025-SM3JSP32-\u03a1",
            "certificate number may contain only letters A-Z, digits, spaces and hyphens",
            id="a Greek look-alike letter",
        ),
        pytest.param(
            "BJ-T-2025",
            "certificate number must be 16 characters (RR-T-YYYY-SSSSSSSS-C) not counting hyphens, got 7",
            id="too short",
        ),
        pytest.param("B1T2025SM3JSP32P", "region (characters 1-2) must be two letters", id="region"),
        pytest.param("BJX2025SM3JSP32P", "type (character 3) must be T (title) or S (skill)", id="type"),
        pytest.param("BJT1899SM3JSP32P", "year (characters 4-7) must be a four-digit year from 1900", id="year"),
        pytest.param(
            "BJT2025SM3OSP32P", "serial (characters 8-15) may use 0-9 and A-Z except I, L, O and U", id="serial"
        ),
        pytest.param("BJT2025SM3JSP32_", "check character (the last one) must be a digit or a letter", id="check"),
        pytest.param(
            "BJT2025SM3JSP32Q",
            "check character is wrong: a character of the number is mistyped; compare it with the certificate",
            id="mistyped",
        ),
    ],
)
def test_a_refused_number_says_exactly_what_is_wrong(raw: str, said: str) -> None:
    assert _refusal(lambda: normalize_number(raw)) == said


def test_check_char_says_how_many_characters_it_was_given() -> None:
    assert _refusal(lambda: check_char("BJT2025")) == "need the first 15 characters of a certificate number, got 7"


def test_check_char_says_which_characters_a_number_uses() -> None:
    assert (
        _refusal(lambda: check_char("bjt2025sm3jsp32"))
        == "a certificate number contains only the digits 0-9 and the letters A-Z"
    )


def test_check_char_says_a_body_without_a_check_character_is_never_issued() -> None:
    # BJT2025 with serial 00000002 is the first body of its year whose MOD 37-2 check is "*".
    assert (
        _refusal(lambda: check_char("BJT202500000002"))
        == "these 15 characters have no check character in 0-9A-Z and are never issued"
    )


def test_a_number_from_the_year_1900_is_the_earliest_accepted() -> None:
    earliest = new_number(region="BJ", cert_type="title", year=1900, rng=_zeros)
    assert earliest == "BJT1900000000006"
    assert normalize_number(earliest) == earliest


def test_a_number_from_the_year_9999_is_the_latest_minted() -> None:
    assert new_number(region="BJ", cert_type="skill", year=9999, rng=_zeros) == "BJS999900000000C"


@pytest.mark.parametrize(
    ("year", "said"),
    [(1899, "year must be between 1900 and 9999, got 1899"), (10000, "year must be between 1900 and 9999, got 10000")],
)
def test_minting_refuses_a_year_outside_1900_to_9999(year: int, said: str) -> None:
    with pytest.raises(ValueError, match=f"^{said}$"):
        new_number(region="BJ", cert_type="title", year=year, rng=_zeros)
