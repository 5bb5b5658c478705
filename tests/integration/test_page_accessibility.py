"""The pages as their readers meet them (WCAG 2.1 AA): an employer's phone after scanning a QR code, a holder signing
in. What is checked is what is served: the HTML and the CSS it carries (contrast computed from its colours), and, in
a real Chromium, a 320 px screen and the keyboard's focus."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from tests.factories import bearer, issued_certificate, resident_id
from tests.integration.browser_support import CHROMIUM, CHROMIUM_ARGS, serving
from tests.integration.holder_support import HOLDER_NAME, signed_in_holder
from tests.integration.test_holder_idp import _id_token, _provider
from tests.integration.test_holder_pages import _sign_in, csrf_of, holder_at_home

# What the pages show does not depend on the database.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

VERDICTS = {"valid", "suspended", "revoked", "expired", "superseded", "unknown"}
WHITE = "#ffffff"
Rules = list[tuple[str, dict[str, str]]]


def css_rules(page: str) -> Rules:
    """Each (selector, declarations) of the page's inline style sheets; a rule inside @media comes out as itself."""
    css = re.sub(r"/\*.*?\*/", "", " ".join(re.findall(r"<style>(.*?)</style>", page, flags=re.S)), flags=re.S)
    found: Rules = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = dict(
            (name.strip(), value.strip()) for name, _, value in (d.partition(":") for d in body.split(";")) if value
        )
        found += [(" ".join(selector.split()), declarations) for selector in selectors.split(",")]
    return found


def declared(rules: Rules, selector: str, name: str) -> str:
    values = [d[name] for s, d in rules if s == selector and name in d]
    assert values, f"no {name} for {selector}"
    return values[-1]


def _rgb(colour: str) -> tuple[float, float, float]:
    hexa = colour.strip().lstrip("#")
    return int(hexa[0:2], 16) / 255, int(hexa[2:4], 16) / 255, int(hexa[4:6], 16) / 255


