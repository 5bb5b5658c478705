"""The A4 e-certificate: a reportlab page with searchable Chinese text and a vector QR code, the credential attached."""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final, NamedTuple
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from reportlab.lib.colors import Color, HexColor, white
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph

from registry.clock import CHINA_STANDARD_TIME
from registry.rendering import pdfa, typefaces
from registry.rendering.qr import QUIET_ZONE, QrMatrix, qr_matrix
from registry.rendering.stamps import SEAL_SIZE, StatusMark, draw_watermark
from registry.rendering.typefaces import Typefaces

# Every glyph comes from the shipped Noto Sans SC (registry/rendering/fonts/), embedded as a subset: the page looks the
# same in a reader without Chinese fonts, and the ToUnicode maps keep the text selectable and searchable.
# ``typefaces.base14()`` (STSong-Light/Helvetica/Courier, nothing embedded) remains for the rendering benchmark.
SUBJECT: Final = "Talent Registry e-certificate"
CREATOR: Final = "Talent Registry"
CREDENTIAL_MEDIA_TYPE: Final = pdfa.CREDENTIAL_MEDIA_TYPE

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN: Final = 64.0
VALUE_X: Final = 196.0
ACCENT: Final = HexColor("#9B1C1C")
MUTED: Final = HexColor("#555555")
INK: Final = HexColor("#111111")
# Where the body's seal goes, over the right of the issuing body and date lines, as a seal is stamped on paper: the
# PDF signature field's rectangle (x1, y1, x2, y2).
SEAL_BOX: Final = (409, 362, 409 + SEAL_SIZE, 362 + SEAL_SIZE)
ROW: Final = 31.0  # from one field's first line to the next field's, when each value takes one line
ROW_WITHOUT_ENGLISH: Final = 16.0  # the room a value's second line has where no English line is below it
MOST_VALUE_LINES: Final = 4
MOST_SHRINKING: Final = 0.05  # wrapped values are never set smaller than this share of their size to save room
GUIDE_GAP: Final = 4.0  # between the last field and the rule above the QR code
FOOTER_CLEARANCE: Final = 48.0  # the lowest the guide may reach: above the footer line at 40

TITLES: Final = {
    "title": ("职称证书", "Professional Title Certificate"),
    "skill": ("职业技能等级证书", "Vocational Skill Level Certificate"),
}
TYPE_NAMES: Final = {"title": ("职称", "Professional title"), "skill": ("职业技能等级", "Vocational skill level")}
# 15 or more digits in a row is an identity number (15-digit old style or 18-digit resident ID), not a masked one.
_UNMASKED: Final = re.compile(r"\d{15}")
# With the base-14 fonts, text Helvetica can show (its WinAnsi encoding) is drawn in Helvetica: STSong-Light's Latin
# glyphs are narrow, and readers that substitute a system CJK font for it may have no glyph for the CID of "·" (as
# in "阿依古丽·买买提").
_WIN_ANSI: Final = (bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))).decode("cp1252", errors="ignore")
_SCRIPT_RUNS: Final = re.compile(f"([{re.escape(_WIN_ANSI)}]+)|[^{re.escape(_WIN_ANSI)}]+")
# Where a line may break: after a word of letters that are not Chinese (with the spaces after it), or after any other
# character (a Chinese character, a space).
_BREAKS: Final = re.compile(r"[^\s\u2e80-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]+\s*|.\s*", re.DOTALL)


@dataclass(frozen=True, slots=True)
class CertificateDocument:
    """Everything printed on the e-certificate, already looked up and formatted by the caller."""

    cert_type: str  # "title" | "skill"
    number_display: str  # "BJ-T-2026-7K3M9Q2X-4"
    holder_name: str
    holder_id_masked: str  # "11**************3X" — never a full identity number
    series_zh: str | None  # title only, e.g. "工程技术"
    name_zh: str  # speciality or occupation, e.g. "具身智能" / "人工智能训练师"
    name_en: str
    occupation_code: str | None
    level_name_zh: str  # "副高级"
    level_name_en: str
    issuer_name: str
    issuer_code: str
    awarded_on: date
    valid_until: date | None
    status_zh: str  # e.g. "有效"
    status_en: str  # e.g. "Valid"
    verify_url: str  # what the QR encodes
    issued_at: datetime


