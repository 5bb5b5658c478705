"""Three small defects, each pinned: a bureau suspension is said to be the bureau's (not "the issuing body's") on
every page and list that explains a verification; a rate limit says it counts "your network" (an IPv6 /64, an IPv4
address), not "this address"; and an unhandled error's 500 is never kept by a cache."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.config import Settings
from registry.holder_access.sign_in import MAX_FAILURES
from tests.factories import bearer, issued_certificate, resident_id
from tests.integration.lifecycle_support import World, act, set_up
from tests.integration.rate_limit_support import from_address, limited_app

BUREAU_EN = "The human resources bureau has suspended this certificate."
BUREAU_ZH = "证书已被人力资源社会保障部门暂停。"
BODY_EN = "The issuing body has suspended this certificate."
BODY_ZH = "证书已被发证机构暂停。"


def _shown(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    return re.sub(r"<[^>]+>", "", page.text)


async def _suspended(client: httpx.AsyncClient, world: World, by: str) -> dict[str, Any]:
    """A certificate suspended ``by`` the bureau or the issuing body, with its holder's identity number."""
    id_number = resident_id(birth="19880808")
    holder = {"name": "钱六", "id_type": "resident_id", "id_number": id_number}
    certificate = await issued_certificate(client, world.issuer, holder=holder)
    token = world.admin if by == "bureau" else world.issuer
    assert (await act(client, token, certificate["number"], "suspend")).status_code == 200
    return {**certificate, "id_number": id_number}


async def test_the_verification_page_names_the_bureau_when_the_bureau_suspended(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    by_bureau = await _suspended(client, world, "bureau")
    by_body = await _suspended(client, world, "body")
    for lang in ("zh", "en"):  # each page says both languages, its own first
        bureau_page = _shown(await client.get(f"/v/{by_bureau['qr_token']}", params={"lang": lang}))
        for words, said in ((BUREAU_EN, True), (BUREAU_ZH, True), (BODY_EN, False), (BODY_ZH, False)):
            assert (words in bureau_page) is said, (lang, words)
        body_page = _shown(await client.get(f"/v/{by_body['qr_token']}", params={"lang": lang}))
        for words, said in ((BODY_EN, True), (BODY_ZH, True), (BUREAU_EN, False), (BUREAU_ZH, False)):
            assert (words in body_page) is said, (lang, words)


async def test_the_holders_list_names_the_bureau_when_the_bureau_suspended(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await _suspended(client, world, "bureau")
    body = {"id_type": "resident_id", "id_number": certificate["id_number"], "claim_code": certificate["claim_code"]}
    session = await client.post("/v1/holder/sessions", json=body)
    assert session.status_code == 201, session.text
    headers = bearer(session.json()["access_token"])
    for lang, words in (("en", BUREAU_EN), ("zh-CN", BUREAU_ZH)):
        listed = await client.get("/v1/holder/certificates", headers=headers | {"Accept-Language": lang})
        assert listed.status_code == 200, listed.text
        mine = {c["number"]: c for c in listed.json()}[certificate["number"]]
        assert (mine["result"], mine["status_reason"], mine["result_text"]) == ("suspended", "bureau", words)


async def test_the_verify_limit_says_it_counts_the_readers_network(settings: Settings) -> None:
    async with (
        limited_app(settings, rate_limit_verify="1/minute") as limited,
        from_address(limited, "2001:db8:7:7::1") as http,
    ):
        await http.get("/v1/verify/not-a-token")
        en = await http.get("/v1/verify/not-a-token", headers={"Accept-Language": "en"})
        zh = await http.get("/v1/verify/not-a-token", headers={"Accept-Language": "zh-CN"})
    assert (en.status_code, zh.status_code) == (429, 429)
    assert en.json()["detail"].startswith("too many verification requests from your network; try again in ")
    assert zh.json()["detail"].startswith("您所在网络的核验请求过多；请在 ")


async def test_the_token_limit_says_it_counts_the_readers_network(settings: Settings) -> None:
    form = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "wrong"}
    async with limited_app(settings, rate_limit_token="1/minute") as limited, from_address(limited, "1.2.3.4") as http:
        assert (await http.post("/oauth/token", data=form)).status_code == 401
        en = await http.post("/oauth/token", data=form)
        zh = await http.post("/oauth/token", data=form, headers={"Accept-Language": "zh-CN"})
    assert en.json()["detail"].startswith("too many token requests from your network; try again in ")
    assert zh.json()["detail"].startswith("您所在网络的令牌请求过多；请在 ")


async def test_the_claim_code_lockout_says_it_locked_the_readers_network(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    holder = {"name": "李七", "id_type": "resident_id", "id_number": resident_id(birth="19920202")}
    certificate = await issued_certificate(client, world.issuer, holder=holder)
    wrong = {"id_type": "resident_id", "id_number": holder["id_number"], "claim_code": "AAAA-BBBB-CCCC"}
    answers = []
    for n in range(MAX_FAILURES + 1):  # every try from another address of one /64
        async with from_address(app, f"2001:db8:9:9::{n + 1:x}") as http:
            answers.append(await http.post("/v1/holder/sessions", json=wrong, headers={"Accept-Language": "zh-CN"}))
    assert [a.status_code for a in answers] == [401] * MAX_FAILURES + [429]
    assert "来自您所在的网络" in answers[-1].json()["detail"]
    async with from_address(app, "2001:db8:9:9::ff") as http:
        right = {**wrong, "claim_code": certificate["claim_code"]}
        locked = await http.post("/v1/holder/sessions", json=right)
    assert locked.status_code == 429
    assert "for this identity from your network" in locked.json()["detail"]


@pytest.fixture
async def failing_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with an API route and a page that fail as a bug would; the client gets the 500 the app answers."""

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/broken-for-a-test", broken)
    app.add_api_route("/holder/broken-for-a-test", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
        yield http


async def test_an_unhandled_error_answers_a_500_no_cache_may_keep(failing_app: httpx.AsyncClient) -> None:
    answer = await failing_app.get("/v1/broken-for-a-test")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/internal-error")
    assert answer.headers["cache-control"] == "no-store"
    page = await failing_app.get("/holder/broken-for-a-test", headers={"Accept": "text/html"})  # a page says it too
    assert (page.status_code, page.headers["content-type"]) == (500, "text/html; charset=utf-8")
    assert "the request could not be completed" in page.text
    assert page.headers["cache-control"] == "no-store"
