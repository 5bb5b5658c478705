"""Stories about what a person holds: QR codes that scan back to the verify URL, and an e-certificate PDF that reads,
searches, carries its credential and still scans once printed at 150 dpi."""

from __future__ import annotations

import io
import random
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import qrcode
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import ArrayObject, TextStringObject
from qrcode.constants import ERROR_CORRECT_M

from registry.rendering.pdf import CertificateDocument, certificate_pdf
from registry.rendering.qr import QUIET_ZONE, qr_matrix, qr_png, qr_svg

URL = "https://registry.example.gov.cn/v/Ab3dEf6hIj9kLm2nOp5qRs8t"  # base URL + 24 base64url characters
SVG_NS = "{http://www.w3.org/2000/svg}"
EC_ORDER = "LMQH"
CREDENTIAL = b"eyJhbGciOiJFZERTQSIsInR5cCI6InZjK2p3dCJ9.eyJzdWIiOiJCSlQyMDI2N0szTTlRMlg0In0.c2lnbmF0dXJl\n\x00\xff"

TITLE = CertificateDocument(
    cert_type="title",
    number_display="BJ-T-2026-7K3M9Q2X-4",
    holder_name="张三丰",
    holder_id_masked="11**************3X",
    series_zh="工程技术",
    name_zh="具身智能",
    name_en="Embodied Intelligence",
    occupation_code=None,
    level_name_zh="副高级",
    level_name_en="Deputy Senior",
    issuer_name="北京市人力资源和社会保障局",
    issuer_code="BJ-HRSS",
    awarded_on=date(2026, 11, 20),
    valid_until=None,
    status_zh="有效",
    status_en="Valid",
    verify_url=URL,
    issued_at=datetime(2026, 11, 22, 8, 5, tzinfo=UTC),
)
SKILL = CertificateDocument(
    cert_type="skill",
    number_display="GD-S-2026-ZMZYPF4Q-O",
    holder_name="阿依古丽·买买提",
    holder_id_masked="44**************12",
    series_zh=None,
    name_zh="人工智能训练师",
    name_en="Artificial Intelligence Trainer",
    occupation_code="4-04-05-05",
    level_name_zh="三级/高级工",
    level_name_en="Level 3 / Senior Worker",
    issuer_name="广东省某某职业技能等级认定评价机构有限公司",
    issuer_code="GD-EVAL-017",
    awarded_on=date(2026, 6, 1),
    valid_until=date(2029, 5, 31),
    status_zh="有效",
    status_en="Valid",
    verify_url="https://registry.example.gov.cn/v/Zz9yXw8vUt7sRq6pOn5mLk4j",
    issued_at=datetime(2026, 6, 2, 1, 0, tzinfo=UTC),
)


def decode(image: Image.Image) -> list[zxingcpp.Barcode]:
    return list(zxingcpp.read_barcodes(image))


def ec_level(result: zxingcpp.Barcode) -> str:
    """The error-correction level zxing read; the attribute was renamed between zxing-cpp releases."""
    level = getattr(result, "ec_level", None) or getattr(result, "error_correction_level", "")
    return str(level)


