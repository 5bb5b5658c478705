"""The holder's web pages: sign in with a form, session and CSRF cookies, forms refused from elsewhere."""

from __future__ import annotations

import html
import re
import uuid
from datetime import datetime, timedelta

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from api.app import create_app, dispose
from registry.config import Environment, Settings
from registry.holder_access.sign_in import MAX_FAILURES
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer, issued_certificate, resident_id
from tests.integration.holder_support import HOLDER_NAME, SignedInHolder, signed_in_holder
from tests.integration.test_holder_idp import _id_token, _provider

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_PILL = re.compile(r'<span class="pill ([a-z_]+)">([^<]+)</span>')


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def set_cookies(response: httpx.Response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


async def _sign_in_form(client: httpx.AsyncClient, holder: SignedInHolder) -> dict[str, str]:
    """The sign-in form as the page hands it out, filled with the holder's document but no claim code."""
    form = await client.get("/holder")
    return {"csrf": csrf_of(form), "id_type": "resident_id", "id_number": holder.id_number}


async def _sign_in(client: httpx.AsyncClient, holder: SignedInHolder) -> httpx.Response:
    form = await client.get("/holder")
    assert form.status_code == 200
    body = {
        "csrf": csrf_of(form),
        "id_type": "resident_id",
        "id_number": holder.id_number,
        "claim_code": holder.certificate["claim_code"],
    }
    return await client.post("/holder/sign-in", data=body, headers={"Origin": "https://registry.test"})


async def test_holder_signs_in_with_a_form_and_gets_strict_short_lived_cookies(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    form = await client.get("/holder")
    assert "持证人登录" in form.text
    assert "Holder sign-in" in form.text
    assert "default-src 'none'" in form.headers["content-security-policy"]
    assert "<script" not in form.text
    csrf_cookie = set_cookies(form)["tr_holder_csrf"].lower()
    assert all(part in csrf_cookie for part in ("httponly", "secure", "samesite=strict", "path=/holder"))

    signed_in = await _sign_in(client, holder)
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/holder?lang=zh"
    session_cookie = set_cookies(signed_in)["tr_holder"].lower()
    assert all(part in session_cookie for part in ("httponly", "secure", "samesite=strict", "path=/holder"))
    assert "max-age=900" in session_cookie
    assert "tr_holder_csrf" in set_cookies(signed_in)  # renewed at sign-in

    home = await client.get("/holder")
    assert home.status_code == 200
    assert holder.certificate["number_display"] in home.text
    assert "有效" in home.text
    assert "由缓存（如内容分发网络）直接应答的查验不经过本系统，不计入记录" in home.text
    assert holder.id_number not in home.text
    english = await client.get("/holder", params={"lang": "en"})
    assert "Visits answered by a cache (such as a CDN) without reaching the registry are not counted" in english.text


async def test_signed_in_holder_downloads_the_signed_credential_with_the_cookie(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    number = holder.certificate["number"]
    assert (await client.get(f"/holder/certificates/{number}/credential.jwt")).status_code == 401
    await _sign_in(client, holder)
    credential = await client.get(f"/holder/certificates/{number}/credential.jwt")
    assert credential.status_code == 200
    assert credential.headers["content-type"].startswith("application/vc+jwt")
    assert credential.headers["content-disposition"] == f'attachment; filename="{number}.jwt"'
    assert credential.text.count(".") == 2
    by_api = await client.get(f"/v1/certificates/{number}/credential", headers=holder.headers)
    assert by_api.status_code == 200
    by_body = await client.get(f"/v1/certificates/{number}/credential", headers=bearer(holder.issuer))
    assert by_body.status_code == 200
    # Each download is on record, as a PDF's is: the credential carries the salted hash of the identity number.
    admin = await admin_token(app, client)
    audit = await client.get("/v1/audit", params={"action": "certificate.credential_downloaded"}, headers=bearer(admin))
    records = audit.json()["data"]
    assert [r["object_id"] for r in records] == [number] * 3, records
    assert records[0]["actor"] == records[1]["actor"] != records[2]["actor"]
    assert all(r["purpose"] == "signed credential download" for r in records)


async def test_signed_in_holder_downloads_the_pdf_with_the_cookie(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    number = holder.certificate["number"]
    assert (await client.get(f"/holder/certificates/{number}.pdf")).status_code == 401
    await _sign_in(client, holder)
    pdf = await client.get(f"/holder/certificates/{number}.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")


async def holder_at_home(app: FastAPI, client: httpx.AsyncClient) -> tuple[SignedInHolder, httpx.Response]:
    """A holder signed in through the form, and their dashboard (its forms carry the CSRF token)."""
    holder = await signed_in_holder(app, client)
    await _sign_in(client, holder)
    return holder, await client.get("/holder")


async def test_holder_creates_and_withdraws_a_share_link_with_forms(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder, home = await holder_at_home(app, client)
    body = {"csrf": csrf_of(home), "number": holder.certificate["number"], "purpose": "hiring", "expires_in_days": "7"}
    created = await client.post("/holder/share-links", data=body)
    assert created.status_code == 200, created.text
    url = re.search(r'<code id="new-link">([^<]+)</code>', created.text)
    assert url is not None
    path = httpx.URL(url.group(1)).path
    shared = await client.get(path)
    assert "持证人为求职而分享" in shared.text
    link_id = (await client.get("/v1/holder/share-links", headers=holder.headers)).json()[0]["id"]
    withdrawn = await client.post(f"/holder/share-links/{link_id}/withdraw", data={"csrf": csrf_of(created)})
    assert withdrawn.status_code == 303
    assert (await client.get(path)).status_code == 410
    await app.state.visits.flush()
    after = await client.get("/holder")
    assert "已撤回" in after.text
    visits = re.findall(r'<li class="visit">.*?</li>', after.text, flags=re.S)
    assert len(visits) == 1
    assert "分享链接" in visits[0]
    assert "求职" in visits[0]


async def test_a_form_without_its_csrf_token_or_from_another_site_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    form = await client.get("/holder")
    body = {"id_type": "resident_id", "id_number": holder.id_number, "claim_code": holder.certificate["claim_code"]}
    no_token = await client.post("/holder/sign-in", data=body)
    assert no_token.status_code == 403
    assert "tr_holder" not in set_cookies(no_token)
    wrong_token = await client.post("/holder/sign-in", data={**body, "csrf": "x" * 32})
    assert wrong_token.status_code == 403
    cross_site = await client.post(
        "/holder/sign-in", data={**body, "csrf": csrf_of(form)}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    assert "请求无法确认" in cross_site.text
    opaque = await client.post(  # a browser told to send no referrer says Origin: null: nothing to vouch for it
        "/holder/sign-in", data={**body, "csrf": csrf_of(form)}, headers={"Origin": "null"}
    )
    assert opaque.status_code == 403
    cross_referer = await client.post(
        "/holder/sign-in", data={**body, "csrf": csrf_of(form)}, headers={"Referer": "https://evil.example/page"}
    )
    assert cross_referer.status_code == 403

    await _sign_in(client, holder)
    home = await client.get("/holder")
    share = {"number": holder.certificate["number"], "purpose": "hiring"}
    assert (await client.post("/holder/share-links", data=share)).status_code == 403
    refused = await client.post(
        "/holder/share-links", data={**share, "csrf": csrf_of(home)}, headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert (await client.get("/v1/holder/share-links", headers=holder.headers)).json() == []
    assert (await client.post("/holder/sign-out", data={})).status_code == 403


async def test_a_wrong_claim_code_on_the_form_says_so_without_signing_in(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    body = await _sign_in_form(client, holder)
    wrong = await client.post("/holder/sign-in", data={**body, "claim_code": "AAAA-BBBB-CCCC"})
    assert wrong.status_code == 401
    assert "证件号码或领取码不正确" in wrong.text
    assert "tr_holder" not in set_cookies(wrong)
    malformed = await client.post("/holder/sign-in", data={**body, "id_number": "123", "claim_code": "AAAA-BBBB-CCCC"})
    assert malformed.status_code == 422
    assert HOLDER_NAME not in malformed.text


async def test_cookies_are_not_marked_secure_on_a_plain_http_development_address(settings: Settings) -> None:
    app = create_app(
        settings.model_copy(update={"env": Environment.development, "public_base_url": "http://127.0.0.1:8123"})
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8123") as http:
            cookie = set_cookies(await http.get("/holder"))["tr_holder_csrf"].lower()
    finally:
        await dispose(app)
    assert "secure" not in cookie
    assert "samesite=strict" in cookie


async def test_holder_signs_in_on_the_page_with_the_identity_providers_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = Ed25519PrivateKey.generate()
    holder = await signed_in_holder(app, client)
    assert "统一身份认证" not in (await client.get("/holder")).text  # not configured: no such form
    _provider(app, key)
    form = await client.get("/holder")
    assert "使用统一身份认证登录" in form.text
    wrong = await client.post(
        "/holder/sign-in/external", data={"csrf": csrf_of(form), "id_token": _id_token(key, resident_id())}
    )
    assert wrong.status_code == 401
    assert "tr_holder" not in set_cookies(wrong)
    signed_in = await client.post(
        "/holder/sign-in/external", data={"csrf": csrf_of(form), "id_token": _id_token(key, holder.id_number)}
    )
    assert signed_in.status_code == 303, signed_in.text
    assert "tr_holder" in set_cookies(signed_in)
    assert holder.certificate["number_display"] in (await client.get("/holder")).text


async def test_the_dashboard_shows_each_certificate_as_a_verifier_would_see_it_today(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    registry_clock.freeze()
    holder = await signed_in_holder(app, client)
    person = {"name": HOLDER_NAME, "id_type": "resident_id", "id_number": holder.id_number}
    ends = registry_clock.today() + timedelta(days=1)
    lapsing = await issued_certificate(
        client, holder.issuer, holder=person, level="senior", valid_until=ends.isoformat()
    )
    revoked = await issued_certificate(client, holder.issuer, holder=person, level="intermediate")
    revocation = {"reason": "证书信息有误", "reason_code": "issued_in_error"}
    revoking = await client.post(
        f"/v1/certificates/{revoked['number']}/revoke", json=revocation, headers=bearer(holder.issuer)
    )
    assert revoking.status_code == 200, revoking.text

    registry_clock.advance(timedelta(days=2))  # the lapsing one is past its valid_until; its stored status is active
    await _sign_in(client, holder)
    pills = {
        lang: dict(_PILL.findall((await client.get("/holder", params={"lang": lang})).text)) for lang in ("zh", "en")
    }
    assert pills["zh"] == {"valid": "有效", "expired": "已过期", "revoked": "已撤销"}
    assert pills["en"] == {"valid": "Valid", "expired": "Expired", "revoked": "Revoked"}
    assert lapsing["status"] == "active"


_SWITCH = re.compile(r'<a href="([^"]+)" lang="en">English</a>')


def switch_of(page: httpx.Response) -> str:
    found = _SWITCH.search(page.text)
    assert found is not None, page.text
    return found.group(1)


async def test_the_language_switch_on_a_page_answering_a_form_opens_a_page(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    body = await _sign_in_form(client, holder)
    failed = await client.post("/holder/sign-in", data={**body, "claim_code": "AAAA-BBBB-CCCC"})
    refused = await client.post("/holder/sign-in", data={**body, "csrf": "x" * 32})
    await _sign_in(client, holder)
    home = await client.get("/holder")
    share = {"csrf": csrf_of(home), "number": holder.certificate["number"], "purpose": "hiring"}
    created = await client.post("/holder/share-links", data=share)
    for page, status in ((failed, 401), (refused, 403), (created, 200)):
        assert page.status_code == status, page.text
        assert switch_of(page) == "/holder?lang=en"
        assert (await client.get(switch_of(page))).status_code == 200
    assert switch_of(home) == "/holder?lang=en"


def _unescaped(page: httpx.Response) -> str:
    return html.unescape(page.text)


async def test_a_malformed_sign_in_form_says_what_is_wrong_as_the_api_does(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    form = await client.get("/holder")
    good = {"id_type": "resident_id", "id_number": holder.id_number, "claim_code": holder.certificate["claim_code"]}
    wrong_check = holder.id_number[:-1] + ("1" if holder.id_number[-1] != "1" else "2")
    for bad in ({"claim_code": "AAAA"}, {"id_type": "library_card"}, {"id_number": wrong_check}):
        api = await client.post("/v1/holder/sessions", json={**good, **bad}, headers={"Accept-Language": "zh"})
        assert api.status_code == 422, api.text
        page = await client.post("/holder/sign-in", data={"csrf": csrf_of(form), **good, **bad})
        assert page.status_code == 422
        assert page.headers["content-type"].startswith("text/html")
        assert api.json()["detail"] in _unescaped(page), (bad, api.json()["detail"])
        assert "tr_holder" not in set_cookies(page)


async def test_the_share_link_forms_days_are_judged_as_the_api_judges_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder, home = await holder_at_home(app, client)
    share = {"number": holder.certificate["number"], "purpose": "hiring"}
    for days in ("+5", "３", "٣", "seven", "5.0", "-3"):
        api = await client.post(
            "/v1/holder/share-links",
            json={**share, "expires_in_days": days},
            headers={**holder.headers, "Accept-Language": "zh"},
        )
        page = await client.post("/holder/share-links", data={"csrf": csrf_of(home), **share, "expires_in_days": days})
        assert (api.status_code == 201) == (page.status_code == 200), (days, api.text, page.status_code)
        if api.status_code != 201:
            assert page.status_code == 422
            assert api.json()["errors"][0]["message"] in _unescaped(page), (days, api.text)
    for days, lasts in (("", 30), (" 7 ", 7)):
        page = await client.post("/holder/share-links", data={"csrf": csrf_of(home), **share, "expires_in_days": days})
        assert page.status_code == 200, (days, page.text)
        newest = (await client.get("/v1/holder/share-links", headers=holder.headers)).json()[0]  # newest first
        lasted = datetime.fromisoformat(newest["expires_at"]) - datetime.fromisoformat(newest["created_at"])
        assert lasted == timedelta(days=lasts)


async def test_an_unknown_page_language_falls_back_instead_of_an_error(app: FastAPI, client: httpx.AsyncClient) -> None:
    for lang, words in (
        ("fr", "持证人登录"),
        ("EN", "Holder sign-in"),
        ("en-US", "Holder sign-in"),
        ("zh-CN", "持证人登录"),
    ):
        page = await client.get("/holder", params={"lang": lang})
        assert page.status_code == 200, (lang, page.text)
        assert words in page.text
    holder, home = await holder_at_home(app, client)
    share = {"csrf": csrf_of(home), "number": holder.certificate["number"], "purpose": "hiring"}
    created = await client.post("/holder/share-links", data=share, params={"lang": "En"})
    assert created.status_code == 200
    assert "New link" in created.text
    url = re.search(r'<code id="new-link">([^<]+)</code>', created.text)
    assert url is not None
    shared = await client.get(httpx.URL(url.group(1)).path, params={"lang": "fr"})
    assert shared.status_code == 200
    assert "持证人为求职而分享" in shared.text


async def test_form_values_too_long_for_the_form_get_a_page_not_json(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    form = await client.get("/holder", params={"lang": "en"})
    sign_in_body = {"csrf": csrf_of(form), "id_type": "resident_id", "claim_code": holder.certificate["claim_code"]}
    too_long_id = await client.post("/holder/sign-in?lang=en", data={**sign_in_body, "id_number": "1" * 41})
    assert too_long_id.status_code == 422
    assert too_long_id.headers["content-type"].startswith("text/html")
    assert "Please correct the form: id_number: at most 32 characters" in too_long_id.text
    assert "Holder sign-in" in too_long_id.text
    _provider(app, Ed25519PrivateKey.generate())
    too_long_token = await client.post("/holder/sign-in/external", data={"csrf": csrf_of(form), "id_token": "x" * 8193})
    assert too_long_token.status_code == 422
    assert "表单填写有误：id_token：最多 8192 个字符" in too_long_token.text

    await _sign_in(client, holder)
    home = await client.get("/holder")
    share = {"csrf": csrf_of(home), "number": holder.certificate["number"], "purpose": "other"}
    for extra, said in (
        ({"purpose_text": "为" * 201}, "purpose_text：最多 200 个字符"),
        ({"purpose_text": "入职", "expires_in_days": "99999"}, "expires_in_days：不能大于 365"),
    ):
        page = await client.post("/holder/share-links", data={**share, **extra})
        assert page.status_code == 422, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert f"表单填写有误：{said}" in page.text
    assert (await client.get("/v1/holder/share-links", headers=holder.headers)).json() == []


async def test_withdrawing_a_link_that_is_not_yours_answers_a_page(app: FastAPI, client: httpx.AsyncClient) -> None:
    _holder, home = await holder_at_home(app, client)
    for link_id in (str(uuid.uuid4()), "nope"):
        page = await client.post(f"/holder/share-links/{link_id}/withdraw", data={"csrf": csrf_of(home)})
        assert page.status_code == 404, (link_id, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert "您没有这个分享链接" in page.text
        assert 'href="/holder?lang=zh"' in page.text


async def test_a_locked_out_sign_in_page_says_when_to_try_again(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    body = await _sign_in_form(client, holder)
    for _attempt in range(MAX_FAILURES):
        assert (await client.post("/holder/sign-in", data={**body, "claim_code": "AAAA-BBBB-CCCC"})).status_code == 401
    locked = await client.post("/holder/sign-in", data={**body, "claim_code": holder.certificate["claim_code"]})
    assert locked.status_code == 429
    assert "尝试次数过多" in locked.text
    assert 800 < int(locked.headers["Retry-After"]) <= 900


async def test_english_pages_use_english_punctuation(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder, home = await holder_at_home(app, client)
    share = {"csrf": csrf_of(home), "number": holder.certificate["number"], "purpose": "other", "purpose_text": "入职"}
    created = await client.post("/holder/share-links", data=share)
    url = re.search(r'<code id="new-link">([^<]+)</code>', created.text)
    assert url is not None
    assert (await client.get(httpx.URL(url.group(1)).path)).status_code == 200
    await app.state.visits.flush()
    pages = {lang: (await client.get("/holder", params={"lang": lang})).text for lang in ("zh", "en")}
    visits = {lang: re.findall(r'<span class="how">(.*?)</span>', page, flags=re.S) for lang, page in pages.items()}
    assert visits == {"zh": ["分享链接 · 用途：其他（入职）"], "en": ["Share link · Purpose: another purpose (入职)"]}
    links = {lang: re.findall(r'<div class="title">([^<]*)<span', page) for lang, page in pages.items()}
    assert links["zh"][-1].strip() == "其他（入职）"
    assert links["en"][-1].strip() == "another purpose (入职)"
