"""A real browser (Debian's Chromium through Playwright, as tests/integration/test_browser.py) signs a holder in,
sees the certificate list, creates a share link and opens it — with JavaScript off, as the pages promise."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app, dispose
from registry.config import Settings
from tests.integration.browser_support import CHROMIUM, CHROMIUM_ARGS
from tests.integration.holder_support import HOLDER_NAME, signed_in_holder
from tests.integration.server_support import free_port

SCREENSHOTS = Path("/tmp/pages")  # noqa: S108 — where a person looks at them before the issue is closed


@pytest.fixture
async def holder_site(settings: Settings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The app served over plain http on a free port, its public base URL that address (cookies not ``Secure``)."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(settings.model_copy(update={"public_base_url": base}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 — uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    yield app, base
    server.should_exit = True
    await task
    await dispose(app)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # what the browser sees does not depend on the database
async def test_holder_signs_in_sees_certificates_and_shares_one_in_a_real_browser(
    holder_site: tuple[FastAPI, str], tmp_path: Path
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    app, base = holder_site
    async with httpx.AsyncClient(base_url=base) as client:
        holder = await signed_in_holder(app, client)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, java_script_enabled=False
            )
            page = await context.new_page()
            await page.goto(f"{base}/holder")
            await page.screenshot(path=str(tmp_path / "holder-sign-in.png"), full_page=True)
            await page.select_option("#id_type", "resident_id")
            await page.fill("#id_number", holder.id_number)
            await page.fill("#claim_code", holder.certificate["claim_code"])
            await page.click("form[action^='/holder/sign-in'] button[type=submit]")
            await page.wait_for_url(f"{base}/holder?lang=zh")
            certificates = await page.locator("section.certificate").all_inner_texts()
            assert len(certificates) == 1
            assert holder.certificate["number_display"] in certificates[0]
            assert "有效" in certificates[0]
            cookies = {cookie["name"]: cookie for cookie in await context.cookies()}
            assert cookies["tr_holder"]["httpOnly"] is True
            assert cookies["tr_holder"]["sameSite"] == "Strict"

            await page.select_option("#purpose", "hiring")
            await page.click("form[action^='/holder/share-links'] button[type=submit]")
            link = (await page.locator("#new-link").inner_text()).strip()
            assert link.startswith(f"{base}/s/")
            await page.screenshot(path=str(tmp_path / "holder-home.png"), full_page=True)

            visitor = await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            await visitor.goto(link)
            assert "持证人为求职而分享" in await visitor.locator("p.shared").inner_text()
            assert "有效" in await visitor.locator("[role=status]").inner_text()
            assert HOLDER_NAME in await visitor.locator("body").inner_text()
            await visitor.screenshot(path=str(tmp_path / "holder-shared.png"), full_page=True)

            await app.state.visits.flush()
            await page.goto(f"{base}/holder")
            visits = await page.locator("li.visit").all_inner_texts()
            assert len(visits) == 1
            assert "分享链接" in visits[0]
            assert "127.0.0.1" not in await page.locator("body").inner_text()
            await page.screenshot(path=str(tmp_path / "holder-who-looked.png"), full_page=True)
        finally:
            await browser.close()
    _keep_screenshots(tmp_path)


def _keep_screenshots(folder: Path) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    for name in ("holder-sign-in", "holder-home", "holder-shared", "holder-who-looked"):
        shot = folder / f"{name}.png"
        assert shot.stat().st_size > 10_000
        shutil.copy(shot, SCREENSHOTS / shot.name)