def certificate_pdf(
    doc: CertificateDocument,
    *,
    credential: bytes,
    credential_filename: str,
    status_mark: StatusMark | None = None,
    faces: Typefaces | None = None,
) -> bytes:
    """One A4 page for ``doc`` with ``credential`` embedded as the file ``credential_filename``, as PDF/A-3b.

    ``status_mark`` stamps a suspended, revoked, expired or corrected certificate across the page. The bytes depend
    only on the arguments (reportlab runs in invariant mode and the PDF dates are ``issued_at``), so the same
    certificate and credential always give the same PDF. Unsigned: :mod:`registry.rendering.signing` signs it.
    """
    if doc.cert_type not in TITLES:
        raise ValueError(f"unknown certificate type {doc.cert_type!r}")
    if "*" not in doc.holder_id_masked or _UNMASKED.search(doc.holder_id_masked):
        raise ValueError("holder_id_masked must be a masked identity number")
    if (
        not credential_filename
        or any(char in credential_filename for char in '/\\:"')
        or not credential_filename.isprintable()
    ):
        raise ValueError(f"unusable attachment name {credential_filename!r}")
    faces = faces or typefaces.embedded()
    title_zh, _ = TITLES[doc.cert_type]

    buffer = io.BytesIO()
    # initialFontName: otherwise reportlab names Helvetica in every page's resources. (Its stubs type it as a float.)
    canvas = Canvas(
        buffer,
        pagesize=A4,
        invariant=True,
        pageCompression=True,
        initialFontName=faces.cjk,  # type: ignore[arg-type]
    )
    _draw(canvas, doc, credential_filename, faces, status_mark)
    if status_mark is not None:
        draw_watermark(canvas, status_mark, faces, width=PAGE_WIDTH, height=PAGE_HEIGHT)
    canvas.showPage()
    canvas.save()
    info = pdfa.DocumentInfo(
        title=f"{title_zh} {doc.number_display}",
        author=doc.issuer_name,
        subject=SUBJECT,
        keywords=doc.number_display,
        creator=CREATOR,
        created=_local(doc.issued_at),
    )
    return pdfa.package(buffer.getvalue(), info=info, credential=credential, credential_filename=credential_filename)


def _draw(
    canvas: Canvas, doc: CertificateDocument, credential_filename: str, faces: Typefaces, mark: StatusMark | None
) -> None:
    y = _header(canvas, doc, faces)
    fields = _fields(doc, mark)
    guide = _Guide.of(doc, credential_filename, faces)
    # What the fields may take beyond one line each without pushing the guide onto the footer.
    spare = y - len(fields) * ROW - GUIDE_GAP - guide.height - FOOTER_CLEARANCE
    for label_zh, label_en, value, value_en in _laid_out(fields, faces, spare):
        _line(canvas, [_Run(label_zh, faces.cjk, 11, INK)], x=MARGIN, y=y)
        _line(canvas, [_Run(label_en, faces.latin, 7, MUTED)], x=MARGIN, y=y - 11)
        for index, runs in enumerate(value.lines):
            _line(canvas, runs, x=VALUE_X, y=y - index * value.leading)
        for index, runs in enumerate(value_en.lines):
            _line(canvas, runs, x=VALUE_X, y=y - value.extra - 12 - index * value_en.leading)
        y -= ROW + _drop(value, value_en)
    guide.draw(canvas, faces, top=y - GUIDE_GAP)
    _line(canvas, _runs(f"Talent Registry · {doc.number_display}", 7, MUTED, faces), y=40, centre=PAGE_WIDTH / 2)


