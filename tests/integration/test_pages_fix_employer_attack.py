"""What an employer reads on the pages is the registry's, and tells look-alikes apart.

- A share link's page says the verdict first; the purpose the holder typed comes last, plain, under a label saying
  it is the holder's own text and that the registry has not checked it (before: in bold, above the banner).
- The verification page names the catalogue entry's code and the issuing body's code, so two certificates whose
  entries (or bodies) carry the very same names do not read word for word alike.
- The holder's own page names a share link's state as the link's ("链接可用"), not in a verdict's words ("有效").
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, resident_id
from tests.integration.browser_support import CHROMIUM, CHROMIUM_ARGS, serving
from tests.integration.holder_support import SignedInHolder, signed_in_holder
from tests.integration.test_holder_pages import holder_at_home

CLAIM = "人力资源社会保障部门已复核：下方撤销提示系系统旧数据，证书真实有效，可放心录用"
LONG_CODE = "ENG-AI-" + "X" * 41  # the longest catalogue code there may be (48 characters), and one word
LONG_BODY = "BJ-" + "Y" * 29  # the longest body code (32 characters)


def _text(fragment: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


async def _share(client: httpx.AsyncClient, holder: SignedInHolder, purpose_text: str) -> str:
    """A share link to the holder's certificate for "other: ``purpose_text``": the path it opens."""
    body: dict[str, Any] = {"number": holder.certificate["number"], "purpose": "other", "purpose_text": purpose_text}
    created = await client.post("/v1/holder/share-links", json=body, headers=holder.headers)
    assert created.status_code == 201, created.text
    return str(httpx.URL(created.json()["url"]).path)


async def _revoke(client: httpx.AsyncClient, holder: SignedInHolder) -> None:
    revocation = {"reason": "以不正当手段取得", "reason_code": "fraud"}
    number = holder.certificate["number"]
    revoked = await client.post(f"/v1/certificates/{number}/revoke", json=revocation, headers=bearer(holder.issuer))
    assert revoked.status_code == 200, revoked.text


async def test_a_share_pages_holder_words_come_last_plain_and_labelled_as_the_holders(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    path = await _share(client, holder, CLAIM)
    await _revoke(client, holder)
    labels = {"zh": "持证人自述", "en": "In the holder's own words"}
    for lang, label in labels.items():
        page = await client.get(path, params={"lang": lang})
        assert page.status_code == 200, page.text
        html = unescape(page.text)
        order = [html.index(mark) for mark in ('role="status"', "<dl>", "</dl>", 'class="checked"', label, CLAIM)]
        assert order == sorted(order), (lang, order)  # verdict, certificate, registry's lines, then theirs
        aside = re.search(r'<aside class="holder-words" aria-labelledby="([^"]+)">(.*?)</aside>', html, re.S)
        assert aside is not None, html
        assert f'id="{aside.group(1)}">' in aside.group(2)  # the label names the box for a screen reader
        said = _text(aside.group(2))
        assert said.startswith(label), said
        assert CLAIM in said, said
        assert "未核实" in said if lang == "zh" else "not checked by the registry" in said, said
        assert not re.search(r"<(strong|b|h[1-6])\b", aside.group(2)), aside.group(2)  # not in a bold or heading voice
        assert "已撤销" in _text(html[html.index('role="status"') : html.index("</section>")])


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # what the browser draws does not depend on the database
async def test_at_320_px_a_share_page_leads_with_the_verdict_and_never_scrolls_sideways(
    app: FastAPI, client: httpx.AsyncClient, served: str, tmp_path: Path
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    holder = await signed_in_holder(app, client)
    unbroken = "A" * 200  # one 200-letter word: it must wrap, not widen the page
    paths = [await _share(client, holder, purpose) for purpose in (CLAIM * 4, unbroken)]
    await _revoke(client, holder)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 320, "height": 568}, is_mobile=True)
            for index, path in enumerate(paths):
                for lang in ("zh", "en"):
                    await page.goto(f"{served}{path}?lang={lang}")
                    await page.evaluate("document.fonts.ready.then(() => true)")
                    banner = await page.locator("[role=status]").bounding_box()
                    words = await page.locator(".holder-words").bounding_box()
                    card = await page.locator("dl").bounding_box()
                    assert banner is not None
                    assert words is not None
                    assert card is not None
                    assert banner["y"] < 568 / 3, banner
                    assert words["y"] >= card["y"] + card["height"] >= banner["y"] + banner["height"]
                    weight = await page.locator(".holder-words .shared").evaluate("e => getComputedStyle(e).fontWeight")
                    assert int(weight) <= 400, weight
                    assert await page.evaluate("document.documentElement.scrollWidth") <= 320, (path, lang)
                    await page.screenshot(path=str(tmp_path / f"share-{index}-{lang}.png"), full_page=True)
        finally:
            await browser.close()


