"""Builds the e-certificate's fallback fonts, for the characters Noto Sans SC Registry does not draw.

A holder's name can carry a letter with a diacritic (Łukasz, Nguyễn, Şükrü), a Greek or Cyrillic letter (a name as
written on a foreign passport) or a rare ideograph of CJK extensions B to F (生僻字 in Chinese names; GB 18030-2022
asks for them). Without these fonts such a character was drawn as an empty box and missing from the PDF's text.

- ``NotoSans-Registry.ttf``: Noto Sans Regular (SIL OFL 1.1; Debian ``fonts-noto-core``), subset to Latin, Latin
  Extended Additional, spacing modifier letters (the apostrophes ʼ ʻ of Ukrainian, Uzbek, Hawaiian names), combining
  diacritical marks, Greek and Cyrillic.
- ``HanaMinB-Registry.ttf``: HanaMinB (花園明朝 B, SIL OFL 1.1 or the Hanazono Font License; Debian
  ``fonts-hanazono``), subset to the supplementary-plane ideographs Noto Sans SC Registry lacks.
- ``BabelStoneHan-Registry.ttf``: BabelStone Han (Arphic Public License; Debian ``fonts-babelstone-han``), subset
  to the supplementary-plane ideographs neither of those draws: many of extensions G and H (Unicode 13 and 15).

Both are TrueType already: subsetting is all. ``coverage.txt`` lists, as ranges, every code point the three fonts draw
together; ``registry.printable`` reads it, so a name no font can print is refused at issuance without
loading 30 MB of fonts. Run once by hand (fonttools is a build-time tool, not a dependency):

    pip install fonttools && apt-get install -y fonts-noto-core fonts-hanazono fonts-babelstone-han
    python tools/make_fallback_fonts.py
"""

from __future__ import annotations

from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

FONTS = Path(__file__).resolve().parents[1] / "registry" / "rendering" / "fonts"
NOTO_SANS = Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf")
HANAMIN_B = Path("/usr/share/fonts/truetype/hanazono/HanaMinB.ttf")
BABELSTONE_HAN = Path("/usr/share/fonts/truetype/babelstone/BabelStoneHan.ttf")
LATIN_GREEK_CYRILLIC = [
    (0x20, 0x7E),
    (0xA0, 0x24F),
    (0x2B0, 0x2FF),
    (0x300, 0x36F),
    (0x370, 0x3FF),
    (0x400, 0x4FF),
    (0x1E00, 0x1EFF),
]


def cmap(path: Path) -> set[int]:
    return set(TTFont(str(path), lazy=True).getBestCmap())


def build(source: Path, unicodes: set[int], family: str, out: Path) -> set[int]:
    font = TTFont(str(source))
    unicodes = unicodes & set(font.getBestCmap())  # a new set: the caller's stays as it was
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.layout_features = ["*"]
    options.hinting = False  # reportlab ignores hinting; the files stay smaller
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=unicodes)
    subsetter.subset(font)
    names = font["name"]
    for record in names.names:
        if record.nameID in (1, 4, 16):
            record.string = family
        elif record.nameID == 6:
            record.string = family.replace(" ", "")
    font.save(str(out))
    return unicodes


def ranges(points: set[int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for point in sorted(points):
        if spans and spans[-1][1] == point - 1:
            spans[-1] = (spans[-1][0], point)
        else:
            spans.append((point, point))
    return spans


def main() -> None:
    primary = cmap(FONTS / "NotoSansSC-Registry.ttf")
    wanted = {point for low, high in LATIN_GREEK_CYRILLIC for point in range(low, high + 1)} - primary
    latin = build(NOTO_SANS, wanted, "Noto Sans Registry", FONTS / "NotoSans-Registry.ttf")
    rare = {point for point in range(0x20000, 0x40000)} - primary
    ideographs = build(HANAMIN_B, rare, "HanaMinB Registry", FONTS / "HanaMinB-Registry.ttf")
    newest = build(BABELSTONE_HAN, rare - ideographs, "BabelStone Han Registry", FONTS / "BabelStoneHan-Registry.ttf")
    drawn = primary | latin | ideographs | newest
    lines = [f"{low:X}-{high:X}" if low != high else f"{low:X}" for low, high in ranges(drawn)]
    header = "# Code points the e-certificate's fonts draw (tools/make_fallback_fonts.py). One range per line, hex.\n"
    (FONTS / "coverage.txt").write_text(header + "\n".join(lines) + "\n")
    print(f"{len(latin)} Latin/Greek/Cyrillic, {len(ideographs)} + {len(newest)} ideographs; {len(drawn)} in all")


if __name__ == "__main__":
    main()
