"""Review of the purpose mask (e41bceb): a date with its time of day, and a land line typed with its area code or
country code, are what a clerk names and stay as typed; an identity number escaped twice in a pasted link ("%2531…"),
or next to a time, is still masked."""

from __future__ import annotations

import pytest

from registry.recognition.purposes import masked

NUMBER = "11010519491231002X"  # a valid resident ID number (GB 11643) that belongs to nobody

KEPT = [
    "会议 2026-12-05 20:30",
    "2026-12-05T20:30:00",
    "2026-12-05T20:30:00+08:00",
    "20261205 20:30",
    "2026/12/05 9:05 入职",
    "2026.12.05 20:30",
    "2026-12-05 08:30:00",
    "2026-12-05 20:30-2026-12-06 08:00",
    "电话 010 1234 5678",
    "电话 +86 10 12345678",
    "电话 +86-10-12345678",
    "电话 0086-10-12345678",
    "电话 0755-8888 6666",
    "电话 (010)12345678",
    "香港 +852 9123 4567",
]


@pytest.mark.parametrize("text", KEPT)
def test_a_date_with_its_time_or_a_land_line_stays_as_typed(text: str) -> None:
    assert masked(text) == text


TWICE = "".join(f"%25{ord(char):02X}" for char in NUMBER)  # "%2531%2531%2530…"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"?next=%2Fv%3Fid%3D{TWICE}", "?next=%2Fv%3Fid%3D%2531%2531" + "*" * 70 + "%2532%2558"),
        (f"身份证 {NUMBER} 20:30", "身份证 11**************2X 20:30"),
        ("12345678 20:30", "12*******20:30"),
        ("台胞证 12345678 20:30", "台胞证 12*******20:30"),
        ("会议 2026-12-05 20:30 110105194912310021", "会议 2026-12-05 20:30 11**************21"),
    ],
)
def test_an_identity_number_escaped_twice_or_beside_a_time_is_masked(text: str, shown: str) -> None:
    assert masked(text) == shown
    assert len(masked(text)) == len(text)
