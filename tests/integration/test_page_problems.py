"""What goes wrong around a page a browser opened is said on a page, not in problem+json shown as raw text: the abuse
limits' 429 and the body cap's 413 on a form, an address under /v/ or /holder/ that names no page, a method a page
does not take, a control character in the address, an unexpected error. A client asking for JSON still gets JSON."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from api.app import MAX_BODY_BYTES
from api.errors import framework_detail
from registry.config import Settings
from registry.i18n import _, translate
from tests.integration.rate_limit_support import from_address, limited_app
from tests.integration.test_holder_pages import csrf_of

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def assert_page(answer: httpx.Response, status: int, *said: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html"), answer.headers["content-type"]
    assert answer.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert "<!doctype html>" in answer.text
    for words in said:
        assert words in answer.text, words


@pytest.mark.parametrize(
    ("path", "back"),
    [("/v/abc/def", "/v?lang=zh"), ("/holder/nothing-here", "/holder?lang=zh"), ("/s/a/b", "/v?lang=zh")],
)
async def test_an_address_that_names_no_page_answers_a_page(client: httpx.AsyncClient, path: str, back: str) -> None:
    answer = await client.get(path, headers=BROWSER)
    assert_page(answer, 404, "此地址没有对应的资源", "Not Found", f'href="{back}"')
    english = await client.get(path, params={"lang": "en"}, headers=BROWSER)
    assert_page(english, 404, "Not Found")
    assert english.text.index("Not Found") < english.text.index("此地址没有对应的资源")  # the page's language first
    assert english.headers["content-language"] == "en"


async def test_a_control_character_in_a_page_address_answers_a_page(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v/%00", headers=BROWSER)
    assert_page(answer, 404)  # the token cannot be one: no certificate, as for any unknown token
    refused = await client.get("/v/abc", params={"lang": "en\x00"}, headers=BROWSER)
    assert_page(refused, 422, "控制字符")  # the guard's refusal, said on a page


async def test_a_method_a_page_does_not_take_answers_a_page_with_allow(client: httpx.AsyncClient) -> None:
    answer = await client.put("/v", headers=BROWSER)
    assert_page(answer, 405, "此地址不支持该请求方法")
    assert "GET" in answer.headers["allow"]


async def test_a_form_over_the_body_cap_answers_a_page(client: httpx.AsyncClient) -> None:
    form = await client.get("/holder")
    body = {"csrf": csrf_of(form), "id_type": "resident_id", "id_number": "1" * (MAX_BODY_BYTES + 1)}
    answer = await client.post("/holder/sign-in", data=body, headers=BROWSER)
    assert_page(answer, 413, "请求过大", "Request too large", 'href="/holder?lang=zh"')


async def test_too_many_scans_answer_a_page_with_retry_after(app: FastAPI, settings: Settings) -> None:
    async with limited_app(settings, rate_limit_verify="2/minute") as limited, from_address(limited, "1.2.3.4") as http:
        for _ in range(2):
            assert (await http.get("/v/AAAAAAAAAAAAAAAAAAAAAAAA", headers=BROWSER)).status_code == 404
        answer = await http.get("/v/AAAAAAAAAAAAAAAAAAAAAAAA", params={"lang": "en"}, headers=BROWSER)
        assert_page(answer, 429, "Too many requests", "请求过于频繁")
        assert 1 <= int(answer.headers["retry-after"]) <= 60
        # The API beside it, and a client that asks for JSON, still get problem+json.
        api = await http.get("/v1/verify/AAAAAAAAAAAAAAAAAAAAAAAA")
        assert api.status_code == 429
        assert api.headers["content-type"] == "application/problem+json"
        as_json = await http.get("/v/AAAAAAAAAAAAAAAAAAAAAAAA", headers={"Accept": "application/problem+json"})
        assert as_json.status_code == 429
        assert as_json.json()["status"] == 429


async def test_the_api_keeps_answering_problem_json_after_a_page_in_the_same_task(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v/abc/def", headers=BROWSER)).headers["content-type"].startswith("text/html")
    api = await client.get("/v1/nothing-here", headers=BROWSER)
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


async def test_a_browser_refusing_html_gets_json_and_every_refusal_varies_on_accept(client: httpx.AsyncClient) -> None:
    refusing = await client.get("/v/abc/def", headers={"Accept": "text/html;q=0, application/json"})
    assert refusing.status_code == 404
    assert refusing.headers["content-type"] == "application/problem+json"
    for accept in ("text/html;q=0, application/json", BROWSER["Accept"], "application/json", "*/*"):
        answer = await client.get("/v/abc/def", headers={"Accept": accept})
        assert "Accept" in [v.strip() for v in answer.headers["vary"].split(",")], (accept, answer.headers)
    weighted = await client.get("/v/abc/def", headers={"Accept": "application/json;q=0.9, text/html;q=0.5"})
    assert weighted.headers["content-type"].startswith("text/html")


async def test_what_starlette_says_of_a_broken_form_is_said_in_the_pages_language(client: httpx.AsyncClient) -> None:
    multipart = {**BROWSER, "Content-Type": "multipart/form-data"}
    answer = await client.post("/holder/sign-in", content=b"x", headers=multipart)  # no boundary
    assert_page(answer, 400, "请求有误", "multipart 表单缺少分隔符")
    assert answer.text.index("multipart 表单缺少分隔符") < answer.text.index("Missing boundary in multipart.")
    fields = b"".join(b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(1001))
    too_many = {**multipart, "Content-Type": "multipart/form-data; boundary=B"}
    answer = await client.post("/holder/sign-in", content=fields + b"--B--\r\n", headers=too_many)
    assert_page(answer, 400, "表单字段过多：最多 1000 个")
    as_json = await client.post("/oauth/token", content=b"x", headers={**multipart, "Accept-Language": "zh"})
    assert as_json.status_code == 400
    assert as_json.json()["detail"] == "multipart 表单缺少分隔符（boundary）"


def test_a_detail_of_the_framework_not_known_is_said_as_its_status_title() -> None:
    unknown = framework_detail("Invalid host header", 400)
    assert translate(unknown, "en") == "Invalid host header"  # English as it came, for an English reader
    assert translate(unknown, "zh") == "请求有误"  # never raw English on a Chinese page
    assert translate(framework_detail("I'm a teapot", 418), "zh") == "请求失败"
    assert translate(framework_detail("Method Not Allowed", 405), "zh") == "此地址不支持该请求方法"
    ours = _("the body exceeds {max_bytes} bytes", max_bytes=10)
    assert framework_detail(ours, 413) is ours
