"""A peer's answer is used only when it checks out, and only configured peers may ask.

The Tianjin node runs in-process; its Beijing peer is a fake (an ``httpx.MockTransport`` behind the federation client)
that publishes a JWKS and answers questions with statements it signs, honestly or not. Whatever the fake gets wrong —
a statement altered after signing, a key it never published, an evaluation body's key instead of the node's, an answer
to another question — Tianjin answers ``unknown`` (reason ``peer_answer_not_trusted``), never ``valid``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.certificates import numbering
from registry.config import Region, Settings
from registry.federation import protocol
from tests.checks import assert_problem
from tests.factories import admin_token, bearer, issuer_body
from tests.integration.federation_support import HOLDER, NODE_URL, Tianjin, tianjin_with_fake_beijing

NOT_OBJECTS = ("[]", "null", '"statement"', "42")  # JSON, but not the object a peer answers with


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    """The Tianjin node in-process, with the fake Beijing node as its only peer (no answer cache)."""
    async with tianjin_with_fake_beijing(settings) as node:
        yield node


async def test_an_honest_peer_answer_is_used_and_the_question_carries_a_service_token(tianjin: Tianjin) -> None:
    question = {"number": tianjin.peer.number, "holder_name": HOLDER}

    response = await tianjin.http.post("/v1/verify", json=question)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["result"], answer["reason"], answer["answered_by"]) == ("revoked", "fraud", "BJ")
    assert answer["certificate"]["number"] == tianjin.peer.number
    # The fake checks Tianjin's service token the way a real peer does: against Tianjin's published keys.
    (token,) = tianjin.peer.tokens
    keys = jwt.PyJWKSet.from_dict((await tianjin.http.get("/.well-known/jwks.json")).json())
    header = jwt.get_unverified_header(token)
    assert header["typ"] == protocol.SERVICE_TOKEN_TYPE
    claims = jwt.decode(token, keys[header["kid"]], algorithms=["EdDSA"], audience=protocol.node_audience("BJ"))
    assert (claims["iss"], claims["sub"], claims["region"]) == (NODE_URL, "node:TJ", "TJ")
    assert claims["exp"] - claims["iat"] <= protocol.SERVICE_TOKEN_TTL.total_seconds()


@pytest.mark.parametrize(
    "mode",
    ["altered", "stranger_key", "stranger_under_published_kid", "evaluation_body_key", "other_question"],
)
async def test_a_peer_answer_that_does_not_check_out_is_refused(tianjin: Tianjin, mode: str) -> None:
    tianjin.peer.mode = mode
    question = {"number": tianjin.peer.number, "holder_name": HOLDER}

    response = await tianjin.http.post("/v1/verify", json=question)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["result"], answer["reason"], answer["answered_by"]) == ("unknown", "peer_answer_not_trusted", "TJ")
    assert answer["certificate"] is None
    assert answer["signature_valid"] is False
    page = await tianjin.http.post("/v", data=question)
    assert "证书所属地区登记系统的应答未通过校验" in page.text


@pytest.mark.parametrize("mode", NOT_OBJECTS)
async def test_a_peer_answering_json_that_is_not_an_object_is_not_trusted_and_never_an_error(
    tianjin: Tianjin, mode: str
) -> None:
    tianjin.peer.mode = mode
    question = {"number": tianjin.peer.number, "holder_name": HOLDER}
    for _attempt in range(2):
        response = await tianjin.http.post("/v1/verify", json=question)
        assert response.status_code == 200, response.text
        assert (response.json()["result"], response.json()["reason"]) == ("unknown", "peer_answer_not_trusted")


async def test_a_trial_call_to_a_recovering_peer_that_its_asker_abandons_does_not_shut_the_peer_out(
    tianjin: Tianjin,
) -> None:
    breaker = tianjin.app.state.federation.peers[Region.BJ].breaker
    for _failure in range(breaker.threshold):
        breaker.failed()
    breaker.reset_after = 0.0  # open a moment ago, and due a trial call now
    tianjin.peer.mode = "hanging"
    question = {"number": tianjin.peer.number, "holder_name": HOLDER}
    asking = asyncio.create_task(tianjin.http.post("/v1/verify", json=question))
    await asyncio.wait_for(tianjin.peer.asked.wait(), timeout=5)
    asking.cancel()  # the scanner closed the page while its question was the trial
    with pytest.raises(asyncio.CancelledError):
        await asking

    tianjin.peer.mode = "honest"
    response = await tianjin.http.post("/v1/verify", json=question)
    assert response.status_code == 200, response.text
    assert (response.json()["result"], response.json()["answered_by"]) == ("revoked", "BJ")
    assert breaker.state.value == "closed"


def _service_token(key: Ed25519PrivateKey, kid: str, region: str) -> str:
    now = int(time.time())
    claims = {
        "iss": f"http://{region.lower()}-node.test",
        "sub": f"node:{region}",
        "region": region,
        "aud": protocol.node_audience("TJ"),
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": protocol.SERVICE_TOKEN_TYPE})


async def test_only_a_configured_peer_signing_with_its_published_node_key_may_ask(tianjin: Tianjin) -> None:
    fake = tianjin.peer
    question = {"number": numbering.new_number(region="TJ", cert_type="title", year=2026), "holder_name": HOLDER}
    question["nonce"] = "n" * 16
    cases = {
        "peer's node key": (_service_token(fake.node_key, "bj-node", "BJ"), 200),
        "Hebei, not a peer of this node": (_service_token(Ed25519PrivateKey.generate(), "he-node", "HE"), 401),
        "a key the peer never published": (_service_token(fake.stranger, "bj-node-2", "BJ"), 401),
        "the peer's evaluation body's key": (_service_token(fake.body_key, "bj-body", "BJ"), 401),
    }
    for case, (token, status) in cases.items():
        response = await tianjin.http.post("/v1/federation/verify", json=question, headers=bearer(token))
        assert response.status_code == status, f"{case}: {response.text}"
    answered = await tianjin.http.post(
        "/v1/federation/verify", json=question, headers=bearer(cases["peer's node key"][0])
    )
    statement = jwt.decode(answered.json()["statement"], options={"verify_signature": False})
    assert statement["answer"] == {"status": 404}  # a Tianjin number Tianjin does not hold: answered, not forwarded


async def test_a_body_of_a_region_with_its_own_node_is_registered_there_not_here(tianjin: Tianjin) -> None:
    """Before, Tianjin's node registered a Beijing body (Beijing has its own node): the body's numbers carry BJ, so
    every node forwarded a question by number to Beijing's node, which did not hold them — checkable by QR code on
    Tianjin's node only, by number nowhere."""
    admin = await admin_token(tianjin.app, tianjin.http)
    refused = await tianjin.http.post("/v1/issuers", json=issuer_body(region="BJ"), headers=bearer(admin))
    problem = assert_problem(refused, 422, field="region", message="has its own node")
    assert "BJ" in problem["detail"]
    for region, code in (("TJ", "TJ-AI-COMMITTEE"), ("HE", "HE-AI-COMMITTEE")):  # its own, and one with no node
        body = issuer_body(code, region=region)
        created = await tianjin.http.post("/v1/issuers", json=body, headers=bearer(admin))
        assert created.status_code == 201, created.text
