"""A real browser at phone size opens the verification page of a valid and of a revoked-looking certificate.

Headless Chromium from Debian (/usr/bin/chromium), driven by Playwright; screenshots go to the test's tmp folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, resident_id
from tests.integration.browser_support import CHROMIUM, CHROMIUM_ARGS, serving


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # what the browser sees does not depend on the database
async def test_phone_browser_shows_valid_and_revoked(
    app: FastAPI, client: httpx.AsyncClient, served: str, tmp_path: Path
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = resident_id(birth="19920101")
    valid = await issued_certificate(
        client, issuer, holder={"name": "吴十", "id_type": "resident_id", "id_number": number}
    )
    revoked = await issued_certificate(client, issuer)
    revoke = await client.post(
        f"/v1/certificates/{revoked['number']}/revoke",
        json={"reason_code": "issued_in_error", "reason": "wrong person"},
        headers=bearer(issuer),
    )
    assert revoke.status_code == 200

    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
            await page.goto(f"{served}/v/{valid['qr_token']}")
            banner = await page.locator("[role=status]").inner_text()
            assert "有效" in banner
            body = await page.locator("body").inner_text()
            assert "吴十" in body
            assert "具身智能" in body
            assert number not in body
            await page.screenshot(path=str(tmp_path / "valid.png"), full_page=True)

            await page.goto(f"{served}/v/{revoked['qr_token']}")
            assert "已撤销" in await page.locator("[role=status]").inner_text()
            colour = await page.locator(".banner").evaluate("el => getComputedStyle(el).backgroundColor")
            assert colour == "rgb(179, 38, 30)"
            await page.screenshot(path=str(tmp_path / "revoked.png"), full_page=True)

            await page.goto(f"{served}/v/{valid['qr_token']}?lang=en")
            assert "Valid" in await page.locator("[role=status]").inner_text()
        finally:
            await browser.close()
    assert (tmp_path / "valid.png").stat().st_size > 10_000
    assert (tmp_path / "revoked.png").stat().st_size > 10_000
