"""Review of ce024c2 (identity numbers in purposes masked): the share link's purpose is a purpose too.

A holder who makes a share link "for another purpose" types its purpose_text, and a holder naturally writes the number
an employer asked for ("入职核验，身份证号110105…"). That text is printed on the public page the link opens (anyone
holding the URL reads it), stored in the holder's share-link list and recorded as the verification's purpose — the
same paths a recognition question's purpose_text is now masked on. Only ``registry.recognition.queries.Question``
masks; ``registry.holder_access.share_links`` keeps and shows the number in clear.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.integration.holder_support import signed_in_holder, table_rows


def _full_width(identity: str) -> str:
    return identity.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))


async def test_an_identity_number_in_a_share_links_purpose_is_not_shown_on_its_public_page(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    identity = holder.id_number
    body = {
        "number": holder.certificate["number"],
        "purpose": "other",
        "purpose_text": f"入职核验，身份证号{identity}",
    }
    created = await client.post("/v1/holder/share-links", json=body, headers=holder.headers)
    assert created.status_code == 201, created.text
    token = created.json()["url"].rsplit("/", 1)[1]

    for lang in ("zh", "en"):
        page = await client.get(f"/s/{token}", params={"lang": lang})
        assert page.status_code == 200, page.text
        assert "入职核验" in page.text  # the holder's words are still shown ...
        assert identity not in page.text, lang  # ... but not the number (before: printed in clear, twice)
        assert f"{identity[:2]}{'*' * 14}{identity[-2:]}" in page.text

    await app.state.visits.flush()
    stored = [row["purpose"] for row in await table_rows(app, "verification_visits")]
    assert stored, "the share-link visit was recorded"
    assert not any(identity in (purpose or "") for purpose in stored), stored
    listed = await client.get("/v1/holder/share-links", headers=holder.headers)
    assert listed.status_code == 200, listed.text
    assert identity not in listed.text


async def test_a_full_width_identity_number_in_a_share_links_purpose_is_not_shown_either(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    identity = holder.id_number
    typed = _full_width(identity)
    body = {"number": holder.certificate["number"], "purpose": "other", "purpose_text": f"背调 {typed}"}
    created = await client.post("/v1/holder/share-links", json=body, headers=holder.headers)
    assert created.status_code == 201, created.text
    page = await client.get(f"/s/{created.json()['url'].rsplit('/', 1)[1]}", params={"lang": "zh"})
    assert page.status_code == 200, page.text
    assert typed not in page.text
    assert identity not in page.text
