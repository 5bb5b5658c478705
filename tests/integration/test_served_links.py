"""Links that work: `registry serve --port P` with no REGISTRY_PUBLIC_BASE_URL puts P in every link it hands out."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI
from PIL import Image

from registry.config import Settings
from registry.credentials.offline import status_entries
from tests.factories import bearer, issued_certificate
from tests.integration.server_support import Server, live_issuer_token, settings_env


async def test_a_server_on_its_own_port_issues_links_and_qr_codes_to_that_port(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    env = {name: value for name, value in settings_env(settings).items() if name != "REGISTRY_PUBLIC_BASE_URL"}
    server = Server(env, tmp_path / "server.log")
    try:
        await server.start()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            issuer = await live_issuer_token(app, http)
            assert jwt.decode(issuer, options={"verify_signature": False})["iss"] == server.base_url
            certificate = await issued_certificate(http, issuer)
            assert certificate["verify_url"] == f"{server.base_url}/v/{certificate['qr_token']}"

            png = await http.get(f"/v1/certificates/{certificate['number']}/qr.png", headers=bearer(issuer))
            assert png.status_code == 200
            [code] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
            assert code.text == certificate["verify_url"]
            page = await http.get(code.text)  # the scanned link opens the page on this very server
            assert page.status_code == 200
            assert certificate["number_display"] in page.text

            credential = await http.get(f"/v1/certificates/{certificate['number']}/credential", headers=bearer(issuer))
            claims = jwt.decode(credential.text.strip(), options={"verify_signature": False})
            assert claims["iss"].startswith(f"{server.base_url}/v1/issuers/")
            for entry in status_entries(claims):
                assert (await http.get(entry["statusListCredential"])).status_code == 200
    finally:
        await server.stop()