def png_modules(png: bytes, modules: int) -> tuple[str, ...]:
    """Read the symbol back out of a PNG by sampling each module's centre ("1" = dark), quiet zone excluded."""
    image = Image.open(io.BytesIO(png)).convert("L")
    scale = image.width // (modules + 2 * QUIET_ZONE)
    return tuple(
        "".join(
            "1"
            if image.getpixel(((QUIET_ZONE + c) * scale + scale // 2, (QUIET_ZONE + r) * scale + scale // 2)) == 0
            else "0"
            for c in range(modules)
        )
        for r in range(modules)
    )


def reference_rows(url: str) -> tuple[str, ...]:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
    code.add_data(url, optimize=0)
    code.make()
    return tuple("".join("1" if dark else "0" for dark in row) for row in code.modules)


# --- QR: the symbol -------------------------------------------------------------------------------------------------


def test_the_symbol_is_exactly_the_one_qrcode_would_make_for_any_url_length() -> None:
    # The fast mask choice must pick qrcode's mask every time; lengths reach version 7+ (version info blocks).
    chooser = random.Random(20261122)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_/.:?=&%中"
    urls = [URL] + [
        "https://registry.example.gov.cn/v/" + "".join(chooser.choice(alphabet) for _ in range(length))
        for length in [*range(1, 40), 60, 100, 140, 190, 250, 330, 450, 600, 800]  # versions 2..~24
    ]
    for url in urls:
        assert qr_matrix(url).rows == reference_rows(url), url


def test_a_typical_verify_url_is_a_version_4_symbol() -> None:
    assert qr_matrix(URL).modules == 33  # so the printed modules stay big


@pytest.mark.parametrize("url", ["", "x" * 3000], ids=["empty", "too-long"])
def test_urls_that_cannot_be_encoded_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        qr_png(url)


# --- QR: PNG --------------------------------------------------------------------------------------------------------


def test_the_png_scans_back_to_exactly_the_url_at_level_m_or_better() -> None:
    image = Image.open(io.BytesIO(qr_png(URL)))
    results = decode(image)
    assert len(results) == 1
    assert results[0].text == URL
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    assert EC_ORDER.index(ec_level(results[0])) >= EC_ORDER.index("M")


def test_the_png_is_a_small_one_bit_image_of_the_same_symbol() -> None:
    png = qr_png(URL)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[24:26] == b"\x01\x00"  # IHDR: bit depth 1, colour type 0 (greyscale)
    assert Image.open(io.BytesIO(png)).mode == "1"
    assert len(png) < 2048
    assert png_modules(png, 33) == qr_matrix(URL).rows


def test_the_png_has_a_white_quiet_zone_of_exactly_four_modules() -> None:
    image = Image.open(io.BytesIO(qr_png(URL))).convert("L")
    total = 33 + 2 * QUIET_ZONE
    scale = image.width // total
    border = QUIET_ZONE * scale
    for y in range(image.height):
        for x in range(image.width):
            if x < border or y < border or x >= image.width - border or y >= image.height - border:
                assert image.getpixel((x, y)) == 255, (x, y)
    # The finder patterns start right after the quiet zone: top-left, top-right and bottom-left corners are dark.
    inner = image.width - border - 1
    for x, y in [(border, border), (inner, border), (border, inner)]:
        assert image.getpixel((x, y)) == 0, (x, y)


@pytest.mark.parametrize("size", [64, 128, 300, 512, 1024, 2048])
def test_the_png_is_as_wide_as_the_size_allows_and_scans(size: int) -> None:
    image = Image.open(io.BytesIO(qr_png(URL, size=size)))
    total = 33 + 2 * QUIET_ZONE
    assert image.width == image.height
    assert size - total < image.width <= size  # the largest whole number of pixels per module that fits
    assert image.width % total == 0
    if size >= 128:
        assert [result.text for result in decode(image)] == [URL]


@pytest.mark.parametrize("size", [63, 2049, 0, -512])
def test_sizes_outside_64_to_2048_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        qr_png(URL, size=size)
    with pytest.raises(ValueError, match="size"):
        qr_svg(URL, size=size)


# --- QR: SVG --------------------------------------------------------------------------------------------------------


def svg_modules(root: ET.Element, modules: int) -> tuple[str, ...]:
    """Rebuild the module matrix from the path's runs ("M{x} {y}h{n}v1h-{n}z", in modules, quiet zone included)."""
    path = root.find(f"{SVG_NS}path")
    assert path is not None
    grid = [["0"] * modules for _ in range(modules)]
    commands = path.get("d", "")
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z", commands)
    assert "".join(f"M{x} {y}h{n}v1h-{m}z" for x, y, n, m in runs) == commands  # nothing else in the path
    for x, y, n, m in runs:
        assert n == m
        for column in range(int(x), int(x) + int(n)):
            grid[int(y) - QUIET_ZONE][column - QUIET_ZONE] = "1"
    return tuple("".join(row) for row in grid)


def test_the_svg_is_standalone_sized_like_the_png_and_draws_the_same_symbol() -> None:
    svg = qr_svg(URL, size=512)
    root = ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input
    total = 33 + 2 * QUIET_ZONE
    width = Image.open(io.BytesIO(qr_png(URL, size=512))).width
    assert root.tag == f"{SVG_NS}svg"
    assert (root.get("width"), root.get("height")) == (str(width), str(width))
    assert root.get("viewBox") == f"0 0 {total} {total}"
    background = root.find(f"{SVG_NS}rect")
    assert background is not None
    assert background.get("fill") == "#fff"
    assert (background.get("width"), background.get("height")) == (str(total), str(total))
    modules = svg_modules(root, 33)
    assert modules == png_modules(qr_png(URL), 33)
    assert sum(row.count("1") for row in modules) == sum(row.count("1") for row in qr_matrix(URL).rows)


def test_the_svg_geometry_scans() -> None:
    # No SVG rasteriser is installed (cairosvg/rsvg), so draw the rebuilt path geometry and scan that.
    root = ET.fromstring(qr_svg(URL))  # noqa: S314 - our own output, not untrusted input
    modules = svg_modules(root, 33)
    scale, total = 8, 33 + 2 * QUIET_ZONE
    image = Image.new("L", (total * scale, total * scale), 255)
    for r, row in enumerate(modules):
        for c, dark in enumerate(row):
            if dark == "1":
                left, top = (QUIET_ZONE + c) * scale, (QUIET_ZONE + r) * scale
                image.paste(0, (left, top, left + scale, top + scale))
    assert [result.text for result in decode(image)] == [URL]


# --- PDF ------------------------------------------------------------------------------------------------------------


def render(doc: CertificateDocument) -> bytes:
    return certificate_pdf(doc, credential=CREDENTIAL, credential_filename="BJT20267K3M9Q2X4.vc.jwt")


def page_text(pdf: bytes) -> str:
    return PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def test_a_title_certificate_reads_and_searches_in_chinese() -> None:
    text = page_text(render(TITLE))
    for expected in [
        "职称证书",
        "Professional Title Certificate",
        "BJ-T-2026-7K3M9Q2X-4",
        "张三丰",
        "工程技术",
        "具身智能",
        "Embodied Intelligence",
        "副高级",
        "Deputy Senior",
        "北京市人力资源和社会保障局",
        "2026年11月20日",
        "长期有效",
        "有效",
        "2026年11月22日 16:05",  # issued_at shown in Beijing time
        "扫描",
        "registry verify-credential BJT20267K3M9Q2X4.vc.jwt",
        "https://registry.example.gov.cn/.well-known/jwks.json",
        "How to verify",
    ]:
        assert expected in text, expected


def test_a_skill_certificate_shows_the_occupation_and_its_code() -> None:
    text = page_text(render(SKILL))
    for expected in [
        "职业技能等级证书",
        "Vocational Skill Level Certificate",
        "阿依古丽·买买提",  # one searchable string although "·" is drawn in another font
        "人工智能训练师",
        "4-04-05-05",
        "三级/高级工",
        "2029年5月31日",
    ]:
        assert expected in text, expected
    assert "职称证书" not in text
    assert "长期有效" not in text


@pytest.mark.parametrize("doc", [TITLE, SKILL], ids=["title", "skill"])
def test_only_the_masked_identity_number_is_printed(doc: CertificateDocument) -> None:
    pdf = render(doc)
    text = page_text(pdf)
    assert doc.holder_id_masked in text
    assert not re.search(r"\d{17}[\dXx]|\d{15}", text)


@pytest.mark.parametrize("masked", ["110101199003071234", "11010119900307123X", "110101900307123", "110101"])
def test_an_unmasked_identity_number_is_refused(masked: str) -> None:
    with pytest.raises(ValueError, match="masked"):
        render(replace(TITLE, holder_id_masked=masked))


@pytest.mark.parametrize("filename", ["", "../x.jwt", "a/b.jwt", "x\n.jwt"])
def test_unusable_attachment_names_are_refused(filename: str) -> None:
    with pytest.raises(ValueError, match="attachment"):
        certificate_pdf(TITLE, credential=CREDENTIAL, credential_filename=filename)


def test_an_unknown_certificate_type_is_refused() -> None:
    with pytest.raises(ValueError, match="type"):
        render(replace(TITLE, cert_type="diploma"))


def test_the_pdf_has_metadata_one_a4_page_and_the_credential_attached() -> None:
    reader = PdfReader(io.BytesIO(render(TITLE)))
    metadata = reader.metadata
    assert metadata is not None
    assert metadata.title == "职称证书 BJ-T-2026-7K3M9Q2X-4"
    assert metadata.author == "北京市人力资源和社会保障局"
    assert metadata.subject == "Talent Registry e-certificate"
    assert metadata.creator == "Talent Registry"
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx((595.2756, 841.8898), abs=0.01)
    assert dict(reader.attachments) == {"BJT20267K3M9Q2X4.vc.jwt": [CREDENTIAL]}
    (attachment,) = reader.attachment_list
    assert attachment.subtype == "/application/vc+jwt"


def test_the_pdf_depends_only_on_its_inputs() -> None:
    first, second = render(TITLE), render(TITLE)
    assert first == second
    other = certificate_pdf(TITLE, credential=CREDENTIAL + b"x", credential_filename="BJT20267K3M9Q2X4.vc.jwt")
    assert other != first
    assert file_identifier(first) != file_identifier(other)  # each document gets its own /ID


def file_identifier(pdf: bytes) -> bytes:
    identifier = PdfReader(io.BytesIO(pdf)).trailer["/ID"]
    assert isinstance(identifier, ArrayObject)
    first = identifier[0]
    return first.original_bytes if isinstance(first, TextStringObject) else bytes(first)


@pytest.mark.parametrize("doc", [TITLE, SKILL], ids=["title", "skill"])
def test_the_qr_code_on_the_pdf_scans_after_rasterising_at_150_dpi(doc: CertificateDocument, tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm not found: install poppler-utils (CI does) to rasterise the PDF")
    source = tmp_path / "certificate.pdf"
    source.write_bytes(render(doc))
    subprocess.run(  # noqa: S603 - fixed arguments, a file we just wrote
        ["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(source), str(tmp_path / "page")],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=60,
    )
    (page,) = tmp_path.glob("page*.png")
    image = Image.open(page)
    assert image.width == pytest.approx(595.2756 / 72 * 150, abs=1)
    results = decode(image)
    assert [result.text for result in results] == [doc.verify_url]
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
