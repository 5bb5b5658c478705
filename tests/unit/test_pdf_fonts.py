"""A faithful e-certificate: every glyph travels inside the PDF, so a computer without Chinese fonts shows the same
page; the file is laid out as PDF/A-3b with its credential as an associated file."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops
from pypdf import PdfReader
from reportlab.pdfbase.ttfonts import TTFont

from api.documents import status_mark
from registry import printable
from registry.rendering import stamps, typefaces
from registry.rendering.pdf import certificate_pdf
from registry.verification.schemas import Verification, VerificationResult
from tests.unit.test_rendering import CREDENTIAL, SKILL, TITLE

needs_poppler = pytest.mark.skipif(
    shutil.which("pdffonts") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils is not installed; .ci/run installs it",
)
REVOKED = stamps.StatusMark("已撤销", "REVOKED", date(2026, 12, 1), "以欺骗手段取得 obtained by deception")
# Rare characters that do occur in people's names (extension A and B, compatibility ideographs).
RARE_NAME = "龑䶮𠮷堃赟喆昇"
# Drawn by the fallback fonts: letters with diacritics, Cyrillic, Greek, ideographs of extensions B and C.
FALLBACK_NAME = "Łukasz Nguyễn Şükrü Вʼячеслав Ωμέγα 𤭢𪚥\U00031350"


def render(pdf: bytes, tmp_path: Path, name: str, *, env: dict[str, str] | None = None) -> Image.Image:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(  # noqa: S603 — a fixed tool on a file this test wrote
        ["pdftoppm", "-r", "60", "-png", "-singlefile", str(path), str(tmp_path / name)],  # noqa: S607
        check=True,
        capture_output=True,
        env=env,
    )
    return Image.open(tmp_path / f"{name}.png").convert("RGB")


def fonts_of(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(  # noqa: S603
        ["pdffonts", str(path)],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split() for line in listing.splitlines()[2:] if line.strip()]


@needs_poppler
@pytest.mark.parametrize(
    "pdf",
    [
        pytest.param(lambda: certificate_pdf(TITLE, credential=CREDENTIAL, credential_filename="t.vc.jwt"), id="title"),
        pytest.param(
            lambda: certificate_pdf(SKILL, credential=CREDENTIAL, credential_filename="s.vc.jwt", status_mark=REVOKED),
            id="skill-revoked",
        ),
        pytest.param(lambda: stamps.seal_pdf(TITLE.issuer_name, typefaces.embedded()), id="seal"),
        pytest.param(
            lambda: certificate_pdf(
                replace(TITLE, holder_name=FALLBACK_NAME), credential=CREDENTIAL, credential_filename="t.vc.jwt"
            ),
            id="fallback-name",
        ),
        pytest.param(lambda: stamps.seal_pdf("北京市𤭢评审委员会 Łódź", typefaces.embedded()), id="fallback-seal"),
    ],
)
def test_every_font_is_embedded_as_a_subset_and_no_base14_font_is_named(pdf: object, tmp_path: Path) -> None:
    assert callable(pdf)
    rows = fonts_of(pdf(), tmp_path)
    assert rows
    for row in rows:
        name, emb, sub, uni = row[0], row[-5], row[-4], row[-3]
        ours = "NotoSansSC-Registry|NotoSansRegistry|HanaMinBRegistry|BabelStoneHanRegistry"
        assert re.fullmatch(rf"[A-Z]{{6}}\+({ours})", name), row
        assert (emb, sub, uni) == ("yes", "yes", "yes"), row


def test_the_coverage_list_is_what_the_shipped_fonts_draw() -> None:
    """``registry.printable`` refuses a name by this list: it must be the fonts' own, character for character."""
    drawn: set[int] = set()
    for path in (typefaces.FONT_FILE, *typefaces.FALLBACK_FILES.values()):
        drawn |= set(TTFont(f"probe-{path.stem}", str(path)).face.charToGlyph)
    drawn.discard(0xFFFF)  # reportlab reads the cmap's closing segment (a noncharacter) as a mapping
    listed = {point for point in range(0x110000) if printable.drawn(chr(point))}
    assert listed == drawn


def test_a_character_the_main_font_lacks_is_drawn_by_a_fallback() -> None:
    faces = typefaces.embedded()
    assert faces.font_for("张", faces.cjk) == typefaces.SANS
    assert faces.font_for("ł", faces.cjk) == "NotoSans-Registry"
    assert faces.font_for("Ж", faces.cjk) == "NotoSans-Registry"
    assert faces.font_for("\U00024b62", faces.cjk) == "HanaMinB-Registry"
    assert faces.font_for("\U00031350", faces.cjk) == "BabelStoneHan-Registry"  # extension H
    assert faces.font_for("ʼ", faces.cjk) == "NotoSans-Registry"
    assert faces.font_for("😀", faces.cjk) == typefaces.SANS  # nothing draws it: refused at issuance


@needs_poppler
@pytest.mark.parametrize("mark", [None, REVOKED], ids=["valid", "revoked"])
def test_the_page_renders_the_same_on_a_machine_without_any_font(
    mark: stamps.StatusMark | None, tmp_path: Path
) -> None:
    doc = replace(SKILL, holder_name="阿依古丽·" + RARE_NAME, issuer_name=FALLBACK_NAME)
    pdf = certificate_pdf(doc, credential=CREDENTIAL, credential_filename="s.vc.jwt", status_mark=mark)
    bare = render(pdf, tmp_path, "bare", env=no_fonts(tmp_path))
    usual = render(pdf, tmp_path, "usual")
    assert ImageChops.difference(bare, usual).getbbox() is None
    # And the page is not blank where the name is: the rare characters were drawn, not dropped.
    assert bare.getextrema() != ((255, 255), (255, 255), (255, 255))


