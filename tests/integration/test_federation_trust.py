"""A peer's answer is used only when it checks out, and only configured peers may ask.

The Tianjin node runs in-process; its Beijing peer is a fake (an ``httpx.MockTransport`` behind the federation client)
that publishes a JWKS and answers questions with statements it signs, honestly or not. Whatever the fake gets wrong —
a statement altered after signing, a key it never published, an evaluation body's key instead of the node's, an answer
to another question — Tianjin answers ``unknown`` (reason ``peer_answer_not_trusted``), never ``valid``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from api.app import create_app, dispose
from registry.certificates import numbering
from registry.config import Region, Settings
from registry.federation import protocol
from registry.federation.peers import Federation
from registry.verification.schemas import Verification, VerificationResult, VerifiedCertificate
from tests.factories import bearer

PEER_URL = "http://bj-node.test"
NOT_OBJECTS = ("[]", "null", '"statement"', "42")  # JSON, but not the object a peer answers with
NODE_URL = "https://tj-node.test"
HOLDER = "张三"


def _jwk(key: Ed25519PrivateKey, kid: str, key_use: str) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "EdDSA", "use": "sig", "key_use": key_use, "status": "active"}


def _verification(number: str) -> dict[str, Any]:
    certificate = VerifiedCertificate(
        number=number,
        number_display=numbering.group_canonical(number),
        holder_name=HOLDER,
        holder_id_masked="110105********1234",
        cert_type="title",
        catalogue_code="ENG-AI",
        series_zh="工程技术",
        name_zh="人工智能",
        name_en="Artificial intelligence",
        level="senior",
        level_name_zh="正高级",
        level_name_en="Senior",
        issuer_code="BJ-AI-COMMITTEE",
        issuer_name="北京市工程技术系列人工智能专业高级职称评审委员会",
        awarded_on="2026-06-30",
        valid_until=None,
    )
    answer = Verification(
        result=VerificationResult.revoked,
        reason="fraud",
        certificate=certificate,
        signature_valid=True,
        checked_at="2026-12-01T08:00:00Z",
        answered_by="BJ",
    )
    return answer.model_dump(mode="json")


class FakeBeijing:
    """The Beijing node as the Tianjin node sees it: a JWKS, and signed answers (revoked) to verification questions."""

    def __init__(self) -> None:
        self.node_key = Ed25519PrivateKey.generate()
        self.body_key = Ed25519PrivateKey.generate()  # an evaluation body's certificate key, published too
        self.stranger = Ed25519PrivateKey.generate()  # never published
        self.number = numbering.new_number(region="BJ", cert_type="title", year=2026)
        self.mode = "honest"
        self.tokens: list[str] = []
        self.asked = asyncio.Event()

    def key_set(self) -> dict[str, Any]:
        return {"keys": [_jwk(self.node_key, "bj-node", "access_token"), _jwk(self.body_key, "bj-body", "certificate")]}

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(200, json=self.key_set())
        if request.url.path == "/v1/federation/verify":
            self.tokens.append(request.headers["authorization"].removeprefix("Bearer "))
            if self.mode == "hanging":  # asked, and never answering: the asker gives up first
                self.asked.set()
                await asyncio.Event().wait()
            if self.mode in NOT_OBJECTS:
                return httpx.Response(200, content=self.mode)
            question = json.loads(request.content)
            return httpx.Response(200, json={"statement": self.statement(question["nonce"])})
        return httpx.Response(404)

    def sign(self, claims: dict[str, Any], key: Ed25519PrivateKey, kid: str) -> str:
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": protocol.PEER_ANSWER_TYPE})

    def statement(self, nonce: str) -> str:
        body = _verification(self.number)
        answer: dict[str, Any] = {"status": 200, "body": body}
        claims: dict[str, Any] = {"iss": PEER_URL, "region": "BJ", "iat": int(time.time()), "aud": "TJ", "nonce": nonce}
        if self.mode == "other_question":
            claims["nonce"] = "an-answer-to-another-question"
        if self.mode == "stranger_key":
            return self.sign({**claims, "answer": answer}, self.stranger, "bj-node-2")
        if self.mode == "stranger_under_published_kid":
            return self.sign({**claims, "answer": answer}, self.stranger, "bj-node")
        if self.mode == "evaluation_body_key":
            return self.sign({**claims, "answer": answer}, self.body_key, "bj-body")
        token = self.sign({**claims, "answer": answer}, self.node_key, "bj-node")
        if self.mode == "altered":  # someone on the way turns "revoked" into "valid", keeping the signature
            header, _, signature = token.split(".")
            altered = {**claims, "answer": {**answer, "body": {**body, "result": "valid", "reason": None}}}
            payload = base64.urlsafe_b64encode(json.dumps(altered).encode()).rstrip(b"=").decode()
            return f"{header}.{payload}.{signature}"
        return token


@dataclass
class Tianjin:
    app: FastAPI
    http: httpx.AsyncClient
    peer: FakeBeijing


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    """The Tianjin node in-process, with the fake Beijing node as its only peer (no answer cache)."""
    node_settings = settings.model_copy(
        update={
            "region": Region.TJ,
            "peers": {Region.BJ: PEER_URL},
            "peer_cache_seconds": 0,
            "peer_timeout_seconds": 1.0,
            "public_base_url": NODE_URL,
        }
    )
    app = create_app(node_settings)
    peer = FakeBeijing()
    await app.state.federation.close()
    transport = httpx.MockTransport(peer.handle)
    app.state.federation = Federation(app.state.context, app.state.sessions, transport=transport)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=NODE_URL) as http:
        yield Tianjin(app, http, peer)
    await dispose(app)


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
    assert (answer["result"], answer["reason"], answer["answered_by"]) == ("unknown", "peer_answer_not_trusted", "BJ")
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
