"""The fonts of the e-certificate: the shipped Noto Sans SC (embedded as a subset) or, for comparison, base-14 names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

FONT_FILE: Final = Path(__file__).parent / "fonts" / "NotoSansSC-Registry.ttf"
SANS: Final = "NotoSansSC-Registry"


@dataclass(frozen=True, slots=True)
class Typefaces:
    """Which reportlab font each kind of text is set in."""

    cjk: str
    latin: str
    latin_bold: str
    mono: str

    @property
    def single(self) -> bool:
        """One font covers every script: no need to split text into Western and Chinese runs."""
        return self.cjk == self.latin


@cache
def embedded() -> Typefaces:
    """The shipped font for everything (its Latin is Adobe's Source Sans design), registered on first use: parsing
    the 10 MB file takes a quarter of a second, which an API process pays once and only if it renders a PDF."""
    pdfmetrics.registerFont(TTFont(SANS, str(FONT_FILE)))
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(SANS, bold, italic, SANS)  # Paragraph's <b> and <i> stay in the one embedded face
    return Typefaces(cjk=SANS, latin=SANS, latin_bold=SANS, mono=SANS)


@cache
def base14() -> Typefaces:
    """The former, unembedded fonts (a reader substitutes its own): kept for the rendering benchmark's baseline."""
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return Typefaces(cjk="STSong-Light", latin="Helvetica", latin_bold="Helvetica-Bold", mono="Courier")