def _header(canvas: Canvas, doc: CertificateDocument, faces: Typefaces) -> float:
    """The frame, the title and the number; returns where the first field goes."""
    title_zh, title_en = TITLES[doc.cert_type]
    canvas.setStrokeColor(ACCENT)  # a double frame
    canvas.setLineWidth(2)
    canvas.rect(22, 22, PAGE_WIDTH - 44, PAGE_HEIGHT - 44)
    canvas.setLineWidth(0.6)
    canvas.rect(29, 29, PAGE_WIDTH - 58, PAGE_HEIGHT - 58)

    top = PAGE_HEIGHT - 90
    _line(canvas, [_Run(title_zh, faces.cjk, 32, ACCENT)], y=top, centre=PAGE_WIDTH / 2)
    _line(canvas, [_Run(title_en, faces.latin, 13, MUTED)], y=top - 26, centre=PAGE_WIDTH / 2)
    number_line = [
        _Run("证书编号 ", faces.cjk, 11, INK),
        _Run("Certificate No.  ", faces.latin, 9, MUTED),
        _Run(doc.number_display, faces.latin_bold, 12, INK),
    ]
    _line(canvas, number_line, y=top - 58, centre=PAGE_WIDTH / 2)
    canvas.setStrokeColor(ACCENT)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN, top - 76, PAGE_WIDTH - MARGIN, top - 76)
    return top - 108


class _Lines(NamedTuple):
    lines: list[list[_Run]]
    leading: float  # from one line's baseline to the next

    @property
    def extra(self) -> float:
        """How much lower than one line the text below must go."""
        return self.leading * max(len(self.lines) - 1, 0)


def _laid_out(
    fields: list[tuple[str, str, str, str]], faces: Typefaces, spare: float
) -> list[tuple[str, str, _Lines, _Lines]]:
    """Each field's value (13 pt) and English value (8.5 pt) broken into lines no wider than the value column.

    A value that fits on one line keeps its size. A longer one (a body's full name, a speciality) wraps, onto as many
    as :data:`MOST_VALUE_LINES` lines, and is made smaller only if it needs more. While the extra lines of all the
    fields do not fit in ``spare`` points, every wrapped value is set smaller, by the same factor: at worst each is
    back on one line, as small as it must be (which always fits).
    """
    scale = 1.0
    while True:
        laid = [
            (zh, en, _wrapped(value, 13, INK, faces, scale), _wrapped(value_en, 8.5, MUTED, faces, scale))
            for zh, en, value, value_en in fields
        ]
        drop = sum(_drop(value, value_en) for _, _, value, value_en in laid)
        # Done when it fits, or when nothing takes more than its own row any more: ``spare`` is below zero when the
        # guide alone is taller than the page leaves it (a very long public base URL), and no scale makes it fit.
        if drop <= spare or drop == 0 or scale < MOST_SHRINKING:
            return laid
        scale *= 0.9


def _drop(value: _Lines, value_en: _Lines) -> float:
    """How much lower than usual the next field starts. A value with no English line below it has that line's room
    for its own second line."""
    if value_en.lines:
        return value.extra + value_en.extra
    return max(value.extra - ROW_WITHOUT_ENGLISH, 0.0)


def _wrapped(text: str, size: float, colour: Color, faces: Typefaces, scale: float) -> _Lines:
    """``text`` at ``size`` if it fits on one line of the value column, else broken into lines at ``size`` ×
    ``scale``, or smaller if it needs more than :data:`MOST_VALUE_LINES` of them. A line breaks between two Chinese
    characters or at a space, and inside a word only when the word alone is wider than a line."""
    width = PAGE_WIDTH - MARGIN - VALUE_X
    whole = _runs(text, size, colour, faces)
    if _width(whole) <= width:
        return _Lines([whole] if text else [], leading=size)
    size *= scale
    while True:
        lines = _broken(text, size, colour, faces, width)
        if len(lines) <= MOST_VALUE_LINES:
            return _Lines(lines, leading=round(size * 1.15, 2))
        size *= 0.95


