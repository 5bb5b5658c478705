"""Review 3, hostile inputs from authenticated callers (and the public forms beside them): every refusal is a
problem+json naming its field, never a server error, and none says back a full identity number the caller typed
into the wrong field."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.checks import assert_problem, leaves_no_trace
from tests.factories import admin_token, bearer, issued_certificate, ready_issuer

NUMBER = "11010519491231002X"  # a valid resident ID number (GB 11643) that belongs to nobody


async def test_a_token_request_with_an_identity_number_as_its_grant_type_does_not_say_it_back(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/oauth/token", data={"grant_type": NUMBER, "client_id": "trc_x", "client_secret": "s"}
    )
    body = assert_problem(response, 400, field="grant_type", slug="unsupported-grant-type", secret=NUMBER)
    assert body["error"] == "unsupported_grant_type"
    assert "11**************2X" in body["detail"], body["detail"]


async def test_a_token_request_with_another_grant_type_still_names_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", data={"grant_type": "password"})
    body = assert_problem(response, 400, field="grant_type", slug="unsupported-grant-type")
    assert "'password'" in body["detail"], body["detail"]


@pytest.mark.parametrize("field", ["number", "holder_name"])
async def test_the_verification_form_does_not_write_back_an_identity_number_typed_into_it(
    client: httpx.AsyncClient, field: str
) -> None:
    form = {"number": "BJ-T-2026-0000000", "holder_name": "张三", field: NUMBER}
    response = await client.post("/v", data=form, headers={"Accept": "text/html"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert NUMBER not in response.text
    assert "19491231" not in response.text


async def test_the_verification_form_still_writes_back_a_mistyped_certificate_number(
    client: httpx.AsyncClient,
) -> None:
    typed = "BJ-T-2026-0000000"
    response = await client.post("/v", data={"number": typed, "holder_name": "张三"})
    assert response.status_code == 422, response.text
    assert f'value="{typed}"' in response.text
    assert 'value="张三"' in response.text


async def _live_certificate(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str]:
    token = await ready_issuer(app, client)
    return token, (await issued_certificate(client, token))["number"]


@pytest.mark.parametrize("action", ["suspend", "revoke"])
@pytest.mark.parametrize("reason", [f"持证人 {NUMBER} 本人申请", NUMBER.lower(), "110105 19491231 002X"])
async def test_a_status_change_whose_reason_holds_an_identity_number_is_refused_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, action: str, reason: str
) -> None:
    token, number = await _live_certificate(app, client)
    response = await leaves_no_trace(
        app, client.post(f"/v1/certificates/{number}/{action}", json={"reason": reason}, headers=bearer(token))
    )
    assert_problem(response, 422, field="reason", message="identity number", secret=NUMBER)
    events = await client.get(f"/v1/certificates/{number}/events", headers=bearer(token))
    assert [event["event"] for event in events.json()] == ["issued"]
    assert NUMBER not in events.text


async def test_an_api_client_named_with_an_identity_number_is_refused_naming_name(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    body = {"role": "partner", "name": f"天津人社 {NUMBER}", "region": "TJ"}
    response = await leaves_no_trace(app, client.post("/v1/clients", json=body, headers=bearer(admin)))
    assert_problem(response, 422, field="name", message="identity number", secret=NUMBER)
    audit = await client.get("/v1/audit", params={"limit": 200}, headers=bearer(admin))
    assert audit.status_code == 200, audit.text
    assert NUMBER not in audit.text


async def test_a_reason_with_a_long_number_that_is_no_identity_number_is_taken(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token, number = await _live_certificate(app, client)
    reason = "纪检函 202612050000000001 号"  # 18 digits, but no region, birth date or check character of a person
    response = await client.post(f"/v1/certificates/{number}/suspend", json={"reason": reason}, headers=bearer(token))
    assert response.status_code == 200, response.text


async def test_retiring_a_rule_for_a_reason_holding_an_identity_number_is_refused_in_chinese(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = bearer(await admin_token(app, client))
    rule_id = (await client.get("/v1/recognition/rules", headers=admin)).json()["data"][0]["id"]
    request = client.post(
        f"/v1/recognition/rules/{rule_id}/retire",
        json={"reason": f"申请人 {NUMBER} 投诉"},
        headers={**admin, "Accept-Language": "zh-CN"},
    )
    response = await leaves_no_trace(app, request)
    assert_problem(response, 422, field="reason", message="不得包含身份证件号码", secret=NUMBER)
