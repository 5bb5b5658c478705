"""Builds registry/rendering/fonts/NotoSansSC-Registry.ttf from Noto Sans CJK SC (SIL OFL 1.1).

reportlab embeds only TrueType outlines, and Noto Sans CJK ships CFF outlines, so this script subsets the SC face of
the Noto Sans CJK collection to the characters a certificate can carry (Latin, punctuation, every CJK ideograph of
the BMP, extension A, compatibility ideographs and the extension-B characters the font has) and converts its cubic
outlines to quadratic ones (fontTools' cu2qu, error 1 unit of 1000). The OFL asks a modified font to carry another
name than its Reserved Font Name ("Source"): the result is called "Noto Sans SC Registry".

Run once by hand (fonttools is a build-time tool, not a dependency):
    pip install fonttools && python tools/make_cjk_font.py /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable

OUT = Path(__file__).resolve().parents[1] / "registry" / "rendering" / "fonts" / "NotoSansSC-Registry.ttf"
RANGES = [
    (0x20, 0x7E),
    (0xA0, 0x24F),
    (0x2000, 0x206F),
    (0x2100, 0x215F),
    (0x2190, 0x21FF),
    (0x2460, 0x24FF),
    (0x25A0, 0x26FF),
    (0x3000, 0x303F),
    (0x3200, 0x33FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFE30, 0xFE4F),
    (0xFF00, 0xFFEF),
    (0x20000, 0x2FA1F),
]


def sc_face(collection: str) -> TTFont:
    for face in TTCollection(collection).fonts:
        if face["name"].getDebugName(4) == "Noto Sans CJK SC":
            return face
    raise SystemExit("no Noto Sans CJK SC face in " + collection)


def to_truetype(font: TTFont) -> None:
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf
    for tag in ("CFF ", "VORG"):
        if tag in font:
            del font[tag]
    glyf.compile(font)
    hmtx = font["hmtx"]
    for name, glyph in glyf.glyphs.items():
        width, _ = hmtx.metrics[name]
        hmtx.metrics[name] = (width, getattr(glyph, "xMin", 0) if glyph.numberOfContours else 0)
    maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for attr in ("maxZones",):
        setattr(maxp, attr, 1)
    for attr in (
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, attr, 0)
    font["maxp"] = maxp
    post = font["post"]
    post.formatType = 3.0
    font.sfntVersion = "\x00\x01\x00\x00"


def rename(font: TTFont) -> None:
    names = font["name"]
    for record in list(names.names):
        if record.nameID in (1, 4, 16):
            names.setName("Noto Sans SC Registry", record.nameID, record.platformID, record.platEncID, record.langID)
        elif record.nameID == 6:
            names.setName("NotoSansSC-Registry", 6, record.platformID, record.platEncID, record.langID)
        elif record.nameID == 3:
            names.setName("NotoSansSC-Registry;derived", 3, record.platformID, record.platEncID, record.langID)


def main(collection: str) -> None:
    font = sc_face(collection)
    unicodes = [code for low, high in RANGES for code in range(low, high + 1)]
    options = subset.Options()
    options.layout_features = ["vert", "vrt2", "kern", "palt"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=unicodes)
    subsetter.subset(font)
    to_truetype(font)
    rename(font)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(OUT))
    print(OUT, OUT.stat().st_size, len(font.getGlyphOrder()))


if __name__ == "__main__":
    main(sys.argv[1])
