"""Review of ce024c2 (registry/recognition/purposes.py): what the purpose masking misses, and what it mangles.

``masked`` masks a run only if it holds ``MIN_DIGITS`` (8) digits or more, groups joined by one space or dash. Its
docstring says the shortest documents the registry takes carry eight digits — but the passport shape the registry
accepts (registry.holders.identity: ``[A-Z0-9]{5,17}``) is shorter, and China's current ordinary passports are one
letter, a second letter and seven digits (EA1234567). A resident ID written in groups with a slash or a dot keeps its
region code and its last four characters in clear. And an ISO date a clerk writes ("2026-12-05", eight digits joined
by dashes) is starred as if it were an identity number, in the audit, the signed answer and the holder's list.
"""

from __future__ import annotations

import pytest

from registry.recognition.purposes import masked

RESIDENT = "11010519491231002X"


@pytest.mark.parametrize(
    ("typed", "number"),
    [
        ("护照号EA1234567", "EA1234567"),  # 普通护照 E + letter + 7 digits
        ("passport EB7654321 for visa", "EB7654321"),
        ("香港身份证 A123456(7)", "A123456"),
        ("证件 110105/19491231/002X", "110105"),
        ("证件 110105.19491231.002X", "110105"),
    ],
)
async def test_identity_numbers_with_fewer_than_eight_digits_or_other_separators_are_masked(
    typed: str, number: str
) -> None:
    said = masked(typed)
    assert number not in said, said
    assert "*" in said, said


@pytest.mark.parametrize(
    "typed",
    ["用于2026-12-05入职审核", "hiring on 2026-12-05", "截至2026-12-31有效期核验"],
)
async def test_a_date_in_a_purpose_is_not_starred_as_an_identity_number(typed: str) -> None:
    assert masked(typed) == typed


async def test_a_resident_id_in_a_purpose_is_still_masked() -> None:
    """What the fix must keep: the resident ID masked as before, two characters at each end."""
    assert masked(f"核验{RESIDENT}") == f"核验11{'*' * 14}2X"
    assert masked("110105 19491231 002X") == f"11{'*' * 16}2X"
