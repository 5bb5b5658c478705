"""Two catalogue entries, or two evaluation bodies, an employer cannot tell apart on the verification page.

The bureau's catalogue takes a new entry with the very series and names of one already there (工程技术 · 人工智能 ·
"Artificial intelligence" under another code): nothing refuses it. A body filed only for the new entry — a pilot
scheme, a narrower or a lower standard, a body with a looser filing — then issues certificates whose verification
page reads word for word like one of the established speciality: the page names the series, the speciality and the
level, never the catalogue code that tells them apart (the JSON answer carries it; the page and the PDF do not). An
applicant holding the look-alike passes it off as the real one.

What should happen, either of: the catalogue refuses an entry whose type, series and name (compared as people read
them: NFKC, case and spaces folded) are an entry's already in force (409 naming ``name_zh``); or the page shows
something that tells the two apart (the catalogue code). This test passes with either.

The same holds for evaluation bodies: the registry takes a second body under the very name of one already registered
(a third-party evaluation organisation registered as "北京市…高级职称评审委员会"), and the page names the body only by
that name — not its code, its kind (title committee or training organisation) or its credit code. Either a body's
name (compared as people read it) is refused when another body has it, or the page shows what tells them apart.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI

from tests.factories import (
    admin_token,
    bearer,
    create_issuer,
    issued_certificate,
    issuer_body,
    issuer_token,
    resident_id,
)

LOOK_ALIKE = {
    "code": "ENG-AI-PILOT",
    "cert_type": "title",
    "series_zh": "工程技术",
    "series_en": "Engineering",
    "name_zh": "人工智能",  # the shipped ENG-AI's names, to the letter
    "name_en": "Artificial intelligence",
    "levels": ["intermediate", "associate_senior", "senior"],
    "effective_from": "2020-01-01",
}


def _described(page: str, number_display: str) -> str:
    """What the page's certificate card says, as a reader sees it, less the certificate's number."""
    card = re.search(r"<dl>(.*?)</dl>", page, re.S)
    assert card is not None, page
    text = re.sub(r"<[^>]+>", " ", card.group(1)).replace(number_display, "#")
    return " ".join(text.split())


async def test_a_look_alike_catalogue_entry_is_refused_or_told_apart_on_the_page(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    created = await client.post("/v1/catalogue", json=LOOK_ALIKE, headers=bearer(admin))
    if created.status_code in (409, 422):  # the fix at the catalogue: a second entry of the same names is refused
        fields = [error["field"] for error in created.json().get("errors", [])]
        assert {"name_zh", "name_en"} & set(fields), created.text
        return
    assert created.status_code == 201, created.text

    await create_issuer(client, admin, catalogue_codes=("ENG-AI", "ENG-AI-PILOT"))
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    person: dict[str, Any] = {"name": "王五", "id_type": "resident_id", "id_number": resident_id(birth="19850505")}
    shown = []
    for code in ("ENG-AI", "ENG-AI-PILOT"):
        certificate = await issued_certificate(client, issuer, catalogue_code=code, level="senior", holder=person)
        answer = (await client.get(f"/v1/verify/{certificate['qr_token']}")).json()
        assert (answer["result"], answer["certificate"]["catalogue_code"]) == ("valid", code)
        page = await client.get(f"/v/{certificate['qr_token']}")
        assert page.status_code == 200, page.text
        shown.append(_described(page.text, answer["certificate"]["number_display"]))
    # Before the fix both cards read the same: 工程技术 · 人工智能 · 正高级 · the same body, holder and dates.
    assert shown[0] != shown[1], shown[0]


async def test_a_body_registered_under_another_bodys_name_is_refused_or_told_apart_on_the_page(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    real = await create_issuer(client, admin)
    look_alike = issuer_body("BJ-AI-TRAINING", kind="evaluation_organisation", name=real["name"])
    created = await client.post("/v1/issuers", json=look_alike, headers=bearer(admin))
    if created.status_code in (409, 422):  # the fix at registration: the name is another body's
        assert "name" in [error["field"] for error in created.json().get("errors", [])], created.text
        return
    assert created.status_code == 201, created.text

    person: dict[str, Any] = {"name": "赵六", "id_type": "resident_id", "id_number": resident_id(birth="19870707")}
    shown = []
    for code in (real["code"], "BJ-AI-TRAINING"):
        issuer = await issuer_token(app, client, code)
        certificate = await issued_certificate(client, issuer, level="senior", holder=person)
        answer = (await client.get(f"/v1/verify/{certificate['qr_token']}")).json()
        assert (answer["result"], answer["certificate"]["issuer_code"]) == ("valid", code)
        page = await client.get(f"/v/{certificate['qr_token']}")
        assert page.status_code == 200, page.text
        shown.append(_described(page.text, answer["certificate"]["number_display"]))
    # Before the fix both cards read the same, body included: nothing says which of the two issued it.
    assert shown[0] != shown[1], shown[0]
