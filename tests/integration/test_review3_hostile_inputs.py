"""Review 3, hostile inputs from authenticated callers (and the public forms beside them): every refusal is a
problem+json naming its field, never a server error, and none says back a full identity number the caller typed
into the wrong field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.config import Settings
from tests.checks import assert_problem, leaves_no_trace
from tests.factories import admin_token, bearer, create_client, issued_certificate, ready_issuer, token_for
from tests.integration.federation_support import (
    HOLDER,
    Tianjin,
    fake_certificate,
    fake_recognition,
    fake_verification,
    tianjin_with_fake_beijing,
)

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


# Codes a body or the bureau writes into a reason, as they are made: a date and a serial (202612190001234528: its
# digits 7-14 read as 1900-01-23 and its last as the check character of the 17 before it), a 文号, a year and a
# serial. None begins with a province, so none is a resident's number.
NO_IDENTITIES = [
    "复核批次 202612190001234528 号",
    "档案号20261231001123404X",
    "津人社备〔2026〕12号",
    "2026 1219 0001 2345 28",
]


@pytest.mark.parametrize("reason", NO_IDENTITIES)
async def test_a_reason_quoting_a_date_led_order_or_file_number_is_taken(
    app: FastAPI, client: httpx.AsyncClient, reason: str
) -> None:
    token, number = await _live_certificate(app, client)
    response = await client.post(f"/v1/certificates/{number}/suspend", json={"reason": reason}, headers=bearer(token))
    assert response.status_code == 200, response.text
    events = await client.get(f"/v1/certificates/{number}/events", headers=bearer(token))
    assert events.json()[-1]["reason"] == reason, events.text


FOREIGN_RESIDENT = "911156198001010016"  # a 2023 permanent residence card's shape: 9, a province, a birth date
TYPED_BESIDE_LETTERS = {
    "after letters": (f"sfz{NUMBER}", NUMBER),
    "between letters, grouped": ("ID110105-19491231-002Xabc", NUMBER),
    "a permanent residence card": (f"外籍持证人 {FOREIGN_RESIDENT}", FOREIGN_RESIDENT),
}


@pytest.mark.parametrize(("reason", "secret"), TYPED_BESIDE_LETTERS.values(), ids=TYPED_BESIDE_LETTERS.keys())
async def test_an_identity_number_typed_against_letters_is_refused_too(
    app: FastAPI, client: httpx.AsyncClient, reason: str, secret: str
) -> None:
    token, number = await _live_certificate(app, client)
    response = await leaves_no_trace(
        app, client.post(f"/v1/certificates/{number}/revoke", json={"reason": reason}, headers=bearer(token))
    )
    assert_problem(response, 422, field="reason", message="identity number", secret=secret)


# --- a peer's answer holding an identity number in its text --------------------------------------------------------


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    async with tianjin_with_fake_beijing(settings) as node:
        yield node


PEER_TEXT = {
    "the body's name": {"issuer_name": f"北京市评审委员会 {NUMBER}"},
    "the series, grouped": {"series_zh": "工程 110105 19491231 002X"},
    "the English entry name, full-width": {"name_en": "AI \uff11\uff11\uff10\uff11\uff10\uff15" + NUMBER[6:]},
}


@pytest.mark.parametrize("change", PEER_TEXT.values(), ids=PEER_TEXT.keys())
async def test_a_peer_verification_holding_an_identity_number_is_unknown_and_never_relays_it(
    tianjin: Tianjin, change: dict[str, Any]
) -> None:
    def answer(question: dict[str, Any]) -> Any:
        verification = fake_verification(question["number"])
        return {"status": 200, "body": {**verification, "certificate": {**verification["certificate"], **change}}}

    tianjin.peer.verify_answer = answer

    response = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": HOLDER})

    assert response.status_code == 200, response.text
    said = response.json()
    assert (said["result"], said["reason"], said["answered_by"]) == ("unknown", "peer_answer_not_trusted", "TJ")
    assert said["certificate"] is None
    assert "19491231" not in response.text
    assert "１１０１０５" not in response.text


async def test_a_peer_recognition_whose_basis_holds_an_identity_number_is_not_passed_on(tianjin: Tianjin) -> None:
    def answer(question: dict[str, Any]) -> Any:
        return [
            {
                "index": index,
                "status": 200,
                "answer": {
                    **fake_recognition(item["number"], question["to_region"]),
                    "certificate": fake_certificate(item["number"]),
                    "basis": [{"code": f"京人社函〔2026〕{NUMBER}号", "title": "互认办法"}],
                    "conditions": {"zh": f"申请人 {NUMBER}", "en": "Filed"},
                },
            }
            for index, item in enumerate(question["items"])
        ]

    tianjin.peer.recognition_answer = answer
    client = await create_client(tianjin.app, role=Role.partner, region="TJ")
    headers = bearer(await token_for(tianjin.http, *client))

    response = await tianjin.http.get(
        f"/v1/recognition/{tianjin.peer.number}", params={"holder_name": HOLDER, "purpose": "hiring"}, headers=headers
    )

    assert response.status_code == 200, response.text
    said = response.json()
    assert (said["result"], said["decision"]) == ("unknown", "not_recognised")
    assert said["decision_reason"] == "peer_answer_not_trusted"
    assert (said["certificate"], said["basis"], said["conditions"]) == (None, [], None)
    assert "19491231" not in response.text