def _luminance(rgb: tuple[float, float, float]) -> float:
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str, opacity: float = 1.0) -> float:
    """WCAG's contrast ratio; a foreground drawn at ``opacity`` is first blended onto the background."""
    fg, bg = _rgb(foreground), _rgb(background)
    r, g, b = (opacity * x + (1 - opacity) * y for x, y in zip(fg, bg, strict=True))
    lighter, darker = sorted((_luminance((r, g, b)), _luminance(bg)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def colour_in(value: str) -> str:
    found = re.search(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b", value)
    assert found is not None, value
    hexa = found.group(0)[1:]
    return "#" + (hexa if len(hexa) == 6 else "".join(c * 2 for c in hexa))


def text_of(fragment: str) -> str:
    return re.sub(r"<[^>]+>", " ", fragment)


def tag(page: str, element_id: str) -> str:
    found = re.search(rf'<(?:input|select|textarea)\b[^>]*\bid="{element_id}"[^>]*>', page)
    assert found is not None, element_id
    return found.group(0)


def described_by(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">(.*?)</div>\s*</div>', page, flags=re.S)
    assert found is not None, element_id
    return found.group(1)


async def test_words_on_each_verdict_banner_reach_4_5_to_1(client: httpx.AsyncClient) -> None:
    """Before, white on the suspended amber (#b26a00) was 4.24:1, its English line (at .88 opacity) 3.65:1."""
    rules = css_rules((await client.get("/v")).text)
    colours = {s.removeprefix(".banner."): d["background"] for s, d in rules if re.fullmatch(r"\.banner\.[a-z]+", s)}
    assert set(colours) >= VERDICTS | {"missing"}, colours
    ink = declared(rules, ".banner", "color")
    faintest = min(float(d.get("opacity", "1")) for s, d in rules if s.startswith(".banner ") and "opacity" in d)
    for verdict, background in colours.items():
        ratio = contrast(colour_in(ink), colour_in(background), faintest)
        assert ratio >= 4.5, (verdict, background, round(ratio, 2))


async def test_words_on_each_holders_pill_reach_4_5_to_1(client: httpx.AsyncClient) -> None:
    """The pill's 14 px bold words are not "large" text: 4.5:1 (before, "暂停" on #b26a00 was 4.24:1)."""
    rules = css_rules((await client.get("/holder")).text)
    ink = colour_in(declared(rules, ".pill", "color"))
    pills = {s: d["background"] for s, d in rules if re.fullmatch(r"\.pill\.[a-z]+", s) and "background" in d}
    assert {s.removeprefix(".pill.") for s in pills} >= VERDICTS - {"superseded"}, pills
    for pill, background in pills.items():
        assert contrast(ink, colour_in(background)) >= 4.5, (pill, background)


async def test_a_verdicts_colour_belongs_to_its_banner_alone(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Before, base.html's bare ``.revoked { background:#b3261e }`` also painted a holder's card line
    ``<div class="standing revoked">`` whose words are #b3261e: red on red, unreadable."""
    holder = await signed_in_holder(app, client)
    person = {"name": HOLDER_NAME, "id_type": "resident_id", "id_number": holder.id_number}
    second = await issued_certificate(client, holder.issuer, holder=person, level="senior")
    revoked = await client.post(
        f"/v1/certificates/{second['number']}/revoke",
        json={"reason": "证书信息有误", "reason_code": "issued_in_error"},
        headers=bearer(holder.issuer),
    )
    assert revoked.status_code == 200, revoked.text
    assert (await _sign_in(client, holder)).status_code == 303
    home = (await client.get("/holder")).text
    assert 'class="standing revoked"' in home
    rules = css_rules(home)
    words = colour_in(declared(rules, ".card .standing.revoked", "color"))
    bare = [s for s, d in rules if "background" in d and s.lstrip(".") in VERDICTS | {"missing"}]
    assert bare == [], bare  # a verdict's class paints any element bearing it
    assert contrast(words, WHITE) >= 4.5


async def test_form_fields_show_their_edges_at_3_to_1(client: httpx.AsyncClient) -> None:
    """A text box's border is all that shows where to type (WCAG 1.4.11); before, #aab1bb on white was 2.16:1."""
    rules = css_rules((await client.get("/holder")).text)  # the holder's sign-in: inputs, a select, a textarea
    for selector in ("input", "select"):
        edge = colour_in(declared(rules, selector, "border"))
        assert contrast(edge, WHITE) >= 3, (selector, edge)


async def test_the_keyboards_focus_is_drawn_plainly(client: httpx.AsyncClient) -> None:
    rules = css_rules((await client.get("/holder")).text)
    for element in ("a", "button", "input", "select", "textarea"):
        outline = declared(rules, f"{element}:focus-visible", "outline")
        width = re.search(r"(\d+)px", outline)
        assert width is not None, outline
        assert int(width.group(1)) >= 2, outline
        assert "solid" in outline
        for page_background in (WHITE, "#f5f6f8"):
            assert contrast(colour_in(outline), page_background) >= 3, outline


async def test_each_verdict_is_the_pages_one_heading(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Before, the result and not-found pages had no heading at all: a screen reader's "next heading" found none."""
    holder = await signed_in_holder(app, client)
    token = holder.certificate["qr_token"]
    for path, lang, words in (
        (f"/v/{token}", "zh", "有效"),
        (f"/v/{token}", "en", "Valid"),
        ("/v/" + "A" * 24, "zh", "未找到证书"),
        ("/v/" + "A" * 24, "en", "Certificate not found"),
    ):
        page = (await client.get(path, params={"lang": lang})).text
        headings = re.findall(r"<h1\b[^>]*>(.*?)</h1>", page, flags=re.S)
        assert len(headings) == 1, (path, lang, headings)
        assert " ".join(text_of(headings[0]).split()).startswith(words), headings
        assert re.search(r"<h[2-6]\b", page.split("<h1", 1)[0]) is None  # no lower heading before it
    english_first = (await client.get("/v/" + "A" * 24, params={"lang": "en"})).text
    assert '<div class="why alt" lang="zh-CN">未找到证书 · ' in english_first  # as on every other page, both languages


async def test_each_pages_title_says_what_it_is(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A phone's tab and a screen reader's first words; before, these titles were the site's name alone."""
    for path, lang, words in (
        ("/v", "zh", "人才证书查验 · 按编号查验证书"),
        ("/v", "en", "Talent Certificate Check · Check a certificate by number"),
        ("/v/" + "A" * 24, "zh", "人才证书查验 · 未找到证书"),
        ("/holder", "zh", "人才证书 · 持证人服务 · 持证人登录"),
        ("/holder", "en", "Talent Certificates · For holders · Holder sign-in"),
    ):
        page = (await client.get(path, params={"lang": lang})).text
        assert f"<title>{words}</title>" in page, (path, lang, page[:400])


async def test_a_wrong_number_is_tied_to_its_field(client: httpx.AsyncClient) -> None:
    """The error is read out with the field it is about (aria-describedby) and the field says it is wrong."""
    page = await client.post("/v?lang=en", data={"number": "BJ-T-2026-XXXX", "holder_name": "周九"})
    assert page.status_code == 422
    number = tag(page.text, "number")
    assert 'aria-invalid="true"' in number
    described = re.search(r'aria-describedby="([^"]+)"', number)
    assert described is not None, number
    error = re.search(rf'<p class="error" id="{described.group(1)}" role="alert">([^<]+)</p>', page.text)
    assert error is not None, page.text
    assert "16 characters" in error.group(1)
    assert "aria-invalid" not in tag(page.text, "holder_name")
    assert "aria-invalid" not in tag((await client.get("/v")).text, "number")  # a fresh form accuses nothing


async def test_a_refused_sign_in_is_tied_to_its_fields(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    form = await client.get("/holder")
    assert "aria-invalid" not in tag(form.text, "claim_code")
    body = {"csrf": csrf_of(form), "id_type": "resident_id", "id_number": holder.id_number, "claim_code": "AAAA-BBBB"}
    refused = await client.post("/holder/sign-in", data=body, headers={"Origin": "https://registry.test"})
    assert refused.status_code in (401, 422), refused.text
    error = re.search(r'<p class="error" id="([^"]+)" role="alert">', refused.text)
    assert error is not None, refused.text
    for field in ("id_number", "claim_code"):
        control = tag(refused.text, field)
        assert 'aria-invalid="true"' in control, control
        assert f'aria-describedby="{error.group(1)}"' in control, control


def tied_error(page: str, element_id: str) -> str:
    """The words of the error the control is tied to (aria-invalid, and aria-describedby naming the error)."""
    control = tag(page, element_id)
    assert 'aria-invalid="true"' in control, control
    described = re.search(r'aria-describedby="([^"]+)"', control)
    assert described is not None, control
    error = re.search(rf'<p class="error" id="{described.group(1)}" role="alert">([^<]+)</p>', page)
    assert error is not None, page
    return error.group(1)


async def test_an_identity_providers_refusal_is_shown_beside_its_own_form(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Before, "idp_failed" and "idp_unreachable" showed in the claim-code form, tied to its fields, not the token's."""
    key = Ed25519PrivateKey.generate()
    _provider(app, key)
    form = await client.get("/holder", params={"lang": "en"})
    for token, status in ((_id_token(key, resident_id()), 401), ("x" * 8193, 422)):
        refused = await client.post("/holder/sign-in/external?lang=en", data={"csrf": csrf_of(form), "id_token": token})
        assert refused.status_code == status, refused.text
        said = tied_error(refused.text, "id_token")
        assert said.startswith("The identity token is not valid" if status == 401 else "Please correct the form"), said
        external = refused.text.split('action="/holder/sign-in/external', 1)
        assert len(external) == 2
        assert said in external[1].split("</form>", 1)[0]  # inside the token's form
        assert 'class="error"' not in external[0]  # and nowhere before it: not above the claim-code form
        assert all("aria-invalid" not in tag(refused.text, field) for field in ("id_number", "claim_code"))


async def test_a_refused_share_link_is_shown_beside_the_field_at_fault(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Before, the error showed at the top of the page, tied to no field; now beside its field, what was typed kept."""
    holder, home = await holder_at_home(app, client)
    others = await issued_certificate(client, holder.issuer, level="senior")  # someone else's
    share = {"csrf": csrf_of(home), "number": holder.certificate["number"], "purpose": "hiring"}
    fields = ("number", "purpose", "purpose_text", "expires_in_days")
    for wrong, field, words in (
        ({"purpose": "other"}, "purpose_text", "purpose_text"),
        ({"purpose": "bribery"}, "purpose", "purpose"),
        ({"purpose_text": "入职", "expires_in_days": "99999"}, "expires_in_days", "不能大于 365"),
        ({"number": others["number"]}, "number", "您没有证书"),
    ):
        page = await client.post("/holder/share-links", data={**share, **wrong})
        assert page.status_code == 422, page.text
        assert words in tied_error(page.text, field), (wrong, page.text)
        assert [f for f in fields if "aria-invalid" in tag(page.text, f)] == [field], wrong
        top = page.text.split('<h2 id="links">', 1)[0]
        assert 'class="error"' not in top, wrong
    kept = await client.post("/holder/share-links", data={**share, "purpose_text": "入职", "expires_in_days": "999"})
    assert 'value="入职"' in tag(kept.text, "purpose_text")
    assert 'value="999"' in tag(kept.text, "expires_in_days")
    assert "aria-invalid" not in tag((await client.get("/holder")).text, "expires_in_days")  # a fresh form


async def test_a_cards_standing_reads_as_sentences(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Before: "证书已被发证机构撤销，不再有效。 · 撤销日期 …", a full stop and then " · "."""
    holder = await signed_in_holder(app, client)
    person = {"name": HOLDER_NAME, "id_type": "resident_id", "id_number": holder.id_number}
    number = (await issued_certificate(client, holder.issuer, holder=person, level="senior"))["number"]
    revocation = {"reason": "证书信息有误", "reason_code": "issued_in_error"}
    revoked = await client.post(f"/v1/certificates/{number}/revoke", json=revocation, headers=bearer(holder.issuer))
    assert revoked.status_code == 200, revoked.text
    assert (await _sign_in(client, holder)).status_code == 303
    said = {
        lang: re.findall(
            r'<div class="standing revoked">([^<]*)</div>', (await client.get(f"/holder?lang={lang}")).text
        )
        for lang in ("zh", "en")
    }
    day = r"\d{4}-\d{2}-\d{2}"
    assert re.fullmatch(rf"证书已被发证机构撤销，不再有效。撤销日期 {day}。原因：误发。", said["zh"][0]), said
    english = rf"The issuing body has revoked this certificate; it is no longer valid\. Revoked on {day}\. "
    assert re.fullmatch(english + r"Reason: issued in error\.", said["en"][0]), said


async def test_chinese_names_on_an_english_page_are_marked_chinese(app: FastAPI, client: httpx.AsyncClient) -> None:
    """WCAG 3.1.2: on the English page a screen reader reads the holder's and the body's Chinese names in Chinese."""
    holder = await signed_in_holder(app, client)
    token = holder.certificate["qr_token"]
    english = (await client.get(f"/v/{token}", params={"lang": "en"})).text
    assert f'<dd lang="zh-CN">{HOLDER_NAME}</dd>' in english
    assert re.search(r'<dd lang="zh-CN">[^<]*委员会</dd>', english), english
    chinese = (await client.get(f"/v/{token}", params={"lang": "zh"})).text
    assert f"<dd>{HOLDER_NAME}</dd>" in chinese
    assert (await _sign_in(client, holder)).status_code == 303
    home = (await client.get("/holder", params={"lang": "en"})).text
    assert re.search(r'<div class="meta"><span lang="zh-CN">[^<]*委员会</span>', home), home


async def test_each_withdraw_button_says_which_link_it_withdraws(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Two links, two buttons both saying "撤回": each is described by its own link's purpose and number."""
    holder = await signed_in_holder(app, client)
    assert (await _sign_in(client, holder)).status_code == 303
    for purpose in ("hiring", "household_registration"):
        home = await client.get("/holder")
        body = {"csrf": csrf_of(home), "number": holder.certificate["number"], "purpose": purpose}
        assert (await client.post("/holder/share-links", data=body)).status_code == 200
    page = (await client.get("/holder")).text
    described = re.findall(r'<button type="submit" aria-describedby="([^"]+)">撤回</button>', page)
    assert len(described) == 2, page
    words = set()
    for ids in described:
        said = " ".join(" ".join(text_of(described_by(page, i)).split()) for i in ids.split())
        assert holder.certificate["number_display"] in said, said
        words.add(said)
    assert len(words) == 2, words


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as url:
        yield url


async def test_a_320_px_screen_needs_no_sideways_scrolling_and_focus_shows(
    app: FastAPI, client: httpx.AsyncClient, served: str, tmp_path: Path
) -> None:
    """WCAG 1.4.10 (reflow at 320 CSS px, which is also a 640 px window at 200%) and 2.4.7 (focus visible). Before,
    the masked ID number (nowrap) ran 7 px past the screen's edge and "Certificate" into its value."""
    playwright_api = pytest.importorskip("playwright.async_api")
    holder = await signed_in_holder(app, client)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 320, "height": 640}, is_mobile=True)
            for lang in ("zh", "en"):
                await page.goto(f"{served}/v/{holder.certificate['qr_token']}?lang={lang}")
                await page.evaluate("document.fonts.ready.then(() => true)")  # measured as laid out in its fonts
                wide = await page.evaluate("document.documentElement.scrollWidth")
                assert wide <= 320, (lang, wide)
                spill = await page.evaluate(
                    "[...document.querySelectorAll('dl div > *')].filter(e =>"
                    " e.getBoundingClientRect().right > e.parentElement.getBoundingClientRect().right + 1)"
                    ".map(e => e.outerHTML.slice(0, 120) + ' ' + e.getBoundingClientRect().right)"
                )
                assert spill == [], (lang, spill)  # which rows, and how far: the data are random
            await page.screenshot(path=str(tmp_path / "valid-320.png"), full_page=True)
            await page.goto(f"{served}/v")
            await page.keyboard.press("Tab")
            await page.keyboard.press("Tab")  # past the language switch, into the number's field
            focused = await page.evaluate(
                "(() => { const s = getComputedStyle(document.activeElement);"
                " return [document.activeElement.id, s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
            )
            assert focused == ["number", "solid", 3], focused
        finally:
            await browser.close()
