"""What the e-certificate can print: every code point its fonts draw, read from ``rendering/fonts/coverage.txt``
(written with the fonts by ``tools/make_fallback_fonts.py``), so a name no font can print is refused when it is
given, not printed as an empty box — and without loading 40 MB of fonts into every process that takes a name."""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from functools import cache
from pathlib import Path
from typing import Final

COVERAGE: Final = Path(__file__).parent / "rendering" / "fonts" / "coverage.txt"


@cache
def _spans() -> tuple[tuple[int, ...], tuple[int, ...]]:
    lows: list[int] = []
    highs: list[int] = []
    for line in COVERAGE.read_text(encoding="ascii").splitlines():
        if line and not line.startswith("#"):
            low, _, high = line.partition("-")
            lows.append(int(low, 16))
            highs.append(int(high or low, 16))
    return tuple(lows), tuple(highs)


def drawn(character: str) -> bool:
    lows, highs = _spans()
    point = ord(character)
    at = bisect_right(lows, point) - 1
    return at >= 0 and point <= highs[at]


def first_unprintable(text: str) -> tuple[int, str] | None:
    """The first character of ``text`` (NFC) that no font of the e-certificate draws, with its position from 1."""
    for position, character in enumerate(text, start=1):
        if not drawn(character) and unicodedata.category(character) != "Zs":
            return position, character
    return None
