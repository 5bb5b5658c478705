"""A control character — above all a NUL, which PostgreSQL can neither store nor compare — is refused wherever a
request can carry one, on both backends and never with a server error: in any path parameter of any route (404, as
an address naming nothing), in any query parameter (422, named), in form fields and the Basic header of the token
endpoint, and in the free text of JSON bodies (422, named)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from api.guards import _ENCODED_CONTROL
from registry.auth.scopes import Role
from registry.schemas import control_character
from tests.checks import assert_problem
from tests.factories import admin_token, bearer, create_client
from tests.integration.test_contract import DOCUMENT
from tests.integration.test_holder_pages import csrf_of, holder_at_home
from tests.integration.test_recognition import partner_token, rule_body, unused_number

_PARAMETER = re.compile(r"\{[^}]+\}")
ENCODED = ("%00", "%0A", "%1B", "%7F", "%C2%85")  # NUL, line feed, escape, delete, next line (C1)


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every operation the OpenAPI document lists."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return [
        (method.upper(), template, operation)
        for template, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every operation with a path parameter."""
    return [(method, template) for method, template, _ in _operations() if _PARAMETER.search(template)]


async def test_every_route_answers_a_control_character_in_a_path_parameter_as_not_found(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    routes = _routes()
    assert len(routes) >= 30  # the sweep covers the API, the pages and the well-known documents
    headers = bearer(await admin_token(app, client))
    for index, (method, template) in enumerate(routes):
        code = ENCODED[index % len(ENCODED)]
        path = _PARAMETER.sub(f"a{code}b", template)
        response = await client.request(method, path, headers=headers, json={})
        assert_problem(response, 404)
        # And the same character plainly at the end, as a client that forgot to trim would send it.
        assert (await client.request(method, _PARAMETER.sub("BJ%00", template), headers=headers)).status_code == 404


def _query_parameters() -> list[tuple[str, str, str]]:
    """(method, path, name) of every query parameter the OpenAPI document lists, any path parameter filled in
    plainly."""
    return [
        (method, _PARAMETER.sub("x", template), parameter["name"])
        for method, template, operation in _operations()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
    ]


async def test_every_query_parameter_with_a_control_character_is_refused_naming_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    parameters = _query_parameters()
    assert {"purpose_text", "holder_name", "cursor", "q"} <= {name for _, _, name in parameters}
    headers = bearer(await admin_token(app, client))
    for method, path, name in parameters:
        response = await client.request(method, f"{path}?{name}=x%00y", headers=headers)
        assert_problem(response, 422, field=name, message="U+0000")
    said = await client.get("/v1/certificates?q=%E5%BC%A0%0A", headers={**headers, "Accept-Language": "zh"})
    assert_problem(said, 422, field="q", message="U+000A")
    assert said.headers["content-language"] == "zh-CN"


async def test_a_query_with_an_encoded_c1_control_is_refused_and_other_encoded_text_is_not(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = bearer(await admin_token(app, client))
    for control in ("%C2%85", "%c2%9f", "%C2%80"):
        assert_problem(await client.get(f"/v1/certificates?q=a{control}", headers=headers), 422, field="q")
    # No-break space, é, 张三, a plus sign, an encoded per cent sign and an encoded "%00" as text: all plain text.
    for text in ("%C2%A0x", "%C3%A9", "%E5%BC%A0%E4%B8%89", "a+b", "%25", "%2500"):
        response = await client.get(f"/v1/certificates?purpose=review&q={text}", headers=headers)
        assert response.status_code == 200, (text, response.text)


def test_the_guard_finds_every_control_character_percent_encoded_and_nothing_else() -> None:
    for code_point in [*range(0x0800), *range(0x2000, 0x2070), 0x3000, 0xFEFF, 0x10FFFF]:
        character = chr(code_point)
        controlled = control_character(character) is not None
        for encoded in (quote(character, safe=""), quote(character, safe="").lower()):
            found = _ENCODED_CONTROL.search(f"q=a{encoded}b".encode()) is not None
            assert found == controlled, (hex(code_point), encoded)


async def test_a_recognition_question_with_a_control_character_in_its_purpose_is_refused_naming_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    partner = bearer(await partner_token(app, client, "TJ"))
    number = unused_number("BJT2026")
    question = {"holder_name": "张三", "purpose": "other", "purpose_text": "签证\u0000办理"}
    asked = await client.get(f"/v1/recognition/{number}", params=question, headers=partner)
    assert_problem(asked, 422, field="purpose_text")
    item = {"number": number, "holder_name": "张三"}
    for text in ("签证\u0000办理", "签证\u202e办理", "签证\u200b办理"):
        body = {"purpose": "other", "purpose_text": text, "items": [item]}
        bulk = await client.post("/v1/recognition/queries", json=body, headers=partner)
        assert_problem(bulk, 422, field="purpose_text")
    # Typed on several lines, as a partner's older node may forward it: one line, not a refusal.
    for text in ("  签证办理  ", "签证\n办理", "签证\r\n\t办理"):
        fine = {"purpose": "other", "purpose_text": text, "items": [item]}
        assert (await client.post("/v1/recognition/queries", json=fine, headers=partner)).status_code == 200


@pytest.mark.parametrize("field", ["conditions_zh", "conditions_en"])
async def test_a_rule_whose_conditions_hold_a_control_character_is_refused_naming_them(
    app: FastAPI, client: httpx.AsyncClient, field: str
) -> None:
    admin = bearer(await admin_token(app, client))
    body = rule_body(catalogue_codes=["ENG-EAI"], levels=["senior"], **{field: "按自动化\u0000专业同级认定"})
    assert_problem(await client.post("/v1/recognition/rules", json=body, headers=admin), 422, field=field)
    listed = rule_body(catalogue_codes=["ENG-EAI"], levels=["senior"], **{field: "1. 同级认定\n2. 提交业绩材料"})
    created = await client.post("/v1/recognition/rules", json=listed, headers=admin)
    assert created.status_code == 201, created.text
    language = "zh" if field == "conditions_zh" else "en"
    assert created.json()["conditions"][language] == "1. 同级认定 2. 提交业绩材料"  # kept, on one line


async def test_a_share_link_whose_purpose_hides_characters_is_refused_in_the_api_and_the_form(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder, home = await holder_at_home(app, client)
    number = holder.certificate["number"]
    for text in ("签证\u0000办理", "签证\u200b办理", "签证\u202e办理"):
        body = {"number": number, "purpose": "other", "purpose_text": text}
        response = await client.post("/v1/holder/share-links", json=body, headers=holder.headers)
        assert_problem(response, 422, field="purpose_text")
    form = {"csrf": csrf_of(home), "number": number, "purpose": "other", "purpose_text": "签证\u0000办理"}
    refused = await client.post("/holder/share-links", data=form)
    assert refused.status_code == 422, refused.text
    assert "purpose_text" in refused.text
    listed = await client.get("/v1/holder/share-links", headers=holder.headers)
    assert listed.json() == []


async def test_a_share_link_form_with_a_superscript_digit_for_its_days_is_refused_not_an_error(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder, home = await holder_at_home(app, client)
    form = {"csrf": csrf_of(home), "number": holder.certificate["number"], "purpose": "hiring", "expires_in_days": "²"}
    refused = await client.post("/holder/share-links", data=form)
    assert refused.status_code == 422, refused.text
    assert "expires_in_days" in refused.text
    form["expires_in_days"] = "٧"  # ARABIC-INDIC DIGIT SEVEN: refused as the API refuses it, not read as seven
    arabic = await client.post("/holder/share-links", data={**form, "csrf": csrf_of(refused)})
    assert arabic.status_code == 422, arabic.text
    assert "expires_in_days" in arabic.text
    form["expires_in_days"] = "7"
    created = await client.post("/holder/share-links", data={**form, "csrf": csrf_of(arabic)})
    assert created.status_code == 200, created.text
    listed = (await client.get("/v1/holder/share-links", headers=holder.headers)).json()
    assert len(listed) == 1


async def test_a_token_request_with_a_control_character_in_the_client_id_is_a_wrong_client(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    client_id, secret = await create_client(app, role=Role.admin)
    for sent in (client_id + "\u0000", "\u0000"):
        form = {"grant_type": "client_credentials", "client_id": sent, "client_secret": secret}
        assert_problem(await client.post("/oauth/token", data=form), 401)
        basic = httpx.BasicAuth(sent, secret)
        assert_problem(await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=basic), 401)
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    assert (await client.post("/oauth/token", data=form)).status_code == 200


async def test_the_public_forms_with_a_control_character_answer_their_pages_not_an_error(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    verify = await client.post("/v", data={"number": "BJ-T-2026-\u0000", "holder_name": "张\u0000三"})
    assert verify.status_code == 422, verify.text
    assert verify.headers["content-type"].startswith("text/html")
    form = await client.get("/holder")
    sign_in = {"csrf": csrf_of(form), "id_type": "resident_id", "id_number": "11\u0000", "claim_code": "\u0000" * 12}
    signed = await client.post("/holder/sign-in", data=sign_in, headers={"Origin": "https://registry.test"})
    assert signed.status_code == 422, signed.text
    assert signed.headers["content-type"].startswith("text/html")