def _broken(text: str, size: float, colour: Color, faces: Typefaces, width: float) -> list[list[_Run]]:
    lines: list[str] = []
    line = ""
    for piece in _BREAKS.findall(text):
        if line and _width(_runs((line + piece).rstrip(), size, colour, faces)) > width:
            lines.append(line.rstrip())
            line = ""
        while _width(_runs(piece.rstrip(), size, colour, faces)) > width and len(piece) > 1:
            cut = next(
                n for n in range(len(piece) - 1, 0, -1) if _width(_runs(piece[:n], size, colour, faces)) <= width
            )
            lines.append(piece[:cut])
            piece = piece[cut:]
        line += piece
    lines.append(line.rstrip())
    return [_runs(line, size, colour, faces) for line in lines]


def _fields(doc: CertificateDocument, mark: StatusMark | None) -> list[tuple[str, str, str, str]]:
    """(label zh, label en, value, English value or "") for each line of the certificate, in print order."""
    type_zh, type_en = TYPE_NAMES[doc.cert_type]
    fields = [
        ("姓名", "Name", doc.holder_name, ""),
        ("身份证件号码", "Identity document No.", doc.holder_id_masked, ""),
        ("证书类型", "Certificate type", type_zh, type_en),
    ]
    if doc.cert_type == "title":
        fields.append(("职称系列", "Title series", doc.series_zh or "—", ""))
        fields.append(("专业", "Speciality", doc.name_zh, doc.name_en))
        fields.append(("职称级别", "Title level", doc.level_name_zh, doc.level_name_en))
    else:
        fields.append(("职业（工种）", "Occupation", doc.name_zh, doc.name_en))
        fields.append(("职业编码", "Occupation code", doc.occupation_code or "—", ""))
        fields.append(("技能等级", "Skill level", doc.level_name_zh, doc.level_name_en))
    if doc.valid_until is None:
        validity, validity_en = "长期有效", "No expiry"
    else:
        validity, validity_en = _date_zh(doc.valid_until), doc.valid_until.isoformat()
    issued = _local(doc.issued_at)
    fields += [
        ("发证机构", "Issuing body", doc.issuer_name, f"Issuer code {doc.issuer_code}"),
        ("取得日期", "Awarded on", _date_zh(doc.awarded_on), doc.awarded_on.isoformat()),
        ("有效期至", "Valid until", validity, validity_en),
        (
            "证书状态",
            "Status",
            f"{doc.status_zh}{_since_zh(mark)}（以在线核验结果为准）",
            doc.status_en + _since_en(mark),
        ),
        (
            "签发时间",
            "Issued at",
            f"{_date_zh(issued.date())} {issued:%H:%M}（北京时间）",
            f"{issued:%Y-%m-%d %H:%M} UTC+8",
        ),
    ]
    return fields


