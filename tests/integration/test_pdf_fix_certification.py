"""The registry's seal certifies the e-certificate PDF and permits no changes after it (DocMDP P=1).

So no incremental update — an annotation, a form field, new page content — leaves a reader calling the seal valid,
whatever the update draws; the page as served still renders, revocation stamp and all. The overlay attack itself is
tests/integration/test_employer_attack_pdf_overlay.py.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import read_certification_data

from tests.factories import issued_certificate
from tests.integration.lifecycle_support import act, set_up
from tests.integration.test_employer_attack_pdf_overlay import painted_over
from tests.integration.test_pdf_signature import (
    _reddish_share,
    _render,
    issuer_pdf,
    page_text,
    root_certificate,
    signature_status,
)

# Over the level and holder lines, left of the seal (points, from the bottom left).
BOX = (60, 420, 400, 560)
WHITE_BOX = b"q 1 1 1 rg %d %d %d %d re f Q" % (BOX[0], BOX[1], BOX[2] - BOX[0], BOX[3] - BOX[1])


def _written(writer: IncrementalPdfFileWriter) -> bytes:
    output = io.BytesIO()
    writer.write(output)  # type: ignore[no-untyped-call]
    return output.getvalue()


def _form(writer: IncrementalPdfFileWriter, content: bytes) -> generic.IndirectObject:
    """A form XObject of ``BOX``'s size drawing ``content`` (an appearance stream)."""
    form = generic.StreamObject(stream_data=content)
    form["/Type"] = generic.NameObject("/XObject")
    form["/Subtype"] = generic.NameObject("/Form")
    size = (0, 0, BOX[2] - BOX[0], BOX[3] - BOX[1])
    form["/BBox"] = generic.ArrayObject([generic.NumberObject(v) for v in size])  # type: ignore[no-untyped-call]
    return writer.add_object(form)


def _rect() -> generic.ArrayObject:
    return generic.ArrayObject([generic.NumberObject(v) for v in BOX])  # type: ignore[no-untyped-call]


def with_annotation(pdf: bytes) -> bytes:
    """A printable square annotation with an opaque white appearance (what a "commenting" reader allows)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page = writer.root["/Pages"]["/Kids"].raw_get(0)
    appearance = _form(writer, b"1 1 1 rg 0 0 %d %d re f" % (BOX[2] - BOX[0], BOX[3] - BOX[1]))
    annotation = generic.DictionaryObject(  # type: ignore[no-untyped-call]
        {
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/Square"),
            generic.NameObject("/Rect"): _rect(),
            generic.NameObject("/F"): generic.NumberObject(4),  # type: ignore[no-untyped-call]  # printable
            generic.NameObject("/P"): page,
            generic.NameObject("/AP"): generic.DictionaryObject({generic.NameObject("/N"): appearance}),  # type: ignore[no-untyped-call]
        }
    )
    writer.register_annotation(page, writer.add_object(annotation))  # type: ignore[no-untyped-call]
    return _written(writer)


def with_signature_field(pdf: bytes) -> bytes:
    """A new, empty signature field whose appearance hides the level and name ("form filling")."""
    return painted_over(pdf, BOX)


def with_page_content(pdf: bytes) -> bytes:
    """A content stream appended to page 1 that paints a white box."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    stream = writer.add_object(generic.StreamObject(stream_data=WHITE_BOX))
    writer.add_stream_to_page(0, stream)  # type: ignore[no-untyped-call]
    return _written(writer)


UPDATES: dict[str, Callable[[bytes], bytes]] = {
    "annotation": with_annotation,
    "signature field": with_signature_field,
    "page content": with_page_content,
}


async def test_the_registry_seal_certifies_the_pdf_and_permits_no_changes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    pdf = await issuer_pdf(client, world, certificate)

    reader = PdfFileReader(io.BytesIO(pdf))
    (signature,) = reader.embedded_signatures
    certification = read_certification_data(reader)
    assert certification is not None  # a certification (author) signature, not merely an approval one
    assert certification.permission == MDPPerm.NO_CHANGES
    assert signature.docmdp_level == MDPPerm.NO_CHANGES
    assert signature.sig_field.raw_get("/V").idnum == reader.root["/Perms"].raw_get("/DocMDP").idnum
    # PDF/A-2/3 (ISO 19005-2 6.1.12): /Perms holds DocMDP only; the signature reference names no digest.
    assert set(reader.root["/Perms"].keys()) == {"/DocMDP"}
    (reference,) = signature.sig_object["/Reference"]
    assert reference["/TransformMethod"] == "/DocMDP"
    assert reference["/TransformParams"]["/P"] == 1
    assert not {"/DigestLocation", "/DigestMethod", "/DigestValue"} & set(reference.keys())

    status = await signature_status(pdf, await root_certificate(client))
    assert status.bottom_line, status.pretty_print_details()  # type: ignore[no-untyped-call]
    assert status.docmdp_ok
    assert status.modification_level == ModificationLevel.NONE
    assert status.coverage is not None
    assert status.coverage.name == "ENTIRE_FILE"


@pytest.mark.parametrize("update", list(UPDATES), ids=list(UPDATES))
async def test_any_incremental_update_after_the_seal_makes_its_bottom_line_fail(
    app: FastAPI, client: httpx.AsyncClient, update: str
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    pdf = await issuer_pdf(client, world, certificate)
    root = await root_certificate(client)
    assert (await signature_status(pdf, root)).bottom_line

    changed = UPDATES[update](pdf)
    assert changed.startswith(pdf)  # an incremental update: the signed bytes are untouched
    status = await signature_status(changed, root)
    assert status.intact
    assert status.valid
    assert status.trusted
    assert status.coverage is not None
    assert status.coverage.name == "ENTIRE_REVISION"
    assert not status.docmdp_ok, status.modification_level
    assert not status.bottom_line, status.modification_level


async def test_a_revoked_certified_pdf_still_renders_with_its_stamp_and_reads_as_signed(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    if shutil.which("pdftoppm") is None or shutil.which("pdfsig") is None:
        pytest.skip("pdftoppm and pdfsig (poppler-utils) are not installed; .ci/run installs them")
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    valid = await issuer_pdf(client, world, certificate)
    revoked = await act(client, world.issuer, certificate["number"], "revoke")
    assert revoked.status_code == 200, revoked.text
    stamped = await issuer_pdf(client, world, certificate)
    assert "已撤销" in page_text(stamped)
    assert (await signature_status(stamped, await root_certificate(client))).bottom_line

    assert _reddish_share(await _render(valid, tmp_path / "valid")) < 0.002
    assert _reddish_share(await _render(stamped, tmp_path / "stamped")) > 0.03  # the stamp is drawn, not hidden

    # Poppler (Evince, Okular) reads the certification signature as it read the approval one.
    path = tmp_path / "stamped.pdf"
    process = await asyncio.create_subprocess_exec(
        "pdfsig", "-nocert", str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    report, _ = await process.communicate()
    assert process.returncode == 0, report
    text = report.decode()
    assert "Signature Field Name: RegistrySeal" in text
    assert "Total document signed" in text
    assert "Signature is Valid." in text
