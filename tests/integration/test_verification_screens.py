"""What an employer's phone (360 x 740) and a desk screen show for each standing of a certificate, in real Chromium:
the status at a glance in both languages, the date and public reason of the change, no "valid until" for a
certificate that is not valid, a signature line that says what it means, and a number that stays on one line.

Screenshots go to the test's tmp folder (and to ``$REGISTRY_TEST_SCREENSHOTS`` when set, for a person to look at).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from registry.certificates.models import Certificate
from registry.clock import today
from registry.db import transaction
from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, resident_id
from tests.integration.browser_support import CHROMIUM, CHROMIUM_ARGS, serving

CODE = "BJ-AI-COMMITTEE"
SIZES = {"phone": {"width": 360, "height": 740}, "desktop": {"width": 1280, "height": 860}}
# What each page must say, Chinese first and English beneath, whatever the language asked for.
EXPECTED: dict[str, list[str]] = {
    "valid": ["有效", "Valid", "有效期至", "Valid until", "长期有效", "签名真实，证书有效", "副高级"],
    "revoked": [
        "已撤销",
        "Revoked",
        "撤销日期",
        "Revoked on",
        "误发",
        "issued in error",
        "签名真实，但证书已撤销",
        "Signature genuine, but the certificate was revoked",
        "原定有效期",
        "Original validity",
    ],
    "suspended": [
        "暂停",
        "Suspended",
        "暂停日期",
        "Suspended on",
        "人力资源社会保障部门暂停",
        "签名真实，但证书已暂停",
        "Signature genuine, but the certificate is suspended",
    ],
    "expired": [
        "已过期",
        "Expired",
        "失效日期 2024-07-01",
        "Not valid since 2024-07-01",
        "原定有效期",
        "2024-06-30",
        "签名真实，但证书已过期",
    ],
    "superseded": [
        "已更正",
        "Superseded",
        "更正日期",
        "Corrected on",
        "更正后证书编号",
        "Replaced by",
        "签名真实，但证书已被更正后的证书替代",
    ],
    "unknown": [
        "无法确认",
        "Cannot confirm",
        "证书状态记录校验失败",
        "the status record does not check out",
        "签名真实，但无法确认证书当前状态",
        "原定有效期",
    ],
}
BOTH_NAMES = ["工程技术", "Engineering"]
SPECIALITY = {"expired": ["人工智能", "Artificial intelligence"]}  # an entry already in force in 2020


def _names(standing: str) -> list[str]:
    return BOTH_NAMES + SPECIALITY.get(standing, ["具身智能", "Embodied intelligence"])


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as url:
        yield url


async def certificates_in_every_standing(app: FastAPI, client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """One certificate per standing, changed through the API as the issuing body and the bureau do."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, CODE)

    async def issue(name: str, **overrides: Any) -> dict[str, Any]:
        holder = {"name": name, "id_type": "resident_id", "id_number": resident_id()}
        return await issued_certificate(client, issuer, holder=holder, **overrides)

    made = {
        "valid": await issue("吴十"),
        "revoked": await issue("郑一"),
        "suspended": await issue("王二"),
        "expired": await issue("冯三", catalogue_code="ENG-AI", awarded_on="2020-06-30", valid_until="2024-06-30"),
        "superseded": await issue("陈四", level="intermediate"),
        "unknown": await issue("褚五"),
    }
    changes = [
        (issuer, "revoked", "revoke", {"reason_code": "issued_in_error", "reason": "wrong person"}),
        (admin, "suspended", "suspend", {"reason": "complaint under review"}),  # the bureau: reason code "bureau"
        (issuer, "superseded", "correct", {"reason": "level typed wrong", "level": "associate_senior"}),
    ]
    for token, standing, action, body in changes:
        number = made[standing]["number"]
        response = await client.post(f"/v1/certificates/{number}/{action}", json=body, headers=bearer(token))
        assert response.status_code in (200, 201), response.text
    # A status record altered behind the registry's back: its seal no longer matches, so the registry cannot vouch.
    async with transaction(app.state.sessions) as session:
        await session.execute(
            update(Certificate).where(Certificate.number == made["unknown"]["number"]).values(status_seal="0" * 64)
        )
    return made


