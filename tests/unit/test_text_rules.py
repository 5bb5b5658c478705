"""The rules for text a person reads (registry.schemas) and for cells of the CSV files the registry writes
(registry.spreadsheets), checked without a database."""

from __future__ import annotations

import csv
import io
import unicodedata

import pytest

from registry.schemas import _cleaner, person_name_key
from registry.spreadsheets import FORMULA_LEADERS, SafeWriter, neutralised

clean = _cleaner(64)
clean_name = _cleaner(64, person_name=True)
REFUSED_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}


def test_every_control_format_private_unassigned_or_surrogate_code_point_of_the_bmp_is_refused() -> None:
    for code_point in range(0x10000):
        char = chr(code_point)
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            with pytest.raises(ValueError, match="must not contain"):
                clean(f"张{char}三")


def test_tag_characters_and_supplementary_private_use_are_refused() -> None:
    for code_point in [*range(0xE0000, 0xE0080), 0xF0000, 0x10FFFD]:
        with pytest.raises(ValueError, match="must not contain"):
            clean(f"张{chr(code_point)}三")


def test_unassigned_code_points_of_the_ideograph_planes_are_taken_as_han_characters() -> None:
    assert unicodedata.category("\U00031350") == "Cn"  # CJK Extension H: Unicode 15.0, newer than Python 3.11's
    assert clean("李\U00031350") == "李\U00031350"
    for noncharacter in ("\U0002fffe", "\U0003ffff"):
        with pytest.raises(ValueError, match="not characters"):
            clean(f"李{noncharacter}")


def test_two_combining_marks_in_a_row_are_kept_and_three_are_refused() -> None:
    assert clean("x\u0301\u0302") == "x\u0301\u0302"
    with pytest.raises(ValueError, match="more than 2"):
        clean("x\u0301\u0302\u0303")
    assert clean("e\u0301\u0302\u0303") == "\u00e9\u0302\u0303"  # NFC first: the acute joins the e


def test_the_message_names_the_character_and_where_it_is() -> None:
    with pytest.raises(ValueError, match=r"U\+2066 LEFT-TO-RIGHT ISOLATE at character 2"):
        clean("张\u2066三")


def test_white_space_runs_become_one_space() -> None:
    assert clean("  欧阳\u3000\u3000娜娜\u00a0 ") == "欧阳 娜娜"


@pytest.mark.parametrize("dot", ["\u00b7", "\u30fb", "\uff65", "\u2027", "\u2022", "\u2219", "\u22c5", "\u0387"])
def test_a_name_is_stored_with_the_middle_dot_of_the_identity_card(dot: str) -> None:
    assert clean_name(f"阿沛{dot}阿旺晋美") == "阿沛\u00b7阿旺晋美"


def test_other_text_keeps_its_dots() -> None:
    assert clean("第一期・北京") == "第一期・北京"


def test_names_compare_alike_whatever_the_dot_case_and_spacing() -> None:
    key = person_name_key("买买提·艾力")
    for typed in ("买买提・艾力", "买买提･艾力", "买买提.艾力", "买买提．艾力", "买买提 · 艾力"):
        assert person_name_key(typed) == key
    assert person_name_key("José Müller") == person_name_key("JOSE\u0301 MU\u0308LLER")


@pytest.mark.parametrize("leader", FORMULA_LEADERS)
def test_a_cell_starting_like_a_formula_gets_an_apostrophe(leader: str) -> None:
    assert neutralised(f"{leader}cmd|' /C calc'!A0") == f"'{leader}cmd|' /C calc'!A0"


@pytest.mark.parametrize("cell", ["-12", "+3.5", "-0.5", "-.5", "12", "张三", "", "a=b", "'=already"])
def test_a_plain_number_or_ordinary_text_is_left_alone(cell: str) -> None:
    assert neutralised(cell) == cell


@pytest.mark.parametrize("cell", ["-2+3", "+1)*cmd", "-", "+", "-1e3", "@"])
def test_a_sign_that_does_not_start_a_plain_number_is_neutralised(cell: str) -> None:
    assert neutralised(cell) == "'" + cell


def test_the_safe_writer_neutralises_every_cell_and_leaves_numbers_as_numbers() -> None:
    buffer = io.StringIO()
    SafeWriter(buffer).writerow([3, "=1+1", "-7", "张,三", None])
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [["3", "'=1+1", "-7", "张,三", ""]]
