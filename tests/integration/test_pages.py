"""The verification page an employer's phone opens, and the QR code that leads there."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.factories import (
    admin_token,
    bearer,
    create_issuer,
    issued_certificate,
    issuer_token,
    ready_issuer,
    resident_id,
)


async def _certificate(app: FastAPI, client: httpx.AsyncClient, number: str) -> tuple[str, dict[str, Any]]:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    holder = {"name": "周九", "id_type": "resident_id", "id_number": number}
    return issuer, await issued_certificate(client, issuer, holder=holder)


async def test_scanned_qr_code_opens_the_page_of_the_right_certificate(app: FastAPI, client: httpx.AsyncClient) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    number = resident_id(birth="19850303")
    issuer, certificate = await _certificate(app, client, number)
    png = await client.get(f"/v1/certificates/{certificate['number']}/qr.png", headers=bearer(issuer))
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "private, max-age=86400"  # its URL follows the base URL
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert len(results) == 1
    url = results[0].text
    assert url == certificate["verify_url"]

    page = await client.get(urlparse(url).path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "有效" in page.text
    assert "周九" in page.text
    assert "具身智能" in page.text
    assert certificate["number_display"] in page.text
    assert number not in page.text
    assert "19850303" not in page.text


async def test_page_has_an_english_switch_and_no_external_assets(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, certificate = await _certificate(app, client, resident_id())
    page = await client.get(f"/v/{certificate['qr_token']}", params={"lang": "en"})
    assert page.status_code == 200
    assert "Valid" in page.text
    assert "Embodied intelligence" in page.text
    assert 'name="viewport"' in page.text
    for external in ("http://", "https://", "//cdn", "<script", "<link"):
        assert external not in page.text.replace(certificate["verify_url"], ""), external
    assert "default-src 'none'" in page.headers["content-security-policy"]


async def test_unknown_token_gets_a_friendly_html_404(client: httpx.AsyncClient) -> None:
    page = await client.get("/v/" + "A" * 24)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "未找到证书" in page.text


async def test_check_by_number_and_name_form(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, certificate = await _certificate(app, client, resident_id())
    form = await client.get("/v")
    assert form.status_code == 200
    assert '<form method="post"' in form.text
    found = await client.post("/v", data={"number": str(certificate["number_display"]), "holder_name": "周九"})
    assert found.status_code == 200
    assert "有效" in found.text
    wrong_name = await client.post("/v", data={"number": str(certificate["number"]), "holder_name": "周十"})
    assert wrong_name.status_code == 404
    typo = str(certificate["number"])
    typo = typo[:-2] + typo[-1] + typo[-2] if typo[-1] != typo[-2] else typo[:-1] + ("0" if typo[-1] != "0" else "1")
    mistyped = await client.post("/v", data={"number": typo, "holder_name": "周九"})
    assert mistyped.status_code == 422
    # The swap leaves a wrong check character, 15 characters that have none, or a letter no serial holds: a typo,
    # with the reason the API gives.
    assert "证书编号有误，请检查是否输入错误：" in mistyped.text


async def test_qr_svg_and_size_option(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer, certificate = await _certificate(app, client, resident_id())
    svg = await client.get(f"/v1/certificates/{certificate['number']}/qr.svg", headers=bearer(issuer))
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    small = await client.get(f"/v1/certificates/{certificate['number']}/qr.png?size=128", headers=bearer(issuer))
    assert Image.open(io.BytesIO(small.content)).width <= 128
    too_big = await client.get(f"/v1/certificates/{certificate['number']}/qr.png?size=9999", headers=bearer(issuer))
    assert too_big.status_code == 422


async def test_a_superseded_certificate_has_a_page_and_a_pdf(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    certificate = await issued_certificate(client, issuer, level="intermediate")
    corrected = await client.post(
        f"/v1/certificates/{certificate['number']}/correct",
        json={"reason": "level typed wrong", "level": "associate_senior"},
        headers=bearer(issuer),
    )
    assert corrected.status_code == 201
    page = await client.get(f"/v/{certificate['qr_token']}")
    assert page.status_code == 200
    assert "已更正" in page.text
    assert corrected.json()["number_display"] in page.text
    english = await client.get(f"/v/{certificate['qr_token']}?lang=en")
    assert "Superseded" in english.text
    pdf = await client.get(f"/v1/certificates/{certificate['number']}.pdf", headers=bearer(issuer))
    assert pdf.status_code == 200


def _full_width(text: str) -> str:
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


async def test_a_number_typed_in_full_width_or_with_long_dashes_is_found(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Before, a number typed on a Chinese input method in full-width mode was told its check character was wrong."""
    _, certificate = await _certificate(app, client, resident_id())
    display = str(certificate["number_display"])
    for typed in (_full_width(display), display.replace("-", "—"), display.replace("-", "－").lower()):
        page = await client.post("/v", data={"number": typed, "holder_name": "周九"})
        assert page.status_code == 200, (typed, page.text[:300])
        assert "有效" in page.text
        answer = await client.post("/v1/verify", json={"number": typed, "holder_name": "周九"})
        assert answer.status_code == 200, (typed, answer.text)