@needs_poppler
def test_without_fonts_the_former_unembedded_page_would_not_render_the_same(tmp_path: Path) -> None:
    """The check above has teeth: the empty font set does change a page that relies on the reader's fonts."""
    pdf = certificate_pdf(TITLE, credential=CREDENTIAL, credential_filename="t.vc.jwt", faces=typefaces.base14())
    bare = render(pdf, tmp_path, "bare", env=no_fonts(tmp_path))
    usual = render(pdf, tmp_path, "usual")
    assert ImageChops.difference(bare, usual).getbbox() is not None


def no_fonts(tmp_path: Path) -> dict[str, str]:
    """An environment whose fontconfig knows no font at all, as on a machine without Chinese (or any) fonts."""
    empty = tmp_path / "fontconfig"
    empty.mkdir(exist_ok=True)
    (empty / "fonts.conf").write_text('<?xml version="1.0"?>\n<fontconfig></fontconfig>\n')
    return {"FONTCONFIG_FILE": str(empty / "fonts.conf"), "PATH": "/usr/bin:/bin"}


def test_every_character_a_certificate_prints_has_a_glyph_in_the_shipped_font() -> None:
    font = TTFont("probe", str(typefaces.FONT_FILE))
    text = "".join(
        page.extract_text()
        for doc in (TITLE, SKILL)
        for page in PdfReader(
            io.BytesIO(certificate_pdf(doc, credential=CREDENTIAL, credential_filename="c.vc.jwt", status_mark=REVOKED))
        ).pages
    )
    wanted = {char for char in text + RARE_NAME + "·—（）：，。" if not char.isspace()}
    missing = sorted(char for char in wanted if ord(char) not in font.face.charToGlyph)
    assert missing == []


def test_the_pdf_is_laid_out_as_pdf_a_3b_with_the_credential_as_an_associated_file() -> None:
    pdf = certificate_pdf(TITLE, credential=CREDENTIAL, credential_filename="t.vc.jwt")
    reader = PdfReader(io.BytesIO(pdf))
    root: Any = reader.trailer["/Root"]
    metadata = root["/Metadata"].get_object()
    assert (metadata["/Type"], metadata["/Subtype"]) == ("/Metadata", "/XML")
    xmp = metadata.get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in xmp
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    assert reader.metadata is not None
    assert f">{reader.metadata.title}</rdf:li>" in xmp  # dc:title agrees with /Info /Title
    (intent,) = root["/OutputIntents"]
    intent = intent.get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent["/DestOutputProfile"].get_object()["/N"] == 3
    (associated,) = root["/AF"]
    filespec = associated.get_object()
    assert filespec["/AFRelationship"] == "/Data"
    assert filespec["/UF"] == filespec["/F"] == "t.vc.jwt"
    assert filespec["/EF"]["/F"].get_object().get_data() == CREDENTIAL
    trailer: Any = reader.trailer
    assert trailer["/ID"][0] != b"\0" * 16


def test_a_revoked_certificate_says_so_across_the_page_with_date_and_reason() -> None:
    pdf = certificate_pdf(TITLE, credential=CREDENTIAL, credential_filename="t.vc.jwt", status_mark=REVOKED)
    text = re.sub(r"\s+", "", PdfReader(io.BytesIO(pdf)).pages[0].extract_text())
    assert "已撤销REVOKED" in text
    assert "2026年12月1日" in text
    assert "2026-12-01" in text
    assert "以欺骗手段取得" in text


def test_the_seal_carries_the_body_name() -> None:
    seal = stamps.seal_pdf(TITLE.issuer_name, typefaces.embedded())
    text = re.sub(r"\s+", "", PdfReader(io.BytesIO(seal)).pages[0].extract_text())
    for char in TITLE.issuer_name:
        assert char in text
    assert stamps.SEAL_MOTTO in text


@pytest.mark.parametrize(
    ("result", "label"),
    [
        (VerificationResult.valid, None),
        (VerificationResult.suspended, "已暂停 SUSPENDED"),
        (VerificationResult.revoked, "已撤销 REVOKED"),
        (VerificationResult.expired, "已过期 EXPIRED"),
        (VerificationResult.superseded, "已更正 SUPERSEDED"),
    ],
)
def test_each_status_but_valid_gets_its_mark_with_the_public_reason(
    result: VerificationResult, label: str | None
) -> None:
    verification = Verification(
        result=result,
        certificate=None,
        signature_valid=True,
        checked_at=datetime(2026, 12, 2, tzinfo=UTC),
        status_changed_on=date(2026, 12, 1) if label else None,
        status_reason="fraud" if result is VerificationResult.revoked else None,
    )
    mark = status_mark(verification)
    if label is None:
        assert mark is None
        return
    assert mark is not None
    assert f"{mark.label_zh} {mark.label_en}" == label
    assert mark.changed_on == date(2026, 12, 1)
    assert (mark.reason is not None) == (result is VerificationResult.revoked)
