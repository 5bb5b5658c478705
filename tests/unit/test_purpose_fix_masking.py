"""The purpose mask is the registry's identity mask (``mask_id_number``) over every run shaped like an identity
number — passports and Hong Kong IDs with fewer than eight digits, groups joined by any of the usual separators — and
leaves a date, or a shorter file number, as typed."""

from __future__ import annotations

import pytest

from registry.holders.identity import IdType, mask_id_number
from registry.recognition.purposes import masked

RESIDENT = "11010519491231002X"


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("护照号EA1234567", "护照号EA*****67"),
        ("护照号ＥＡ１２３４５６７复核", "护照号EA*****67复核"),
        ("passport E12345678", "passport E1*****78"),
        ("香港身份证 A123456(7)", "香港身份证 A1******7)"),
        ("证件 110105/19491231/002X", "证件 11****************2X"),
        ("证件 110105.19491231.002X", "证件 11****************2X"),
        ("证件 110105_19491231_002X", "证件 11****************2X"),
        ("证件 110105,19491231,002X", "证件 11****************2X"),
    ],
)
def test_passports_hong_kong_ids_and_grouped_numbers_are_masked(typed: str, kept: str) -> None:
    assert masked(typed) == kept


@pytest.mark.parametrize(
    "typed",
    [
        "用于2026-12-05入职审核",
        "截至2026/12/31有效",
        "2026.1.5 入职",
        "第1234567号",
        "ISO9001 认证",
        "GB11643 校验",
        "hiring for project ENG-AI 2026, 3 posts",
    ],
)
def test_dates_and_short_numbers_are_kept_as_typed(typed: str) -> None:
    assert masked(typed) == typed


def test_a_date_shaped_run_that_is_no_date_is_masked() -> None:
    assert masked("编号 2026-13-45") == "编号 20******45"  # no thirteenth month: a number


def test_the_mask_is_the_registrys_identity_mask() -> None:
    assert masked(RESIDENT) == mask_id_number(IdType.RESIDENT_ID, RESIDENT)