async def test_the_json_answer_names_the_date_and_public_reason_of_each_change(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    before = today().isoformat()
    made = await certificates_in_every_standing(app, client)
    answers = {standing: (await client.get(f"/v1/verify/{c['qr_token']}")).json() for standing, c in made.items()}
    for standing, answer in answers.items():
        assert answer["result"] == standing
        assert answer["certificate"]["series_en"] == "Engineering"
    days = {before, today().isoformat()}  # the changes are stamped with the real time: Beijing's midnight may pass
    for standing, reason in (("revoked", "issued_in_error"), ("suspended", "bureau"), ("superseded", None)):
        answer = answers[standing]
        assert answer["status_changed_on"] in days, (standing, answer, days)
        assert answer["status_reason"] == reason, (standing, answer)
    assert (answers["expired"]["status_changed_on"], answers["expired"]["status_reason"]) == ("2024-07-01", None)
    for standing in ("valid", "unknown"):
        assert answers[standing]["status_changed_on"] is None
        assert answers[standing]["status_reason"] is None


async def test_a_page_of_a_certificate_that_is_not_valid_never_says_valid_until(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = await certificates_in_every_standing(app, client)
    for standing, certificate in made.items():
        for lang in ("zh", "en"):
            page = await client.get(f"/v/{certificate['qr_token']}", params={"lang": lang})
            assert page.status_code == 200
            shown = re.sub(r"<[^>]+>", "", page.text)
            for text in EXPECTED[standing] + _names(standing):
                assert text in shown, (standing, lang, text)
            if standing != "valid":
                for claim in ("有效期至", "长期有效", "Valid until", "已验证"):
                    assert claim not in shown, (standing, lang, claim)
        english = await client.get(f"/v/{certificate['qr_token']}", params={"lang": "en"})
        # English first when asked for, Chinese still beneath.
        assert english.text.index("Certificate number") < english.text.index("证书编号")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # what the browser sees does not depend on the database
async def test_phone_and_desktop_show_each_standing_at_a_glance(
    app: FastAPI, client: httpx.AsyncClient, served: str, tmp_path: Path
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    made = await certificates_in_every_standing(app, client)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for size, viewport in SIZES.items():
                phone = size == "phone"
                page = await browser.new_page(viewport=viewport, device_scale_factor=2 if phone else 1, is_mobile=phone)
                for standing, certificate in made.items():
                    await page.goto(f"{served}/v/{certificate['qr_token']}")
                    await _looks_right(page, standing, certificate, width=viewport["width"])
                    await page.screenshot(path=str(tmp_path / f"{standing}-{size}.png"), full_page=True)
                await page.close()
        finally:
            await browser.close()
    _check_and_keep(tmp_path, count=len(made) * len(SIZES))


def _check_and_keep(folder: Path, *, count: int) -> None:
    shots = sorted(folder.glob("*.png"))
    assert len(shots) == count
    assert all(shot.stat().st_size > 10_000 for shot in shots)
    keep = os.environ.get("REGISTRY_TEST_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(keep) / shot.name)


async def _looks_right(page: Any, standing: str, certificate: dict[str, Any], *, width: int) -> None:
    body = await page.locator("body").inner_text()
    for text in EXPECTED[standing] + _names(standing):
        assert text in body, (standing, text)
    if standing != "valid":
        assert "有效期至" not in body
        assert "长期有效" not in body
    number = page.locator("dd.number").first
    assert await number.inner_text() == certificate["number_display"]
    box = await number.bounding_box()
    line_height = await number.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)")
    assert box["height"] < 1.5 * line_height, (standing, box, line_height)  # one line: never broken mid-number
    assert box["x"] + box["width"] <= width, (standing, box)  # and on the screen, not past its edge
    assert await page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
