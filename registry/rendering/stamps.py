"""What is stamped on the e-certificate: the status watermark across the page, and the body's round seal (电子签章)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import date
from typing import Final

from reportlab.lib.colors import Color, HexColor
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from registry.rendering.typefaces import Typefaces

SEAL_RED: Final = HexColor("#D0021B")
WATERMARK_RED: Final = Color(0.78, 0.05, 0.08, alpha=0.22)
REASON_RED: Final = Color(0.62, 0.04, 0.06, alpha=0.55)
SEAL_SIZE: Final = 116
SEAL_MOTTO: Final = "电子证书专用章"


@dataclass(frozen=True, slots=True)
class StatusMark:
    """A certificate that is no longer simply valid: what happened, when, and the reason given in public."""

    label_zh: str  # "已撤销"
    label_en: str  # "REVOKED"
    changed_on: date | None
    reason: str | None

    def detail_lines(self) -> list[str]:
        lines = []
        if self.changed_on is not None:
            when = self.changed_on
            lines.append(
                f"{self.label_zh}于 {when.year}年{when.month}月{when.day}日 · {self.label_en} ON {when.isoformat()}"
            )
        if self.reason:
            lines.append(f"原因 Reason: {self.reason}")
        return lines


def draw_watermark(canvas: Canvas, mark: StatusMark, typefaces: Typefaces, *, width: float, height: float) -> None:
    """The status in large letters across the page diagonally, the date and public reason beneath it.

    Translucent over the content rather than under it: the white QR code background would otherwise hide part of it,
    and the fields stay legible through it.
    """
    canvas.saveState()
    canvas.translate(width / 2, height / 2)
    canvas.rotate(math.degrees(math.atan2(height, width)))
    diagonal = math.hypot(width, height) * 0.8
    label = f"{mark.label_zh} {mark.label_en}"
    _centred(canvas, label, typefaces.cjk, diagonal, 96, WATERMARK_RED, y=-10)
    for index, line in enumerate(mark.detail_lines()):
        _centred(canvas, line, typefaces.cjk, diagonal * 0.85, 15, REASON_RED, y=-42 - 20 * index)
    canvas.restoreState()


def _centred(canvas: Canvas, text: str, font: str, fit: float, size: float, colour: Color, *, y: float) -> None:
    natural = pdfmetrics.stringWidth(text, font, size)
    size = size * min(1.0, fit / natural) if natural else size
    canvas.setFont(font, size)
    canvas.setFillColor(colour)
    canvas.drawCentredString(0, y, text)


def seal_pdf(issuer_name: str, typefaces: Typefaces) -> bytes:
    """A one-page PDF of the round red seal: the body's name around the top, a star, the seal's purpose beneath.

    It becomes the appearance of the PDF signature field, so readers show the seal where the signature is (and mark
    it when the signature does not validate).
    """
    buffer = io.BytesIO()
    canvas = Canvas(
        buffer,
        pagesize=(SEAL_SIZE, SEAL_SIZE),
        invariant=True,
        initialFontName=typefaces.cjk,  # type: ignore[arg-type]
        pageCompression=True,
    )
    centre = SEAL_SIZE / 2
    radius = centre - 4
    canvas.setStrokeColor(SEAL_RED)
    canvas.setFillColor(SEAL_RED)
    canvas.setLineWidth(3)
    canvas.circle(centre, centre, radius, stroke=1, fill=0)
    _star(canvas, centre, centre + 2, 15)
    _arc_text(canvas, issuer_name, typefaces, centre=centre, radius=radius - 15)
    canvas.setFont(typefaces.cjk, 8.5)
    canvas.drawCentredString(centre, centre - 30, SEAL_MOTTO)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _star(canvas: Canvas, x: float, y: float, outer: float) -> None:
    path = canvas.beginPath()
    for index in range(10):
        angle = math.pi / 2 + index * math.pi / 5
        reach = outer if index % 2 == 0 else outer * 0.382
        point = (x + reach * math.cos(angle), y + reach * math.sin(angle))
        if index == 0:
            path.moveTo(*point)
        else:
            path.lineTo(*point)
    path.close()
    canvas.drawPath(path, stroke=0, fill=1)


def _arc_text(canvas: Canvas, text: str, typefaces: Typefaces, *, centre: float, radius: float) -> None:
    """``text`` clockwise along the upper arc, each character upright towards the centre, as on a Chinese seal."""
    characters = list(text) or [" "]
    span = math.radians(min(220.0, 26.0 * len(characters)))
    step = span / max(len(characters) - 1, 1)
    size = min(15.0, radius * step * 0.95) if len(characters) > 1 else 15.0
    start = math.pi / 2 + span / 2
    for index, character in enumerate(characters):
        canvas.setFont(typefaces.font_for(character, typefaces.cjk), size)
        angle = start - index * step if len(characters) > 1 else math.pi / 2
        canvas.saveState()
        canvas.translate(centre + radius * math.cos(angle), centre + radius * math.sin(angle))
        canvas.rotate(math.degrees(angle) - 90)
        canvas.drawCentredString(0, -size * 0.35, character)
        canvas.restoreState()
