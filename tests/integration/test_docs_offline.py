"""The API docs on a closed network: /docs (Swagger UI) and /redoc (ReDoc) load everything from the registry itself,
checked in real Chromium with every request to anywhere else refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from tests.integration.browser_support import CHROMIUM, CHROMIUM_ARGS, serving


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # what the browser sees does not depend on the database
async def test_docs_render_with_the_network_blocked(served: str, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    own = urlsplit(served).netloc
    refused: list[str] = []

    async def only_the_registry(route: object) -> None:
        request = route.request  # type: ignore[attr-defined]
        if urlsplit(request.url).netloc == own:
            await route.continue_()  # type: ignore[attr-defined]
        else:
            refused.append(request.url)
            await route.abort()  # type: ignore[attr-defined]

    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.route("**/*", only_the_registry)
            await page.goto(f"{served}/docs", wait_until="networkidle")
            await page.locator(".swagger-ui .opblock").first.wait_for(timeout=20_000)
            assert "Talent Registry" in await page.locator(".swagger-ui .info").inner_text()
            assert await page.locator(".swagger-ui .opblock").count() > 40  # every operation is listed
            await page.screenshot(path=str(tmp_path / "docs.png"))

            await page.goto(f"{served}/redoc", wait_until="networkidle")
            await page.locator(".api-content h1").first.wait_for(timeout=20_000)  # ReDoc has rendered the document
            assert "Talent Registry" in await page.locator(".api-content h1").first.inner_text()
            await page.screenshot(path=str(tmp_path / "redoc.png"))
        finally:
            await browser.close()
    # Both pages rendered with nothing from elsewhere; the one thing ReDoc's bundle reaches out for is the "API docs by
    # Redocly" badge image in its menu, which the blocked network simply leaves out.
    assert [url for url in refused if not url.startswith("https://cdn.redoc.ly/redoc/logo")] == [], refused
