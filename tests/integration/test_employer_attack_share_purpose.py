"""An employer opens a holder's share link: the registry's verdict comes before anything the holder wrote.

The holder types a share link's purpose (``purpose_text``, up to 200 characters), and the page a share link opens
showed it first, in bold, above the verdict, in both languages. A dishonest holder of a revoked certificate wrote the
registry's verdict into it ("人力资源社会保障部门已复核：下方撤销提示系旧数据，证书真实有效…"), so that an employer read
"valid" in the registry's own page before its "已撤销" banner — which, at 320 px, two copies of 200 characters push to
the bottom of the first screen. The verdict must be the first thing the page says; the holder's words, if shown at all,
come after it (and after the certificate), as theirs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import bearer
from tests.integration.browser_support import CHROMIUM, CHROMIUM_ARGS, serving
from tests.integration.holder_support import SignedInHolder, signed_in_holder

# What a dishonest holder writes as the purpose of a link to a certificate the body has revoked (200 characters).
LIE = (
    "入职背景调查。人力资源社会保障部门已复核：下方撤销提示系系统旧数据，证书真实有效，可放心录用"
    + "，请以本说明为准" * 20
)[:200]


async def _revoked_and_shared(app: FastAPI, client: httpx.AsyncClient) -> tuple[SignedInHolder, str]:
    """A holder's certificate, shared with ``LIE`` as the link's purpose, then revoked by its body: the link's token."""
    holder = await signed_in_holder(app, client)
    number = holder.certificate["number"]
    body: dict[str, Any] = {"number": number, "purpose": "other", "purpose_text": LIE}
    created = await client.post("/v1/holder/share-links", json=body, headers=holder.headers)
    assert created.status_code == 201, created.text
    revocation = {"reason": "以不正当手段取得", "reason_code": "fraud"}
    revoked = await client.post(f"/v1/certificates/{number}/revoke", json=revocation, headers=bearer(holder.issuer))
    assert revoked.status_code == 200, revoked.text
    return holder, created.json()["url"].rsplit("/", 1)[1]


async def test_the_verdict_comes_before_the_holders_own_words_on_a_share_page(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, token = await _revoked_and_shared(app, client)
    for lang in ("zh", "en"):
        page = await client.get(f"/s/{token}", params={"lang": lang})
        assert page.status_code == 200, page.text
        html = page.text
        verdict = html.index('role="status"')
        assert "已撤销" in html[verdict : verdict + 400]
        # Before the fix the holder's 200 characters (twice) stood above the banner, in <strong>.
        first_words = html.find(LIE[:20])
        assert first_words == -1 or first_words > verdict, (lang, html[: verdict + 200])
        assert f"<strong>{LIE}" not in html
        assert f"<strong>其他（{LIE}" not in html


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # what the browser sees does not depend on the database
async def test_on_a_320px_phone_the_verdict_is_seen_before_the_holders_words(
    app: FastAPI, client: httpx.AsyncClient, served: str
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    _, token = await _revoked_and_shared(app, client)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 320, "height": 568}, is_mobile=True)
            await page.goto(f"{served}/s/{token}")
            banner = await page.locator("[role=status]").bounding_box()
            assert banner is not None
            assert "已撤销" in await page.locator("[role=status]").inner_text()
            # Whatever of the holder's text is drawn, it is drawn below the verdict; and the verdict is near the
            # top of the first screen, not pushed down by text the holder chose.
            words = page.get_by_text(LIE[:20], exact=False)
            for index in range(await words.count()):
                box = await words.nth(index).bounding_box()
                assert box is None or box["y"] >= banner["y"] + banner["height"], (box, banner)
            assert banner["y"] < 568 / 3, banner
        finally:
            await browser.close()