async def test_the_form_says_why_a_number_cannot_be_one(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Before, every number that could not be one was said to have a wrong check character."""
    short = await client.post("/v", data={"number": "BJT2026", "holder_name": "周九"})
    assert short.status_code == 422
    assert "应为 16 个字符" in short.text
    assert "校验字符不符" not in short.text
    english = await client.post("/v?lang=en", data={"number": "BJT2026ÅÅÅÅÅÅÅÅÅ", "holder_name": "周九"})
    assert english.status_code == 422
    assert "only letters A-Z" in english.text


@pytest.mark.parametrize("lang", ["zh-CN", "EN", "en-US", "fr", "en_GB"])
async def test_a_page_language_the_link_spells_otherwise_opens_the_page(
    app: FastAPI, client: httpx.AsyncClient, lang: str
) -> None:
    """Before, /v?lang=zh-CN (as a browser or a partner's link may write it) answered 422 problem+json."""
    page = await client.get("/v", params={"lang": lang})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    english_first = lang.lower().startswith("en")
    assert ('<html lang="en"' in page.text) == english_first, page.text[:200]


async def test_each_language_on_the_page_of_a_revoked_certificate_has_its_own_colon(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Before, the English-first page read "Reason：obtained by deception" (a Chinese full-width colon)."""
    issuer, certificate = await _certificate(app, client, resident_id())
    revoked = await client.post(
        f"/v1/certificates/{certificate['number']}/revoke",
        json={"reason": "forged papers", "reason_code": "fraud"},
        headers=bearer(issuer),
    )
    assert revoked.status_code == 200, revoked.text
    for lang in ("zh", "en"):
        page = (await client.get(f"/v/{certificate['qr_token']}", params={"lang": lang})).text
        assert "原因：" in page, lang
        assert "Reason: " in page, lang
        assert "Reason：" not in page, lang
        assert "原因: " not in page, lang


async def test_the_form_answers_a_page_whatever_the_lengths_typed(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Before, a number over 32 characters or a name over 64 answered the browser 422 problem+json."""
    _, certificate = await _certificate(app, client, resident_id())
    long_number = await client.post("/v", data={"number": "B" * 40, "holder_name": "周九"})
    assert long_number.status_code == 422
    assert long_number.headers["content-type"].startswith("text/html")
    assert "应为 16 个字符" in long_number.text
    long_name = await client.post("/v", data={"number": certificate["number"], "holder_name": "周" * 65})
    assert long_name.status_code == 404
    assert long_name.headers["content-type"].startswith("text/html")
    nothing = await client.post("/v", data={})
    assert nothing.status_code == 422
    assert nothing.headers["content-type"].startswith("text/html")
