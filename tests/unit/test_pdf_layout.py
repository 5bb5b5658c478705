"""Long values on the e-certificate: a body's 128-character name, a long speciality or a foreign name wraps inside the
value column at a size that can be read, instead of being squeezed onto one line at 3 to 5 points; and however long
the values, nothing leaves the frame or runs into the guide or the footer."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, replace

import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject
from reportlab.pdfbase import pdfmetrics

from registry.rendering import typefaces
from registry.rendering.pdf import (
    FOOTER_CLEARANCE,
    MARGIN,
    PAGE_WIDTH,
    VALUE_X,
    CertificateDocument,
    _fields,
    _laid_out,
)
from tests.unit.test_rendering import SKILL, TITLE, render

BODY_NAME = "广东省某某职业技能等级认定评价机构有限公司"  # 21 characters: one line
LONGEST_BODY_NAME = (BODY_NAME * 7)[:128]  # an issuing body's name may have 128 characters
LONGEST_SPECIALITY = ("具身智能与脑机接口交叉方向" * 5)[:64]
LATIN_NAME = "Maximilian Alexander Christopher Montgomery-Worthington Łukasz"


@dataclass(frozen=True)
class Shown:
    text: str
    x: float
    y: float
    size: float


def shown(pdf: bytes) -> list[Shown]:
    """Every piece of text drawn on the page, where (its start) and how large."""
    pieces: list[Shown] = []

    def visit(text: str, cm: list[float], tm: list[float], font: DictionaryObject | None, size: float) -> None:
        if text.strip():
            scale = (tm[3] * cm[3]) or 1
            pieces.append(Shown(text, x=tm[4] * cm[0] + cm[4], y=tm[5] * cm[3] + cm[5], size=size * scale))

    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return pieces


def lines_of(pieces: list[Shown], text: str) -> list[Shown]:
    """The value-column lines that, read in order, spell ``text`` (spaces aside): each line is the pieces drawn on
    one baseline from the column's left edge on (a name in two fonts is two pieces)."""
    starts = [piece for piece in pieces if abs(piece.x - VALUE_X) < 0.5]
    column = [
        Shown(
            "".join(piece.text for piece in pieces if piece.y == start.y and piece.x >= VALUE_X - 0.5),
            start.x,
            start.y,
            start.size,
        )
        for start in starts
    ]
    wanted = text.replace(" ", "")
    for first in range(len(column)):
        spelt = ""
        for last in range(first, len(column)):
            spelt += column[last].text.replace(" ", "")
            if spelt == wanted:
                return column[first : last + 1]
            if not wanted.startswith(spelt):
                break
    raise AssertionError(f"{text!r} is not in the value column")


def test_a_value_that_fits_keeps_one_line_at_13_points() -> None:
    pieces = shown(render(SKILL))
    (line,) = lines_of(pieces, BODY_NAME)
    assert line.size == pytest.approx(13)


def test_a_128_character_body_name_wraps_onto_lines_of_at_least_10_points() -> None:
    pieces = shown(render(replace(SKILL, issuer_name=LONGEST_BODY_NAME)))
    lines = lines_of(pieces, LONGEST_BODY_NAME)
    assert 2 <= len(lines) <= 4
    assert all(line.size >= 10 for line in lines)  # was one line at 2.6 points
    assert [line.y for line in lines] == sorted((line.y for line in lines), reverse=True)
    english = next(piece for piece in pieces if piece.text.startswith("Issuer code"))
    assert english.y < lines[-1].y  # the line below moves down, it is not drawn over the name


def test_a_64_character_body_name_stays_at_full_size_on_three_lines() -> None:
    name = LONGEST_BODY_NAME[:64]
    lines = lines_of(shown(render(replace(SKILL, issuer_name=name))), name)
    assert len(lines) == 3
    assert all(line.size == pytest.approx(13) for line in lines)


def test_a_long_latin_name_breaks_between_words() -> None:
    lines = lines_of(shown(render(replace(SKILL, holder_name=LATIN_NAME))), LATIN_NAME)
    assert [line.text.strip() for line in lines] == [
        "Maximilian Alexander Christopher",
        "Montgomery-Worthington Łukasz",
    ]
    assert all(line.size == pytest.approx(13) for line in lines)


def test_a_word_longer_than_the_column_is_cut_only_where_it_must_be() -> None:
    word = "Z" * 60
    lines = lines_of(shown(render(replace(SKILL, holder_name=word))), word)
    assert len(lines) == 2
    assert all(line.size == pytest.approx(13) for line in lines)


LONGEST: CertificateDocument = replace(
    TITLE,
    holder_name=("阿依古丽·买买提" * 8)[:64],
    series_zh="工程技术" * 16,
    name_zh=LONGEST_SPECIALITY,
    name_en=("Embodied Intelligence and Brain Computer Interface Engineering " * 3)[:128],
    issuer_name=LONGEST_BODY_NAME,
)


def test_with_every_value_at_its_longest_the_page_still_holds_and_reads() -> None:
    pieces = shown(render(LONGEST))
    for value in (LONGEST.holder_name, LONGEST.series_zh, LONGEST_SPECIALITY, LONGEST_BODY_NAME):
        assert value is not None
        lines = lines_of(pieces, value)
        assert all(line.size >= 6 for line in lines), value  # was 2.6 points for the body's name
    guide = [piece for piece in pieces if "Talent Registry ·" not in piece.text]
    assert min(piece.y for piece in guide) >= FOOTER_CLEARANCE - 1  # the guide stays above the footer


def test_every_value_line_stays_inside_the_value_column() -> None:
    faces = typefaces.embedded()
    for doc in (LONGEST, replace(SKILL, issuer_name=LONGEST_BODY_NAME), replace(SKILL, holder_name=LATIN_NAME)):
        for spare in (0.0, 39.5, 500.0):
            for _, _, value, value_en in _laid_out(_fields(doc, None), faces, spare):
                for runs in value.lines + value_en.lines:
                    width = sum(pdfmetrics.stringWidth(run.text, run.font, run.size) for run in runs)
                    assert width <= PAGE_WIDTH - MARGIN - VALUE_X + 0.01


def test_a_guide_taller_than_the_page_leaves_still_gives_a_page() -> None:
    """A very long public base URL makes the guide taller than the room below the fields (``spare`` below zero): no
    scale makes the values fit, and the layout must still end (it looped for ever, freezing the server's event loop)."""
    base = "https://talent-registry.rsj.beijing.gov.cn/" + "/".join(["services", "certificate-verification"] * 4)
    doc = replace(SKILL, issuer_name=LONGEST_BODY_NAME, verify_url=f"{base}/v/Zz9yXw8vUt7sRq6pOn5mLk4j")
    finished: list[bytes] = []
    worker = threading.Thread(target=lambda: finished.append(render(doc)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert finished, "the layout did not end"
    lines = lines_of(shown(finished[0]), LONGEST_BODY_NAME)
    assert lines  # the name is there, smaller: the page holds what it can
    laid = _laid_out(_fields(doc, None), typefaces.embedded(), spare=-40.0)
    assert all(len(value.lines) <= 1 for _, _, value, _ in laid)
