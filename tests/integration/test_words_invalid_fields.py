"""A field the page says is wrong (``aria-invalid="true"``) is drawn with the red border whichever control it is: the
holder's pages refuse a <select> (the certificate or the purpose of a share link) and a <textarea> (an identity
provider's token) as well as an <input>, and the rule in base.html named only input. Checked in the CSS the pages
carry, and in a real Chromium, which draws the page as served."""

from __future__ import annotations

import re

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from tests.checks import require_tool
from tests.factories import resident_id
from tests.integration.browser_support import CHROMIUM, CHROMIUM_ARGS
from tests.integration.test_holder_idp import _id_token, _provider
from tests.integration.test_holder_pages import csrf_of, holder_at_home
from tests.integration.test_page_accessibility import css_rules

# What the pages show does not depend on the database.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

RED = "#b3261e"


async def _refused_pages(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    """A share link refused for its purpose (a <select> marked invalid) and an identity token refused (a <textarea>)."""
    holder, home = await holder_at_home(app, client)
    share = {"csrf": csrf_of(home), "number": holder.certificate["number"], "purpose": "bribery"}
    refused_share = await client.post("/holder/share-links", data=share)
    assert refused_share.status_code == 422, refused_share.text
    key = Ed25519PrivateKey.generate()
    _provider(app, key)
    await client.post("/holder/sign-out", data={"csrf": csrf_of(home)}, headers={"Origin": "https://registry.test"})
    form = await client.get("/holder", params={"lang": "en"})
    body = {"csrf": csrf_of(form), "id_token": _id_token(key, resident_id())}
    refused_token = await client.post("/holder/sign-in/external?lang=en", data=body)
    assert refused_token.status_code == 401, refused_token.text
    return {"select": refused_share.text, "textarea": refused_token.text}


def _invalid_controls(page: str) -> list[tuple[str, str]]:
    """(tag, id) of each control the page marks invalid."""
    return re.findall(r'<(input|select|textarea)\b[^>]*\bid="([^"]+)"[^>]*\baria-invalid="true"', page)


async def test_the_red_border_rule_covers_every_control_a_page_marks_invalid(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Found: base.html had ``input[aria-invalid="true"] { border:2px solid #b3261e; }`` only, so the refused purpose
    <select> and identity-token <textarea> kept their plain grey border: the error was read out, not seen."""
    pages = await _refused_pages(app, client)
    for kind, page in pages.items():
        controls = _invalid_controls(page)
        assert kind in {tag for tag, _id in controls}, (kind, controls)
        rules = css_rules(page)
        for tag, element_id in controls:
            red = [
                selector
                for selector, declarations in rules
                if selector in (f'{tag}[aria-invalid="true"]', '[aria-invalid="true"]')
                and RED in declarations.get("border", declarations.get("border-color", ""))
            ]
            assert red, f"no red border for <{tag} id={element_id}> marked invalid"


async def test_chromium_draws_an_invalid_select_and_textarea_with_the_red_border(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    require_tool(CHROMIUM, "chromium")
    playwright_api = pytest.importorskip("playwright.async_api")
    pages = await _refused_pages(app, client)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = await browser.new_page()
            for kind, page in pages.items():
                await tab.set_content(page, wait_until="load")
                drawn = await tab.evaluate(
                    """() => [...document.querySelectorAll('input, select, textarea')]
                        .filter(e => e.type !== 'hidden')
                        .map(e => { const s = getComputedStyle(e);
                                    return [e.tagName.toLowerCase(), e.getAttribute('aria-invalid') === 'true',
                                            s.borderTopColor, s.borderTopWidth]; })"""
                )
                invalid = [(tag, colour, width) for tag, marked, colour, width in drawn if marked]
                assert kind in {tag for tag, _c, _w in invalid}, (kind, drawn)
                assert all((colour, width) == ("rgb(179, 38, 30)", "2px") for _t, colour, width in invalid), drawn
                valid = [(colour, width) for tag, marked, colour, width in drawn if not marked and tag == kind]
                assert all(width == "1px" for _c, width in valid), drawn  # only the field at fault is red
        finally:
            await browser.close()
