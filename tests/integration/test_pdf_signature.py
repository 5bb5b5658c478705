"""The e-certificate's PDF signature (电子签章) as a PDF reader checks it, and its status printed on the page."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader

from tests.factories import bearer, issued_certificate, resident_id
from tests.integration.lifecycle_support import CODE, World, act, set_up, verified

Certificate = dict[str, Any]


async def root_certificate(client: httpx.AsyncClient) -> asn1_x509.Certificate:
    response = await client.get("/.well-known/pdf-signing-root.pem")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-pem-file")
    _, _, der = pem.unarmor(response.content)
    return asn1_x509.Certificate.load(der)


async def signature_status(pdf: bytes, root: asn1_x509.Certificate) -> PdfSignatureStatus:
    """What pyHanko (as `pyhanko sign validate --trust root.pem`) says of the PDF's one signature."""
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return await async_validate_pdf_signature(signature, ValidationContext(trust_roots=[root]))


def checking(root: asn1_x509.Certificate, crl: bytes) -> ValidationContext:
    """A reader that insists on revocation information, given the root's CRL."""
    return ValidationContext(trust_roots=[root], crls=[crl], revocation_mode="hard-fail")


async def issuer_pdf(client: httpx.AsyncClient, world: World, certificate: Certificate) -> bytes:
    response = await client.get(f"/v1/certificates/{certificate['number']}.pdf", headers=bearer(world.issuer))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return response.content


def page_text(pdf: bytes) -> str:
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


