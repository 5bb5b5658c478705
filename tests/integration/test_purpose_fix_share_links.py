"""A share link's purpose is a purpose like a recognition question's: an identity number a holder types into it,
through the API or the page's form, is masked before it is kept, and links and visits kept in clear before are masked
by migration 0020 — so the public page, the holder's lists and the who-looked record never show it in clear."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.db import create_engine
from registry.migrate import downgrade, upgrade
from tests.integration.holder_support import SignedInHolder, table_rows
from tests.integration.test_holder_pages import csrf_of, holder_at_home


def _masked(identity: str) -> str:
    return f"{identity[:2]}{'*' * 14}{identity[-2:]}"


async def test_an_identity_number_typed_into_the_share_form_is_masked_on_every_page(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder, home = await holder_at_home(app, client)
    identity = holder.id_number
    form = {
        "csrf": csrf_of(home),
        "number": holder.certificate["number"],
        "purpose": "other",
        "purpose_text": f"背调，身份证 {identity[:6]}/{identity[6:14]}/{identity[14:]}",
        "expires_in_days": "7",
    }
    created = await client.post("/holder/share-links", data=form)
    assert created.status_code == 200, created.text
    assert identity[6:14] not in created.text  # the holder's own list of links on the dashboard
    url = re.search(r'<code id="new-link">([^<]+)</code>', created.text)
    assert url is not None
    shared = await client.get(httpx.URL(url.group(1)).path)
    assert shared.status_code == 200, shared.text
    assert "背调，身份证" in shared.text
    assert identity[6:14] not in shared.text
    assert f"{identity[:2]}{'*' * 16}{identity[-2:]}" in shared.text
    [kept] = [row["purpose_text"] for row in await table_rows(app, "share_links")]
    assert kept == f"背调，身份证 {identity[:2]}{'*' * 16}{identity[-2:]}"
    await app.state.visits.flush()
    after = await client.get("/holder")
    visits = re.findall(r'<li class="visit">.*?</li>', after.text, flags=re.S)
    assert len(visits) == 1
    assert "背调" in visits[0]
    assert identity[6:14] not in visits[0]


async def test_a_share_links_purpose_without_an_identity_number_is_kept_as_typed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder, _home = await holder_at_home(app, client)
    purpose_text = "用于2026-12-05入职审核，第1234567号通知"
    body = {"number": holder.certificate["number"], "purpose": "other", "purpose_text": purpose_text}
    created = await client.post("/v1/holder/share-links", json=body, headers=holder.headers)
    assert created.status_code == 201, created.text
    assert created.json()["purpose_text"] == purpose_text
    shared = await client.get(httpx.URL(created.json()["url"]).path, params={"lang": "en"})
    assert shared.text.count(purpose_text) == 2  # in the page's language and the other


async def _a_link_visited(app: FastAPI, client: httpx.AsyncClient) -> tuple[SignedInHolder, str]:
    """A signed-in holder's share link, visited once (its visit recorded): the holder and the link's path."""
    holder, _home = await holder_at_home(app, client)
    body = {"number": holder.certificate["number"], "purpose": "other", "purpose_text": "入职核验"}
    created = await client.post("/v1/holder/share-links", json=body, headers=holder.headers)
    assert created.status_code == 201, created.text
    path = httpx.URL(created.json()["url"]).path
    assert (await client.get(path)).status_code == 200
    await app.state.visits.flush()
    return holder, path


async def _kept_then_migrated(app: FastAPI, database_url: str, kept: str, *, since: str) -> None:
    """The link's and its visit's purposes set to ``kept``, as an earlier node left them; then down to ``since`` and
    up again."""
    async with app.state.engine.begin() as connection:
        await connection.execute(text("UPDATE share_links SET purpose_text = :kept"), {"kept": kept})
        await connection.execute(text("UPDATE verification_visits SET purpose = :label"), {"label": f"other: {kept}"})
    await app.state.engine.dispose()
    engine = create_engine(database_url)
    try:
        await downgrade(engine, since)
        await upgrade(engine)
    finally:
        await engine.dispose()


async def test_links_and_visits_kept_in_clear_before_are_masked_by_the_migration(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    holder, path = await _a_link_visited(app, client)
    identity = holder.id_number
    clear = f"入职核验，身份证号{identity}"
    await _kept_then_migrated(app, database_url, clear, since="20261213_0019")  # as a node before this fix kept it

    said = f"入职核验，身份证号{_masked(identity)}"
    assert [row["purpose_text"] for row in await table_rows(app, "share_links")] == [said]
    assert [row["purpose"] for row in await table_rows(app, "verification_visits")] == [f"other: {said}"]
    page = await client.get(path)
    assert identity not in page.text
    assert said in page.text
    looked = await client.get("/v1/holder/verifications", headers=holder.headers)
    assert looked.status_code == 200, looked.text
    assert identity not in looked.text
    listed = await client.get("/v1/holder/share-links", headers=holder.headers)
    assert [link["purpose_text"] for link in listed.json()] == [said]


async def test_an_identity_number_typed_with_wide_gaps_kept_under_the_earlier_rule_is_masked_by_migration_0022(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    holder, path = await _a_link_visited(app, client)
    identity = holder.id_number
    spread = "  ".join(identity[i : i + 4] for i in range(0, 18, 4))  # 1101  0519  4912  3100  2X
    kept = f"入职核验，身份证号 {spread}，入职日期20261205"  # as 0020's rule left it: in clear
    await _kept_then_migrated(app, database_url, kept, since="20261215_0021")

    (link,) = await table_rows(app, "share_links")
    (visit,) = await table_rows(app, "verification_visits")
    for said in (link["purpose_text"], visit["purpose"]):
        shown = said.split("身份证号")[1].split("，")[0].replace("*", "").replace(" ", "")
        assert shown == identity[:2] + identity[-2:], said  # two characters kept at each end, as ever
        assert said.endswith("，入职日期20261205"), said  # the date beside it stays as typed
    page = await client.get(path)
    assert spread not in page.text


@pytest.mark.parametrize(
    ("spelled", "shown"),
    [
        ("一一〇一〇五一九四九一二三一〇〇二X", "11**************2X"),  # in Chinese numerals
        ("%31%31%30%31%30%35%31%39%34%39%31%32%33%31%30%30%32X", "%31%31" + "*" * 42 + "%32X"),  # escaped
        ("EA  1234567", "EA  *******"),  # a passport's letters typed apart from its number
    ],
)
async def test_an_identity_number_spelled_past_the_0022_rule_is_masked_by_migration_0023(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, spelled: str, shown: str
) -> None:
    _holder, path = await _a_link_visited(app, client)
    kept = f"入职核验，证件 {spelled}，入职日期20261205"  # as 0022's rule left it: in clear
    await _kept_then_migrated(app, database_url, kept, since="20261216_0022")

    said = f"入职核验，证件 {shown}，入职日期20261205"
    assert [row["purpose_text"] for row in await table_rows(app, "share_links")] == [said]
    assert [row["purpose"] for row in await table_rows(app, "verification_visits")] == [f"other: {said}"]
    assert spelled not in (await client.get(path)).text
