"""When the node of a certificate's region cannot be reached, no answer claims more than is known.

The Tianjin node runs in-process; its Beijing peer is down (every connection refused). Then nobody judged the
certificate: the answer says ``unknown`` with the peer's failure as the reason, names the node that actually answered
(Tianjin, this one) — never Beijing, which said nothing — and a recognition answer is signed by Tianjin over exactly
that, so no agency files a signed judgement in Beijing's name (``decision`` stays ``not_recognised``, the API having no
"unknown" value, with ``decision_reason`` saying why: ``peer_unreachable``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from registry.auth.scopes import Role
from registry.config import Settings
from registry.federation.peers import Federation
from tests.factories import admin_token, bearer, create_client, token_for
from tests.integration.federation_support import HOLDER, Tianjin, tianjin_with_fake_beijing


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    """Tianjin, with its Beijing peer down."""
    async with tianjin_with_fake_beijing(settings) as node:
        app = node.app
        await app.state.federation.close()
        app.state.federation = Federation(
            app.state.context, app.state.sessions, transport=httpx.MockTransport(_refused)
        )
        yield node


async def _partner(tianjin: Tianjin) -> dict[str, str]:
    client = await create_client(tianjin.app, role=Role.partner, region="TJ")
    return bearer(await token_for(tianjin.http, *client))


async def _assert_unjudged(tianjin: Tianjin, answer: dict[str, Any], number: str) -> None:
    assert (answer["number"], answer["to_region"], answer["certificate"]) == (number, "TJ", None)
    assert (answer["result"], answer["reason"]) == ("unknown", "peer_unreachable")
    assert (answer["decision"], answer["decision_reason"]) == ("not_recognised", "peer_unreachable")
    assert answer["answered_by"] == "TJ", "Beijing answered nothing: the node that answered is this one"
    assert (answer["rule_id"], answer["equivalent"], answer["basis"], answer["bridges"]) == (None, None, [], [])
    # Signed by Tianjin's key, over exactly that: Tianjin could not tell (not a judgement in Beijing's name).
    signature = answer.pop("signature")
    jwks = (await tianjin.http.get("/.well-known/jwks.json")).json()
    key = next(k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(signature)["kid"])
    claims = jwt.decode(signature, jwt.PyJWK(key), algorithms=["EdDSA"], options={"verify_aud": False})
    assert (claims["region"], claims["answer"]) == ("TJ", answer)


async def test_a_single_recognition_question_about_a_down_peers_certificate_claims_no_judgement(
    tianjin: Tianjin,
) -> None:
    number = tianjin.peer.number
    params = {"holder_name": HOLDER, "purpose": "hiring"}

    response = await tianjin.http.get(f"/v1/recognition/{number}", params=params, headers=await _partner(tianjin))

    assert response.status_code == 200, response.text
    await _assert_unjudged(tianjin, response.json(), number)


async def test_a_bulk_recognition_question_about_a_down_peers_certificates_claims_no_judgement(
    tianjin: Tianjin,
) -> None:
    number = tianjin.peer.number
    body = {"purpose": "hiring", "items": [{"number": number, "holder_name": HOLDER}] * 2}

    response = await tianjin.http.post("/v1/recognition/queries", json=body, headers=await _partner(tianjin))

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(result["index"], result["status"], result["problem"]) for result in results] == [
        (0, 200, None),
        (1, 200, None),
    ]
    for result in results:
        await _assert_unjudged(tianjin, result["answer"], number)
    # The audit record says the same: this node answered, no node judged.
    admin = bearer(await admin_token(tianjin.app, tianjin.http))
    audit = await tianjin.http.get("/v1/audit", params={"action": "recognition.query"}, headers=admin)
    assert audit.status_code == 200, audit.text
    details = [record["details"] for record in audit.json()["data"]]
    assert [(d["result"], d["answered_by"]) for d in details] == [("unknown", "TJ"), ("unknown", "TJ")]


async def test_a_verification_of_a_down_peers_certificate_names_the_node_that_answered(tianjin: Tianjin) -> None:
    question = {"number": tianjin.peer.number, "holder_name": HOLDER}

    response = await tianjin.http.post("/v1/verify", json=question)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["result"], answer["reason"], answer["certificate"]) == ("unknown", "peer_unreachable", None)
    assert answer["signature_valid"] is False
    assert answer["answered_by"] == "TJ"


async def test_the_verification_page_for_a_down_peers_certificate_does_not_say_the_peer_answered(
    tianjin: Tianjin,
) -> None:
    question = {"number": tianjin.peer.number, "holder_name": HOLDER}

    zh = await tianjin.http.post("/v", data=question)
    en = await tianjin.http.post("/v", data=question, params={"lang": "en"})

    assert zh.status_code == en.status_code == 200, zh.text
    assert "查验结果来自 天津市人才证书登记系统" in zh.text
    assert "北京市人才证书登记系统" not in zh.text
    assert "Answered by the Tianjin registry" in en.text
    assert "the Beijing registry" not in en.text
    assert "无法连接证书所属地区的登记系统" in zh.text  # the reason is said
