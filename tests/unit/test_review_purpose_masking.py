"""Review: identity numbers typed with other separators, other digits or wider gaps are masked in a purpose too."""

from __future__ import annotations

import re
import unicodedata

import pytest

from registry.recognition.purposes import masked

_RESIDENT = "11010519491231002X"


def _shown(text: str) -> str:
    """The letters and digits ``masked(text)`` shows, any script's digits read as 0-9."""
    digits = "".join(str(unicodedata.decimal(char)) if char.isdecimal() else char for char in masked(text))
    return re.sub(r"[^0-9A-Za-z]", "", digits)


@pytest.mark.parametrize(
    "purpose",
    [
        "核验110105·19491231·002X",  # middle dot
        "核验110105、19491231、002X",  # enumeration comma
        "核验110105:19491231:002X",
        "核验110105|19491231|002X",
        "核验110105(19491231)002X",
        "核验[110105][19491231][002X]",
        "核验110105    19491231    002X",  # four spaces
        "核验110105\u200b19491231\u200b002X",  # zero-width spaces
        "核验" + "".join(chr(0x660 + int(c)) if c.isdigit() else c for c in _RESIDENT),  # Arabic-Indic digits
        "核验" + "".join(chr(0x966 + int(c)) if c.isdigit() else c for c in _RESIDENT),  # Devanagari digits
    ],
)
def test_a_resident_id_with_other_separators_or_digits_is_masked(purpose: str) -> None:
    shown = _shown(purpose)
    assert "19491231" not in shown
    assert "110105" not in shown
    assert len(masked(purpose)) == len(purpose)


@pytest.mark.parametrize("purpose", ["核验110105  491231  002", "核验110105 - 491231 - 002"])
def test_an_old_fifteen_digit_id_across_wider_gaps_is_masked(purpose: str) -> None:
    shown = _shown(purpose)
    assert "491231" not in shown
    assert "110105" not in shown


@pytest.mark.parametrize("purpose", ["核验110105  19491231  0021", "核验110105 - 19491231 - 0021"])
def test_a_resident_id_with_a_mistyped_check_character_across_gaps_is_masked(purpose: str) -> None:
    shown = _shown(purpose)
    assert "19491231" not in shown
    assert "110105" not in shown


@pytest.mark.parametrize(
    "purpose",
    [
        "有效期：2026-12-05、2027-12-04",
        "日期20261205|金额12000000元|电话13812345678",
        "证书BJ-T-2025-QKCCH3GN-X、2026-12-05",
        "2026.12.05 ~ 2027.12.04",
    ],
)
def test_dates_money_and_telephones_apart_by_other_marks_are_kept(purpose: str) -> None:
    assert masked(purpose) == purpose


@pytest.mark.parametrize("purpose", ["香港身份证A 123456(7)", "香港身份证AB-123456(7)"])
def test_a_hong_kong_id_with_its_letters_typed_apart_is_masked(purpose: str) -> None:
    assert "123456" not in _shown(purpose)


@pytest.mark.parametrize("purpose", ["No 1234567", "Room 123456(7)", "第1234567号"])
def test_a_file_number_after_a_word_is_kept(purpose: str) -> None:
    assert masked(purpose) == purpose
