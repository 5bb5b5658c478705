"""Every Unicode Default_Ignorable_Code_Point is refused in text a person reads, whatever its category, with the
message for invisible characters: U+034F COMBINING GRAPHEME JOINER (Mn) let "张\u034f三" be issued, shown as 张三 and
not found by "张三". Names compare with such characters left out."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from registry.schemas import FlowingText500, HolderName, PersonName, Text128, person_name_key

# (first, last) of each range of DerivedCoreProperties.txt's Default_Ignorable_Code_Point, Unicode 15.
RANGES = [
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
]
EVERY = sorted({code for first, last in RANGES for code in (first, (first + last) // 2, last)})
INVISIBLE = "invisible formatting characters"


def _refusal(kind: Any, value: str) -> str:
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(kind).validate_python(value)
    (error,) = raised.value.errors()
    return str(error["msg"])


@pytest.mark.parametrize("code", EVERY, ids=[f"U+{code:04X}" for code in EVERY])
def test_a_default_ignorable_code_point_is_refused_in_a_name_as_invisible(code: int) -> None:
    for kind in (HolderName, PersonName):
        message = _refusal(kind, f"张{chr(code)}三")
        assert INVISIBLE in message, (unicodedata.category(chr(code)), message)
        assert f"U+{code:04X}" in message
        assert "at character 2" in message


@pytest.mark.parametrize("kind", [Text128, FlowingText500], ids=["label", "flowing text"])
def test_every_other_text_a_person_reads_refuses_them_too(kind: Any) -> None:
    for code in (0x034F, 0x115F, 0x3164, 0xFE0F, 0xE0100):
        assert INVISIBLE in _refusal(kind, f"签证{chr(code)}办理")


def test_the_characters_around_the_ranges_are_still_taken() -> None:
    names = TypeAdapter(PersonName)
    # U+034E and U+0350 are combining marks (one on a letter is fine); U+1161 is a Hangul vowel, U+3165 a Hangul letter.
    for name in ("Jose\u034e", "Jose\u0350", "\u1100\u1161", "\u3131\u3165", "张三"):
        assert names.validate_python(name) == unicodedata.normalize("NFC", name)


def test_names_compare_with_invisible_characters_left_out() -> None:
    assert person_name_key("张\u034f三") == person_name_key("张三") == "张三"
    assert person_name_key("张\U000e0100三") == person_name_key("张\u200b三") == person_name_key("张三")
    assert person_name_key("张\u1160三") == person_name_key("张三")