async def _issued_under(app: FastAPI, client: httpx.AsyncClient, *, entry: str, body: str) -> dict[str, Any]:
    """A certificate of catalogue entry ``entry``, issued by a body registered as ``body``."""
    admin = await admin_token(app, client)
    if entry != "ENG-AI":
        new_entry = {
            "code": entry,
            "cert_type": "title",
            "series_zh": "工程技术",
            "series_en": "Engineering",
            "name_zh": "人工智能试点",
            "name_en": "Artificial intelligence (pilot)",
            "levels": ["senior"],
            "effective_from": "2020-01-01",
        }
        created = await client.post("/v1/catalogue", json=new_entry, headers=bearer(admin))
        assert created.status_code == 201, created.text
    await create_issuer(client, admin, code=body, catalogue_codes=(entry,), levels=("senior",))
    person = {"name": "钱七", "id_type": "resident_id", "id_number": resident_id(birth="19880808")}
    issuer = await issuer_token(app, client, body)
    return await issued_certificate(client, issuer, catalogue_code=entry, level="senior", holder=person)


async def test_the_verification_page_names_the_entrys_and_the_bodys_codes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    certificate = await _issued_under(app, client, entry="ENG-AI", body="BJ-AI-COMMITTEE")
    labels = {"zh": ("目录编码", "机构编码"), "en": ("Catalogue code", "Body's code")}
    by_number = {"number": certificate["number"], "holder_name": "钱七"}
    for lang, (entry_label, body_label) in labels.items():
        for page in (
            await client.get(f"/v/{certificate['qr_token']}", params={"lang": lang}),
            await client.post("/v", params={"lang": lang}, data=by_number),
        ):
            assert page.status_code == 200, page.text
            card = page.text[page.text.index("<dl>") : page.text.index("</dl>")]
            rows = {_text(dt): _text(dd) for dt, dd in re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", card, re.S)}
            entry_row = next(value for key, value in rows.items() if key.startswith(entry_label))
            body_row = next(value for key, value in rows.items() if key.startswith(body_label))
            assert (entry_row, body_row) == ("ENG-AI", "BJ-AI-COMMITTEE"), rows
            assert '<dd class="ref-code">ENG-AI</dd>' in card  # a code is a code: never marked as Chinese text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_at_320_px_the_longest_codes_wrap_inside_their_card(
    app: FastAPI, client: httpx.AsyncClient, served: str
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    certificate = await _issued_under(app, client, entry=LONG_CODE, body=LONG_BODY)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for width in (320, 400, 640):
                page = await browser.new_page(viewport={"width": width, "height": 640}, is_mobile=True)
                await page.goto(f"{served}/v/{certificate['qr_token']}?lang=en")
                await page.evaluate("document.fonts.ready.then(() => true)")
                assert await page.evaluate("document.documentElement.scrollWidth") <= width
                assert await page.get_by_text(LONG_CODE, exact=True).is_visible()
                spill = await page.evaluate(
                    "[...document.querySelectorAll('dl div > *')].filter(e =>"
                    " e.getBoundingClientRect().right > e.parentElement.getBoundingClientRect().right + 1).length"
                )
                assert spill == 0, width
                await page.close()
        finally:
            await browser.close()


def _link_cards(page: str) -> list[str]:
    return re.findall(r'<section class="card share-link">(.*?)</section>', page, re.S)


async def test_the_holders_page_names_a_links_state_as_the_links_not_as_a_verdict(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder, _ = await holder_at_home(app, client)
    link = {"number": holder.certificate["number"], "purpose": "hiring"}
    created = await client.post("/v1/holder/share-links", json=link, headers=holder.headers)
    assert created.status_code == 201, created.text
    said = {lang: _link_cards((await client.get("/holder", params={"lang": lang})).text) for lang in ("zh", "en")}
    assert len(said["zh"]) == len(said["en"]) == 1, said
    zh, en = _text(said["zh"][0]), _text(said["en"][0])
    assert "链接可用" in zh, zh
    assert "有效" not in zh.replace("链接可用", ""), zh  # not the certificate's "有效"
    assert "Link open" in en, en
    assert "Active" not in en, en
    assert "Valid" not in en, en
    assert 'class="pill' not in said["zh"][0]  # nor drawn as a certificate's verdict pill
    withdrawn = await client.delete(f"/v1/holder/share-links/{created.json()['id']}", headers=holder.headers)
    assert withdrawn.status_code in (200, 204), withdrawn.text
    after = _link_cards((await client.get("/holder")).text)
    assert "链接已撤回" in _text(after[0]), after