@dataclass(frozen=True, slots=True)
class _Guide:
    """Below the fields: the QR code (as vector squares) and, beside it, how to verify the certificate in Chinese and
    English. Built before it is drawn, so that the fields know how much of the page it needs."""

    matrix: QrMatrix
    module: float  # the side of one module, in points
    paragraphs: tuple[tuple[Paragraph, float], ...]  # with its height
    height: float

    @classmethod
    def of(cls, doc: CertificateDocument, credential_filename: str, faces: Typefaces) -> _Guide:
        matrix = qr_matrix(doc.verify_url)
        total = matrix.modules + 2 * QUIET_ZONE
        module = min(3.4, 150 / total)
        width = PAGE_WIDTH - MARGIN - (MARGIN - QUIET_ZONE * module + total * module + 14)
        paragraphs = tuple(
            (paragraph, paragraph.wrap(width, PAGE_HEIGHT)[1])
            for paragraph in _how_to_verify(doc, credential_filename, faces)
        )
        text = 12 + sum(height for _, height in paragraphs) + 8 * (len(paragraphs) - 1)
        return cls(matrix, module, paragraphs, height=max(12 + total * module + 12, text))

    def draw(self, canvas: Canvas, faces: Typefaces, *, top: float) -> None:
        canvas.setStrokeColor(ACCENT)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, top, PAGE_WIDTH - MARGIN, top)
        # Vector modules rather than an embedded PNG: sharp at any print resolution and no image decoder needed. All
        # runs go into one filled path (no anti-aliasing seams between neighbours when rasterised), written as PDF
        # operators in module units under one transform: reportlab's path API formats every coordinate of the ~300
        # rectangles with its pure-Python float formatter, about a tenth of the page's cost.
        module = self.module
        side = (self.matrix.modules + 2 * QUIET_ZONE) * module
        left, bottom = MARGIN - QUIET_ZONE * module, top - 12 - side
        canvas.setFillColor(white)
        canvas.rect(left, bottom, side, side, stroke=0, fill=1)
        origin_x, origin_y = left + QUIET_ZONE * module, bottom + side - QUIET_ZONE * module
        operators = [f"q {module:.4f} 0 0 {-module:.4f} {origin_x:.4f} {origin_y:.4f} cm 0 g"]  # y runs down, per row
        operators += [f"{column} {row} {length} 1 re" for row, column, length in self.matrix.dark_runs()]
        operators.append("f Q")
        canvas.addLiteral("\n".join(operators))
        _line(canvas, _runs("扫码核验 Scan to verify", 8, MUTED, faces), y=bottom - 4, centre=left + side / 2)
        y = top - 12
        for paragraph, height in self.paragraphs:
            paragraph.drawOn(canvas, left + side + 14, y - height)
            y -= height + 8


def _how_to_verify(doc: CertificateDocument, credential_filename: str, faces: Typefaces) -> tuple[Paragraph, ...]:
    verify_page = doc.verify_url.rsplit("/", 1)[0]
    # The registry serves its keys beside the verify pages (public base URL + /.well-known/jwks.json).
    if "/v/" in doc.verify_url:
        base = doc.verify_url.rsplit("/v/", 1)[0]
    else:
        parts = urlsplit(doc.verify_url)
        base = f"{parts.scheme}://{parts.netloc}"
    jwks = f"{base}/.well-known/jwks.json"
    # --jwks: the keys a credential is checked against are the registry's, never ones the credential itself names.
    typed = f"registry verify-credential {escape(credential_filename)} --jwks"
    command = f'<font name="{faces.mono}">{typed}</font>'
    command_en = f'<font name="{faces.mono}">{typed} {escape(jwks)}</font>'
    zh = "<br/>".join(
        (
            '<font size="9.5">核验方法</font>',
            _markup(faces, "1. 用手机扫描左侧二维码，打开核验页面查看本证书的当前状态。"),
            _markup(faces, f"2. 或访问 {verify_page} ，输入证书编号 {doc.number_display} 和持证人姓名查询。"),
            _markup(faces, f"3. 离线核验：本 PDF 附有可验证凭证文件 {credential_filename} ，可用命令 ")
            + command
            + _markup(faces, " 加公钥集地址，对照登记系统公布的公钥集（JWKS）验证其签名。公钥集地址：")
            # Its own line: CJK wrapping cannot split the URL and would push the text past the margin.
            + "<br/>"
            + _markup(faces, jwks),
        )
    )
    en = "<br/>".join(
        (
            "<b>How to verify</b>",
            "1. Scan the QR code on the left to open this certificate's verification page and see its current status.",
            escape(
                f"2. Or go to {verify_page} and enter the certificate number {doc.number_display} and the holder's name"
            )
            + ".",
            escape(
                f"3. Offline: the credential file {credential_filename} attached to this PDF can be checked against "
                "the registry's JWKS with "
            )
            + command_en
            + ".",
        )
    )
    zh_style = ParagraphStyle("zh", fontName=faces.cjk, fontSize=8.5, leading=12.5, wordWrap="CJK", alignment=TA_LEFT)
    en_style = ParagraphStyle(
        "en", fontName=faces.latin, fontSize=7.8, leading=10.5, alignment=TA_LEFT, textColor=MUTED
    )
    return Paragraph(zh, zh_style), Paragraph(en, en_style)


