"""A revoked e-certificate PDF, painted over, whose registry seal a PDF reader still calls valid.

The PDF is signed by the body's document key with an *approval* signature and no DocMDP lock (no certification
signature), so the signature does not forbid later incremental updates: readers then judge what an update did, and
adding a form field (a signature field, signed or not) is "form filling", allowed. A dishonest holder appends one
update — an empty signature field whose appearance is an opaque box (or a picture of a valid certificate, another
level, another name) laid over the page — and pyHanko (`pyhanko sign validate --trust root.pem`) says of the
registry's seal: intact, valid, trusted, bottom line OK (modification level FORM_FILLING), while the page shows
whatever the overlay draws — here, no "已撤销 / Revoked" stamp at all. DESIGN.md promises "Any edit breaks the
signature in every common PDF reader".

What should happen: the registry's seal is a certification signature that permits no changes (DocMDP P=1:
``PdfSignatureMetadata(certify=True, docmdp_permissions=MDPPerm.NO_CHANGES)``), so any update after it — an overlay
included — makes the reader's bottom line on the seal "invalid".
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import httpx
from fastapi import FastAPI
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields

from tests.factories import issued_certificate
from tests.integration.lifecycle_support import act, set_up
from tests.integration.test_pdf_signature import _reddish_share, _render, issuer_pdf, root_certificate, signature_status

# Over the middle of the page, where the diagonal "已撤销 REVOKED" mark crosses (points, from the bottom left).
COVER = (0, 200, 380, 640)


def painted_over(pdf: bytes, box: tuple[int, int, int, int] = COVER) -> bytes:
    """``pdf`` with one incremental update: a new, unsigned signature field whose appearance is an opaque white box."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    fields.append_signature_field(writer, fields.SigFieldSpec("Cover", on_page=0, box=box))
    width, height = box[2] - box[0], box[3] - box[1]
    appearance = generic.StreamObject(stream_data=b"1 1 1 rg 0 0 %d %d re f" % (width, height))
    appearance["/Type"] = generic.NameObject("/XObject")
    appearance["/Subtype"] = generic.NameObject("/Form")
    appearance["/BBox"] = generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, width, height)])  # type: ignore[no-untyped-call]
    reference = writer.add_object(appearance)
    for field_reference in writer.root["/AcroForm"]["/Fields"]:
        field = field_reference.get_object()
        if field.get("/T") == "Cover":
            field["/AP"] = generic.DictionaryObject({generic.NameObject("/N"): reference})  # type: ignore[no-untyped-call]
            writer.update_container(field)
    output = io.BytesIO()
    writer.write(output)  # type: ignore[no-untyped-call]
    return output.getvalue()


async def test_painting_over_a_revoked_pdf_breaks_its_registry_seal(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    revoked = await act(client, world.issuer, certificate["number"], "revoke")
    assert revoked.status_code == 200, revoked.text
    stamped = await issuer_pdf(client, world, certificate)
    root = await root_certificate(client)
    assert (await signature_status(stamped, root)).bottom_line  # the PDF as the registry serves it

    forged = painted_over(stamped)
    if shutil.which("pdftoppm") is not None:  # what the employer sees: the revocation stamp is gone
        assert _reddish_share(await _render(stamped, tmp_path / "stamped")) > 0.03
        assert _reddish_share(await _render(forged, tmp_path / "forged")) < 0.002
    status = await signature_status(forged, root)
    assert status.intact  # the seal's own bytes are untouched: only what the reader makes of the update is at stake
    # Before the fix: bottom line OK, modification level FORM_FILLING — "signed by the body, trusted, valid".
    assert not status.bottom_line, (status.modification_level, status.docmdp_ok)
    assert not status.docmdp_ok  # refused for the update itself (the seal certifies, no changes), not for the chain
    assert status.valid
    assert status.trusted
