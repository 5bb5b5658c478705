"""The e-certificate PDF as a holder downloads it: readable, searchable, scannable, and carrying its credential."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from joserfc import jws as joserfc_jws
from joserfc.jwk import OKPKey
from PIL import Image
from pypdf import PdfReader

from tests.checks import require_tool
from tests.factories import (
    admin_token,
    bearer,
    create_issuer,
    issued_certificate,
    issuer_token,
    ready_issuer,
    resident_id,
)


async def test_holder_downloads_a_pdf_that_reads_scans_and_carries_a_verifiable_credential(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = resident_id(birth="19880808")
    certificate = await issued_certificate(
        client, issuer, holder={"name": "郑十一", "id_type": "resident_id", "id_number": number}
    )
    session = await client.post(
        "/v1/holder/sessions",
        json={"id_type": "resident_id", "id_number": number, "claim_code": certificate["claim_code"]},
    )
    holder = session.json()["access_token"]

    response = await client.get(f"/v1/holder/certificates/{certificate['number']}.pdf", headers=bearer(holder))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    text = "".join(page.extract_text() for page in reader.pages)
    compact = re.sub(r"\s+", "", text)
    assert certificate["number_display"] in compact
    assert "郑十一" in compact
    assert "具身智能" in compact
    assert "副高级" in compact
    assert "职称证书" in compact
    assert number not in compact
    assert "19880808" not in compact
    assert reader.metadata is not None
    assert certificate["number_display"] in (reader.metadata.title or "")

    attachments = reader.attachments
    (name,) = attachments
    credential = attachments[name][0].decode()
    jwks = (await client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(credential)
    assert header["typ"] == "vc+jwt"
    jwk = next(key for key in jwks["keys"] if key["kid"] == header["kid"])
    # joserfc: the header says RFC 9864's "Ed25519", which PyJWT does not name.
    verified = joserfc_jws.deserialize_compact(credential, OKPKey.import_key(jwk), algorithms=["Ed25519"])
    claims = json.loads(verified.payload)
    assert claims["credentialSubject"]["certificateNumber"] == certificate["number"]
    assert claims["credentialSubject"]["name"] == "郑十一"

    require_tool("pdftoppm", "poppler-utils")
    pdf_path = tmp_path / "certificate.pdf"
    pdf_path.write_bytes(response.content)
    process = await asyncio.create_subprocess_exec(
        "pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(pdf_path), str(tmp_path / "page")
    )
    assert await process.wait() == 0
    (png,) = list(tmp_path.glob("page*.png"))  # noqa: ASYNC240 — a test listing its own tmp folder
    decoded = zxingcpp.read_barcodes(Image.open(png))
    assert [result.text for result in decoded] == [certificate["verify_url"]]


async def test_issuing_body_downloads_the_same_pdf_and_others_cannot(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    await create_issuer(client, admin, code="BJ-OTHER-BODY")
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    other = await issuer_token(app, client, "BJ-OTHER-BODY")
    certificate = await issued_certificate(client, issuer)
    own = await client.get(f"/v1/certificates/{certificate['number']}.pdf", headers=bearer(issuer))
    assert own.status_code == 200
    assert own.content.startswith(b"%PDF")
    foreign = await client.get(f"/v1/certificates/{certificate['number']}.pdf", headers=bearer(other))
    assert foreign.status_code == 404
    assert foreign.headers["content-type"] == "application/problem+json"


async def test_a_corrected_certificates_pdf_names_its_status_in_english_on_the_english_line(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Before, the English status line of a superseded certificate's PDF repeated the Chinese ("已更正…")."""
    issuer = await ready_issuer(app, client)
    certificate = await issued_certificate(client, issuer)
    corrected = await client.post(
        f"/v1/certificates/{certificate['number']}/correct",
        json={"reason": "wrong level", "level": "senior"},
        headers=bearer(issuer),
    )
    assert corrected.status_code == 201, corrected.text
    response = await client.get(f"/v1/certificates/{certificate['number']}.pdf", headers=bearer(issuer))
    assert response.status_code == 200
    lines = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages).splitlines()
    english = [line for line in lines if line.startswith("Corrected (a corrected one replaces it)")]
    assert english, lines
    assert not any("已更正" in line for line in english), english


async def test_a_name_beyond_the_main_font_prints_and_is_extracted_as_given(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Before, letters with some diacritics, Greek, Cyrillic and most ideographs of extensions B to F were drawn as
    empty boxes and missing from the PDF's text; a supplementary-plane character the font did draw ("𠮷") was
    extracted as another character ("₻")."""
    issuer = await ready_issuer(app, client)
    name = "Łukasz Wałęsa-Nguyễn Şükrü Иван Ωμέγα 𤭢𪚥𠮷"
    number = resident_id()
    certificate = await issued_certificate(
        client, issuer, holder={"name": name, "id_type": "resident_id", "id_number": number}
    )
    response = await client.get(f"/v1/certificates/{certificate['number']}.pdf", headers=bearer(issuer))
    assert response.status_code == 200, response.text
    reader = PdfReader(io.BytesIO(response.content))
    assert name in reader.pages[0].extract_text()
    resources: Any = reader.pages[0]["/Resources"]
    fonts = {str(font.get_object()["/BaseFont"]).split("+")[-1] for font in resources["/Font"].values()}
    assert {"NotoSansSC-Registry", "NotoSansRegistry", "HanaMinBRegistry"} <= fonts, fonts