class _Run(NamedTuple):
    text: str
    font: str
    size: float
    colour: Color


def _runs(text: str, size: float, colour: Color, faces: Typefaces, *, fit: float | None = None) -> list[_Run]:
    """``text`` split into Western runs and the rest (with base-14 fonts), shrunk to ``fit`` points if needed.

    Shrinking keeps an unusually long value, an issuer's full name say, inside the frame instead of over it.
    """
    if faces.single:
        runs = [_Run(piece, font, size, colour) for piece, font in _by_font(text, faces.cjk, faces)]
    else:
        runs = [
            _Run(match.group(), faces.latin if match.group(1) else faces.cjk, size, colour)
            for match in _SCRIPT_RUNS.finditer(text)
        ]
    natural = _width(runs)
    if fit is None or natural <= fit:
        return runs
    return [run._replace(size=size * fit / natural) for run in runs]


def _by_font(text: str, font: str, faces: Typefaces) -> list[tuple[str, str]]:
    """``text`` in pieces each drawn by one font: ``font`` where it has the glyph, else a fallback that does (a name
    with "ł" or a rare ideograph of extension B). A combining mark stays in its letter's font when that font has it."""
    pieces: list[tuple[str, str]] = []
    for character in text:
        mark = bool(pieces) and unicodedata.category(character).startswith("M")
        chosen = faces.font_for(character, pieces[-1][1] if mark else font)
        if pieces and pieces[-1][1] == chosen:
            pieces[-1] = (pieces[-1][0] + character, chosen)
        else:
            pieces.append((character, chosen))
    return pieces


def _width(runs: list[_Run]) -> float:
    return sum(pdfmetrics.stringWidth(run.text, run.font, run.size) for run in runs)


def _line(canvas: Canvas, runs: list[_Run], *, y: float, x: float | None = None, centre: float | None = None) -> None:
    """Draw ``runs`` from ``x``, or centred on ``centre``, as one text object.

    One text object per line so that extractors (and a reader's search) see "阿依古丽·买买提" as one string, not
    one line per font.
    """
    start = x if x is not None else (centre or 0) - _width(runs) / 2
    text = canvas.beginText(start, y)
    for run in runs:
        text.setFont(run.font, run.size)
        text.setFillColor(run.colour)
        text.textOut(run.text)
    canvas.drawText(text)


def _markup(faces: Typefaces, text: str) -> str:
    """``text`` as Paragraph markup, its Western runs switched to Helvetica as :func:`_runs` does."""
    return "".join(
        f'<font name="{faces.latin}">{escape(match.group())}</font>' if match.group(1) else escape(match.group())
        for match in _SCRIPT_RUNS.finditer(text)
    )


def _since_zh(mark: StatusMark | None) -> str:
    """The day a certificate that changed did so, on the status line beside its status: " · 2026年12月1日"."""
    return f" · {_date_zh(mark.changed_on)}" if mark is not None and mark.changed_on else ""


def _since_en(mark: StatusMark | None) -> str:
    """The English status line: the day of the change and the public reason, or that the online check decides."""
    if mark is None:
        return " (the online check is authoritative)"
    since = f" since {mark.changed_on.isoformat()}" if mark.changed_on else ""
    return since + (f" · {mark.reason}" if mark.reason else "")


def _date_zh(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _local(moment: datetime) -> datetime:
    """Beijing time; a naive timestamp is taken to be UTC, as the registry stores them."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(CHINA_STANDARD_TIME)
