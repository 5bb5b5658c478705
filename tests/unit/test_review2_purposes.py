"""Review of d2dfc61 and 5c222aa. Purposes: a time of day before a telephone number, a land line with its bracketed area
code in groups, a service line in spaces and a Taiwan number with its country code stay as typed; an identity
number beside a time, after a country code or with its region in brackets is still masked. Refusals: a passport's or
Hong Kong ID's number typed as a code is said masked (``said_masked``), an ordinary code as typed."""

from __future__ import annotations

import pytest

from registry.errors import said_masked
from registry.recognition.purposes import masked


@pytest.mark.parametrize(
    "purpose",
    [
        "会议 20:30 13812345678",
        "2026-12-05 20:30 13812345678",
        "13812345678 20:30 回电",
        "20:30 010-12345678",
        "(021)6123-4567",
        "(021) 6123 4567",
        "400 810 8888",
        "+886 2 2345 6789",
        "+886 912 345 678",
    ],
)
def test_a_time_and_a_telephone_number_stay_as_typed(purpose: str) -> None:
    assert masked(purpose) == purpose


@pytest.mark.parametrize(
    ("purpose", "shown"),
    [
        ("会议 2026-12-05 20:30 核验110105194912310021", "会议 2026-12-05 20:30 核验11**************21"),
        ("核验 12:30 11010519491231002X 完成", "核验 12:30 11**************2X 完成"),
        ("2026-12-05 20:30 110105491231002", "2026-12-05 20:30 11***********02"),
        ("110105491231002 20:30", "11***********02 20:30"),
        ("电话+86 110105 1949 1231 002X", "电话+86 11*****************2X"),
        ("(110105)19491231002X", "(11***************2X"),
        ("20:30 12345678", "20:30*******78"),
        ("(021)6123-4567 110105491231002", "(021)6123-4567 11***********02"),
        ("台胞证 021 12345678", "台胞证 02********78"),
    ],
)
def test_an_identity_number_beside_a_time_or_a_telephone_shape_is_masked(purpose: str, shown: str) -> None:
    assert masked(purpose) == shown


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("EA1234567", "EA*****67"), ("e_1234567", "e_*****67"), ("A123456(7)", "A1******7)"), ("H1234567", "********")],
)
def test_a_passport_typed_as_a_code_is_said_masked(typed: str, shown: str) -> None:
    assert said_masked(typed) == shown


@pytest.mark.parametrize(
    "code",
    ["SK-6-31-01-03", "ENG-EAI", "level_2", "BJ-AI-COMMITTEE", "ENG-2026-01", "trc_ab1234567cdef01234", "E12345"],
)
def test_an_ordinary_code_is_said_as_typed(code: str) -> None:
    assert said_masked(code) == code
