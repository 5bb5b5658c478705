"""The purpose mask hides what can be an identity document's number and keeps what a purpose says with numbers:
compact dates, money, telephone numbers and certificate numbers stay as typed — unless the words before a number name
an identity document — and a resident ID next to them, or spread over groups, is still masked."""

from __future__ import annotations

import pytest

from registry.certificates.numbering import group_canonical, is_valid_number
from registry.recognition.purposes import masked

RESIDENT = "11010519491231002X"  # region, birth date and check character right
# Certificate numbers whose serials hold enough digits that a mask counting digits took them for identity numbers.
CERTIFICATES = ["TJS2026PB2320SWS", "TJS2026K6RPW7176", "TJS2026310RVCW0G", "BJT2025X3M385EXX"]


@pytest.mark.parametrize(
    "typed",
    [
        "入职日期20261205",
        "聘期20261205-20291204",
        "有效期 2026-12-05/2029-12-04",
        "考核日 2026-12-05/2027-01-05/2028-01-05",
        "项目经费1,234,567元",
        "年薪12,345,678.00",
        "补贴 12345678.50",
        "年薪¥12000000",
        "安家费12000000元",
        "联系人电话13812345678",
        "电话 138-1234-5678",
        "+86 138 1234 5678",
        "人事处 010-12345678",
        "热线 400-123-4567",
    ],
    ids=[
        "compact date",
        "compact date range",
        "iso date range",
        "three iso dates",  # 18 digits in their middle, but no resident ID
        "thousands",
        "thousands and cents",
        "decimal",
        "yuan sign",
        "yuan after",
        "mobile",
        "mobile grouped",
        "mobile with country code",
        "land line",
        "service line",
    ],
)
def test_dates_money_and_telephone_numbers_in_a_purpose_are_kept_as_typed(typed: str) -> None:
    assert masked(typed) == typed


@pytest.mark.parametrize("number", CERTIFICATES)
def test_a_certificate_number_in_a_purpose_is_kept_however_it_is_written(number: str) -> None:
    assert is_valid_number(number)
    for written in (number, group_canonical(number), group_canonical(number).replace("-", " "), number.lower()):
        assert masked(f"复核证书{written}的职称") == f"复核证书{written}的职称"


def test_a_certificate_number_with_a_mistyped_check_character_is_masked_as_before() -> None:
    mistyped = "BJ-T-2025-X3M385EX-0"
    assert not is_valid_number(mistyped)
    assert masked(mistyped) != mistyped


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        (f"20261205 {RESIDENT}", f"20261205 11{'*' * 14}2X"),
        (f"{RESIDENT}，20261205入职", f"11{'*' * 14}2X，20261205入职"),
        (f"于2026-12-05核验{RESIDENT}", f"于2026-12-05核验11{'*' * 14}2X"),
        (f"薪资1,234,567元 {RESIDENT}", f"薪资1,234,567元 11{'*' * 14}2X"),
        (f"电话13812345678 证件{RESIDENT}", f"电话13812345678 证件11{'*' * 14}2X"),
        (f"证书BJ-T-2025-X3M385EX-X，{RESIDENT}", f"证书BJ-T-2025-X3M385EX-X，11{'*' * 14}2X"),
    ],
    ids=["date before", "date after", "iso date", "money", "telephone", "certificate"],
)
def test_a_resident_id_beside_a_date_money_or_a_certificate_is_masked_and_they_are_kept(typed: str, kept: str) -> None:
    assert masked(typed) == kept


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("110105  19491231  002X", f"11{'*' * 18}2X"),
        ("1101  0519  4912  3100  2X", f"11{'*' * 22}2X"),
        ("110 105 194 912 310 02X", f"11{'*' * 19}2X"),
        ("110,105,194,912,310,02X", f"11{'*' * 19}2X"),
        ("11010519491231002Y", f"11{'*' * 14}2Y"),  # mistyped, still someone's
        ("110105491231002", f"11{'*' * 11}02"),  # first-generation, 15 digits
    ],
    ids=["double spaces", "groups of four", "groups of three", "commas", "wrong check", "fifteen digits"],
)
def test_a_resident_id_spread_over_groups_or_mistyped_is_masked_whole(typed: str, kept: str) -> None:
    assert masked(typed) == kept


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("台胞证20150601", "台胞证********"),
        ("台胞证号：20150601", "台胞证号：********"),
        ("身份证 2026-12-05", "身份证 20******05"),
        ("passport no. 12,345,678", "passport no. 12******78"),
        ("ID 13812345678", "ID 13*******78"),
    ],
    ids=["taiwan permit like a date", "permit number", "id card like a date", "passport like money", "id like phone"],
)
def test_a_number_the_words_before_it_call_an_identity_document_is_masked_whatever_it_looks_like(
    typed: str, kept: str
) -> None:
    assert masked(typed) == kept


@pytest.mark.parametrize(
    "typed",
    ["编号12345678", "编号 2026-13-45", "流水号 12000000123", "EA1234567", "H1234567890", "1234567(8)"],
    ids=["no year", "no month", "not a phone", "passport", "hk macau permit", "macau id"],
)
def test_numbers_that_are_no_date_money_or_telephone_are_still_masked(typed: str) -> None:
    said = masked(typed)
    assert "*" in said, said
    assert len(said) == len(typed)