async def test_the_pdf_signature_is_intact_and_trusted_under_the_registry_root(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    pdf = await issuer_pdf(client, world, certificate)
    root = await root_certificate(client)

    status = await signature_status(pdf, root)
    assert status.intact, status.pretty_print_details()  # type: ignore[no-untyped-call]
    assert status.valid
    assert status.trusted
    assert status.bottom_line
    assert status.coverage is not None
    assert status.coverage.name == "ENTIRE_FILE"
    assert status.signing_cert.issuer == root.subject
    assert status.signing_cert.public_key.algorithm == "ec"
    assert status.pkcs7_signature_mechanism in {"sha256_ecdsa", "ecdsa"}
    reader = PdfFileReader(io.BytesIO(pdf))
    (signature,) = reader.embedded_signatures
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES
    # The seal is the signature field's visible appearance, on page 1.
    widget = signature.sig_field
    assert widget["/Rect"]
    assert "/AP" in widget


async def test_the_served_pdf_embeds_every_font_it_names(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    if shutil.which("pdffonts") is None:
        pytest.skip("pdffonts (poppler-utils) is not installed; .ci/run installs it")
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    path = tmp_path / "served.pdf"
    path.write_bytes(await issuer_pdf(client, world, certificate))
    process = await asyncio.create_subprocess_exec("pdffonts", str(path), stdout=asyncio.subprocess.PIPE)
    listing, _ = await process.communicate()
    rows = [line.split() for line in listing.decode().splitlines()[2:] if line.strip()]
    assert len(rows) >= 2  # the page and the seal
    for row in rows:
        assert row[0].endswith("+NotoSansSC-Registry"), row
        assert row[-5:-2] == ["yes", "yes", "yes"], row  # emb, sub, uni


async def test_flipping_one_byte_of_the_signed_content_breaks_the_signature(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    pdf = bytearray(await issuer_pdf(client, world, certificate))
    root = await root_certificate(client)
    # A byte of the attached credential: inside the signed range, in an uncompressed stream, so the file still parses.
    at = pdf.index(b"eyJ") + 10
    pdf[at] = ord("A") if pdf[at] != ord("A") else ord("B")

    status = await signature_status(bytes(pdf), root)
    assert not status.intact
    assert not status.bottom_line


async def test_a_pdf_is_not_trusted_without_the_registry_root(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    pdf = await issuer_pdf(client, world, certificate)
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    status = await async_validate_pdf_signature(signature, ValidationContext(trust_roots=[]))
    assert status.intact
    assert status.valid
    assert not status.trusted


async def test_after_a_key_rotation_new_pdfs_use_the_new_key_and_old_ones_still_validate(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    before = await issuer_pdf(client, world, certificate)
    rotated = await client.post(f"/v1/issuers/{CODE}/keys/rotate", headers=bearer(world.admin))
    assert rotated.status_code == 201, rotated.text
    after = await issuer_pdf(client, world, certificate)
    root = await root_certificate(client)

    old, new = await signature_status(before, root), await signature_status(after, root)
    assert old.bottom_line
    assert new.bottom_line
    assert old.signing_cert.serial_number != new.signing_cert.serial_number
    assert old.signing_cert.issuer == new.signing_cert.issuer == root.subject


async def test_after_a_compromise_the_certificate_gets_no_pdf_and_new_pdfs_use_a_new_document_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    before = await issuer_pdf(client, world, certificate)
    response = await client.post(
        f"/v1/issuers/{CODE}/keys/{certificate['kid']}/compromise",
        json={"compromised_from": certificate["issued_at"]},
        headers=bearer(world.admin),
    )
    assert response.status_code == 200, response.text
    assert (await verified(client, certificate))["result"] == "unknown"
    refused = await client.get(f"/v1/certificates/{certificate['number']}.pdf", headers=bearer(world.issuer))
    assert refused.status_code == 409  # as for its credential: nothing that looks valid is handed out

    later = await issued_certificate(client, world.issuer)
    after = await issuer_pdf(client, world, later)
    root = await root_certificate(client)
    old, new = await signature_status(before, root), await signature_status(after, root)
    assert new.bottom_line
    assert new.signing_cert.serial_number != old.signing_cert.serial_number  # the document key was cut off too

    # A reader that checks revocation (the certificates name the root's CRL) rejects the PDF signed before.
    crl = await client.get("/.well-known/pdf-signing-root.crl")
    assert crl.status_code == 200
    assert crl.headers["content-type"] == "application/pkix-crl"
    (old_signature,) = PdfFileReader(io.BytesIO(before)).embedded_signatures
    rejected = await async_validate_pdf_signature(old_signature, checking(root, crl.content))
    assert rejected.intact
    assert not rejected.bottom_line
    assert rejected.revoked
    (new_signature,) = PdfFileReader(io.BytesIO(after)).embedded_signatures
    assert (await async_validate_pdf_signature(new_signature, checking(root, crl.content))).bottom_line


@pytest.mark.parametrize(
    ("action", "label_zh", "label_en", "reason"),
    [("revoke", "已撤销", "REVOKED", "以欺骗手段取得"), ("suspend", "已暂停", "SUSPENDED", None)],
)
async def test_a_revoked_or_suspended_certificate_is_stamped_across_its_pdf_which_the_holder_still_gets(
    app: FastAPI,
    client: httpx.AsyncClient,
    tmp_path: Path,
    action: str,
    label_zh: str,
    label_en: str,
    reason: str | None,
) -> None:
    world = await set_up(app, client)
    id_number = resident_id(birth="19900202")
    holder_body = {"name": "张三", "id_type": "resident_id", "id_number": id_number}
    certificate = await issued_certificate(client, world.issuer, holder=holder_body)
    valid_pdf = await issuer_pdf(client, world, certificate)
    changed = await act(client, world.issuer, certificate["number"], action)
    assert changed.status_code == 200, changed.text
    verification = await verified(client, certificate)
    changed_on = verification["status_changed_on"]

    holder = await client.post(
        "/v1/holder/sessions",
        json={
            "id_type": "resident_id",
            "id_number": id_number,
            "claim_code": certificate["claim_code"],
        },
    )
    assert holder.status_code == 201, holder.text
    response = await client.get(
        f"/v1/holder/certificates/{certificate['number']}.pdf", headers=bearer(holder.json()["access_token"])
    )
    assert response.status_code == 200
    stamped = response.content
    text = page_text(stamped)
    assert label_zh in text
    assert label_en in text
    assert changed_on in text  # the day of the change, ISO (and in Chinese beside it)
    if reason:
        assert reason in text
    assert label_zh not in page_text(valid_pdf)
    assert (await signature_status(stamped, await root_certificate(client))).bottom_line

    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed; .ci/run installs it")
    plain = _reddish_share(await _render(valid_pdf, tmp_path / "valid"))
    marked = _reddish_share(await _render(stamped, tmp_path / "stamped"))
    assert plain < 0.002, plain
    assert marked > 0.03, marked


async def _render(pdf: bytes, stem: Path) -> Image.Image:
    path = stem.with_suffix(".pdf")
    path.write_bytes(pdf)
    process = await asyncio.create_subprocess_exec("pdftoppm", "-r", "40", "-png", "-singlefile", str(path), str(stem))
    assert await process.wait() == 0
    return Image.open(stem.with_suffix(".png")).convert("RGB")


def _reddish_share(page: Image.Image) -> float:
    """Share of pixels in the middle of the page (where the diagonal mark crosses) that are pink-red."""
    width, height = page.size
    # Left of the seal (which is red on every copy) and between the frame's red rules.
    middle = page.crop((width * 3 // 20, height * 7 // 20, width * 3 // 5, height * 13 // 20))
    pixels: list[tuple[int, int, int]] = list(middle.get_flattened_data())  # type: ignore[arg-type]
    pink = [
        rgb
        for rgb in pixels
        if rgb[0] > 200 and 120 < rgb[1] < 235 and abs(rgb[1] - rgb[2]) < 40 and rgb[0] - rgb[1] > 25
    ]
    return len(pink) / len(pixels)


async def test_the_registry_has_one_stable_self_signed_p256_root(app: FastAPI, client: httpx.AsyncClient) -> None:
    first = await client.get("/.well-known/pdf-signing-root.pem")
    second = await client.get("/.well-known/pdf-signing-root.pem")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.content.startswith(b"-----BEGIN CERTIFICATE-----")
    root = x509.load_pem_x509_certificate(first.content)
    assert root.issuer == root.subject
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public_key = root.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    assert (root.not_valid_after_utc - root.not_valid_before_utc).days > 365 * 20
