"""Errors people can act on, in their language: ``Accept-Language: zh-CN`` (or ``?lang=zh``) answers a problem's
title, detail and every ``errors[].message`` in Chinese, anything else in English; the field paths stay as they are,
and no message shows a pattern a person would have to decode."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.config import Settings
from tests.checks import assert_problem
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_client,
    issued_certificate,
    issuer_body,
    ready_issuer,
    token_for,
)
from tests.integration.rate_limit_support import from_address, limited_app

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}
# What a regular expression looks like inside a message: anchors, character classes, repetition counts.
REGEX = re.compile(r"\^|\$|\[[A-Za-z0-9]-|\\[dwsx]|\{\d+,\d*\}")
HAN = re.compile(r"[\u4e00-\u9fff]")


def said(response: httpx.Response, status: int, *, field: str | None = None) -> dict[str, Any]:
    """The problem body, checked for what every answer in any language shares: its headers, no regex in any text."""
    body = assert_problem(response, status, field=field)
    texts = [body["title"], body["detail"], *(error["message"] for error in body.get("errors", []))]
    for text in texts:
        assert not REGEX.search(text), text
    assert response.headers["Vary"] == "Accept-Language"
    return body


def chinese(response: httpx.Response, status: int, *, field: str | None = None) -> dict[str, Any]:
    body = said(response, status, field=field)
    assert response.headers["Content-Language"] == "zh-CN"
    for text in (body["title"], body["detail"], *(error["message"] for error in body.get("errors", []))):
        assert HAN.search(text), f"not said in Chinese: {text!r}"
    return body


def english(response: httpx.Response, status: int, *, field: str | None = None) -> dict[str, Any]:
    body = said(response, status, field=field)
    assert response.headers["Content-Language"] == "en"
    for text in (body["title"], body["detail"], *(error["message"] for error in body.get("errors", []))):
        assert not HAN.search(text), f"not said in English: {text!r}"
    return body


def message(body: dict[str, Any], field: str) -> str:
    return str(next(error["message"] for error in body["errors"] if error["field"] == field))


async def test_a_date_written_the_day_first_way_is_explained_in_the_readers_language(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    body = certificate_body(awarded_on="30/06/2026")

    zh = chinese(
        await client.post("/v1/certificates", json=body, headers={**bearer(issuer), **ZH}), 422, field="awarded_on"
    )
    assert "日期格式应为 YYYY-MM-DD" in message(zh, "awarded_on")
    assert zh["title"] == "请求内容无效"
    assert zh["detail"].startswith("awarded_on：")  # the field path stays machine readable in any language

    en = english(
        await client.post("/v1/certificates", json=body, headers={**bearer(issuer), **EN}), 422, field="awarded_on"
    )
    assert message(en, "awarded_on").startswith("use YYYY-MM-DD")
    assert "invalid character" not in en["detail"]  # the parser's own words are not shown
    assert [e["field"] for e in zh["errors"]] == [e["field"] for e in en["errors"]]


async def test_a_code_that_breaks_its_pattern_is_described_in_words(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    body = issuer_body(code="bj ai committee")
    answer = await client.post("/v1/issuers?lang=zh", json=body, headers=bearer(admin))
    zh = chinese(answer, 422, field="code")
    assert "大写字母、数字和连字符" in message(zh, "code")
    en = english(await client.post("/v1/issuers", json=body, headers=bearer(admin)), 422, field="code")
    assert (
        message(en, "code")
        == "must be capital letters, digits and hyphens, 3–32 characters, not starting with a hyphen"
    )


async def test_a_mistyped_certificate_number_is_explained_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    certificate = await issued_certificate(client, await ready_issuer(app, client))
    number = str(certificate["number"]).replace("-", "")
    typo = number[:-1] + ("0" if number[-1] != "0" else "1")
    question = {"number": typo, "holder_name": "张三"}

    zh = chinese(await client.post("/v1/verify", json=question, headers=ZH), 422, field="number")
    assert "校验字符不符" in message(zh, "number")
    en = english(await client.post("/v1/verify", json=question), 422, field="number")
    assert message(en, "number").startswith("check character is wrong")
    assert en["detail"].count("typo") + en["detail"].count("mistyped") == 1  # said once, not twice


async def test_an_unknown_address_is_not_found_in_either_language(client: httpx.AsyncClient) -> None:
    zh = chinese(await client.get("/v1/no-such-thing", headers=ZH), 404)
    assert zh["title"] == "未找到"
    en = english(await client.get("/v1/no-such-thing"), 404)
    assert (en["title"], en["detail"]) == ("Not found", "Not Found")


async def test_the_frameworks_own_refusals_are_said_in_chinese_too(client: httpx.AsyncClient) -> None:
    too_large = await client.post("/v1/verify", content=b"{" + b" " * (1 << 20) + b"}", headers=ZH)
    assert chinese(too_large, 413)["title"] == "请求过大"
    wrong_method = await client.delete("/v1/verify", headers=ZH)
    assert chinese(wrong_method, 405)["title"] == "不允许使用此请求方法"
    not_json = await client.post("/v1/verify", content=b"\xff\xfe", headers={**ZH, "Content-Type": "application/json"})
    chinese(not_json, 422, field="body")


async def test_an_award_outside_the_filed_scope_names_the_entry_in_chinese(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    body = certificate_body(catalogue_code="ENG-ROBOT")
    zh = chinese(await client.post("/v1/certificates?lang=zh", json=body, headers=bearer(issuer)), 403)
    assert zh["title"] == "超出评价机构的备案范围"
    assert "未备案 ENG-ROBOT" in zh["detail"]
    en = english(await client.post("/v1/certificates?lang=en", json=body, headers={**bearer(issuer), **ZH}), 403)
    assert en["title"] == "Outside the evaluation body's filed scope"  # ?lang wins over Accept-Language


async def test_a_duplicate_award_is_refused_in_chinese_with_the_number_it_clashes_with(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    body = certificate_body()
    first = await issued_certificate(client, issuer, **body)
    zh = chinese(await client.post("/v1/certificates", json=body, headers={**bearer(issuer), **ZH}), 409)
    assert zh["title"] == "持证人已持有该目录条目和等级的有效证书"
    assert message(zh, "holder.id_number").startswith("本机构已为该持证人签发过")
    assert str(first["number"]) in message(zh, "holder.id_number").replace("-", "")


async def test_the_rate_limit_answers_in_the_readers_language(settings: Settings) -> None:
    form = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "wrong"}
    async with limited_app(settings, rate_limit_token="1/minute") as limited, from_address(limited, "1.2.3.4") as http:
        chinese(await http.post("/oauth/token", data=form, headers=ZH), 401)
        zh = chinese(await http.post("/oauth/token", data=form, headers=ZH), 429)
        assert zh["title"] == "请求过于频繁"
        assert zh["detail"].startswith("您所在网络的令牌请求过多；请在 ")
        en = english(await http.post("/oauth/token", data=form), 429)
        assert en["detail"].startswith("too many token requests from your network; try again in ")


async def test_each_bad_item_of_a_bulk_question_gets_its_problem_in_the_readers_language(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    partner = bearer(await token_for(client, *await create_client(app, role=Role.partner, region="HE")))
    items: list[object] = [{"number": "not a number", "holder_name": "张三"}, {"number": "BJT20260000000000"}]
    body = {"purpose": "talent_introduction", "items": items}
    answer = await client.post("/v1/recognition/queries", json=body, headers={**partner, **ZH})
    assert answer.status_code == 200, answer.text
    first, second = (result["problem"] for result in answer.json()["results"])
    assert (first["title"], first["errors"][0]["field"]) == ("请求内容无效", "items[0].number")
    assert HAN.search(first["errors"][0]["message"]), first
    assert second["errors"][0] == {"field": "items[1].holder_name", "message": "为必填项"}
    english_answer = await client.post("/v1/recognition/queries", json=body, headers=partner)
    assert english_answer.json()["results"][1]["problem"]["errors"][0]["message"] == "is required"


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [(None, "en"), ("fr-FR, zh;q=0.5", "zh-CN"), ("zh;q=0.1, en", "en"), ("zh-Hans-CN", "zh-CN"), ("*", "en")],
)
async def test_the_language_follows_the_readers_preference(
    client: httpx.AsyncClient, accept_language: str | None, expected: str
) -> None:
    headers = {"Accept-Language": accept_language} if accept_language is not None else {}
    response = await client.get("/v1/no-such-thing", headers=headers)
    assert response.headers["Content-Language"] == expected
