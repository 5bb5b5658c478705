"""The fonts of the e-certificate: the shipped Noto Sans SC (embedded as a subset), with two fallbacks for what it does
not draw (Latin letters with diacritics, Greek, Cyrillic; rare ideographs of CJK extensions B to F), or, for
comparison, base-14 names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

FONTS: Final = Path(__file__).parent / "fonts"
FONT_FILE: Final = FONTS / "NotoSansSC-Registry.ttf"
SANS: Final = "NotoSansSC-Registry"
# Tried in order for a character the main font lacks (tools/make_fallback_fonts.py; fonts/README.md).
FALLBACK_FILES: Final = {
    "NotoSans-Registry": FONTS / "NotoSans-Registry.ttf",
    "HanaMinB-Registry": FONTS / "HanaMinB-Registry.ttf",
    "BabelStoneHan-Registry": FONTS / "BabelStoneHan-Registry.ttf",
}


@dataclass(frozen=True, slots=True)
class Typefaces:
    """Which reportlab font each kind of text is set in."""

    cjk: str
    latin: str
    latin_bold: str
    mono: str
    fallbacks: tuple[str, ...] = ()

    def font_for(self, character: str, preferred: str) -> str:
        """``preferred`` if it draws ``character``, else the first fallback that does (else ``preferred``: a box)."""
        if not self.fallbacks or _draws(preferred, character):
            return preferred
        return next((font for font in self.fallbacks if _draws(font, character)), preferred)

    @property
    def single(self) -> bool:
        """One font covers every script: no need to split text into Western and Chinese runs."""
        return self.cjk == self.latin


def _draws(font: str, character: str) -> bool:
    face = getattr(pdfmetrics.getFont(font), "face", None)
    return face is None or ord(character) in face.charToGlyph  # a base-14 font: not ours to judge


_READING_MAP: Final = ttfonts.makeToUnicodeCMap
_BEYOND_THE_BMP: Final = re.compile(r"^<([0-9A-F]{2})> <([0-9A-F]{5,6})>$", re.MULTILINE)


def _to_unicode_cmap(fontname: str, subset: list[int]) -> str:
    """reportlab's ToUnicode map, with supplementary-plane characters written as UTF-16 (a surrogate pair), as PDF
    asks: reportlab writes five hex digits (``<20BB7>``), so readers extracted and searched "𠮷" as "₻"."""
    return _BEYOND_THE_BMP.sub(
        lambda found: f"<{found[1]}> <{chr(int(found[2], 16)).encode('utf-16-be').hex().upper()}>",
        _READING_MAP(fontname, subset),
    )


@cache
def embedded() -> Typefaces:
    """The shipped font for everything (its Latin is Adobe's Source Sans design), registered on first use: parsing
    the 10 MB file takes a quarter of a second, which an API process pays once and only if it renders a PDF (the
    fallbacks, read lazily by reportlab, a tenth of a second more)."""
    ttfonts.makeToUnicodeCMap = _to_unicode_cmap  # read by TTFont at each use
    pdfmetrics.registerFont(TTFont(SANS, str(FONT_FILE)))
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(SANS, bold, italic, SANS)  # Paragraph's <b> and <i> stay in the one embedded face
    for name, path in FALLBACK_FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(path)))
    return Typefaces(cjk=SANS, latin=SANS, latin_bold=SANS, mono=SANS, fallbacks=tuple(FALLBACK_FILES))


@cache
def base14() -> Typefaces:
    """The former, unembedded fonts (a reader substitutes its own): kept for the rendering benchmark's baseline."""
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return Typefaces(cjk="STSong-Light", latin="Helvetica", latin_bold="Helvetica-Bold", mono="Courier")
