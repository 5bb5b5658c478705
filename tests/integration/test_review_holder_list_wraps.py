"""Review of 2107aa1 (share page: "a long unbroken word wraps"): the holder's own list of links does not.

The commit made the holder's words wrap on the page a share link opens (``.holder-words { overflow-wrap:anywhere }``)
and redrew the link-state badge on the holder's page, but the same purpose text is printed in that page's link card
title (``.card .title`` in api/templates/holder/_style.html), which has no wrapping rule: a purpose of one long word
(a URL, a reference number, 200 letters) makes the holder's whole page about 2,800 px wide at 320 px, in zh and en.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.checks import require_tool
from tests.integration.browser_support import CHROMIUM, CHROMIUM_ARGS
from tests.integration.test_holder_pages import holder_at_home


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # what the browser draws does not depend on the database
async def test_at_320_px_the_holders_list_wraps_a_long_purpose_and_never_scrolls_sideways(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    require_tool(CHROMIUM, "chromium")
    holder, _ = await holder_at_home(app, client)
    purpose = "https://hr.example.com/apply/" + "A" * 171  # one word of 200 characters
    link = {"number": holder.certificate["number"], "purpose": "other", "purpose_text": purpose}
    created = await client.post("/v1/holder/share-links", json=link, headers=holder.headers)
    assert created.status_code == 201, created.text
    pages = {}
    for lang in ("zh", "en"):
        home = await client.get("/holder", params={"lang": lang})
        assert home.status_code == 200, home.text
        assert purpose in home.text  # the holder sees their own words in full
        pages[lang] = home.text
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 320, "height": 568}, is_mobile=True)
            for lang, html in pages.items():
                await page.set_content(html)  # the page's own inline styles; the session cookie stays out of it
                width = await page.evaluate("document.documentElement.scrollWidth")
                # Before: about 2,800 px (the link card's title, one unbroken line).
                assert width <= 320, (lang, width)
        finally:
            await browser.close()
