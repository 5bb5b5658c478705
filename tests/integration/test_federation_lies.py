"""A peer that signs correctly but lies in what it says: its answer is passed on only when it agrees with the question.

The Tianjin node runs in-process; its Beijing peer is a fake (``federation_support.FakeBeijing``) whose statements carry
the right nonce, audience and region, and whatever content the test gives them. A status the protocol does not know,
a problem document of the peer's own, a contradictory or stale answer, an unmasked identity number: Tianjin answers
``unknown`` (``peer_answer_not_trusted``) or its own 404/422, in its own words, and never a 500.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.auth.scopes import Role
from registry.certificates import numbering
from registry.config import Settings
from registry.db import utcnow
from registry.errors import PROBLEM_TYPE_BASE
from registry.federation import protocol
from tests.factories import admin_token, bearer, create_client, resident_id, token_for
from tests.integration.federation_support import (
    HOLDER,
    PEER_BOUND_SECONDS,
    Tianjin,
    beijing_service_token,
    fake_recognition,
    fake_verification,
    peer_jwk,
    tianjin_with_fake_beijing,
)

EVIL = ("https://evil.example/x", "pwned")


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    async with tianjin_with_fake_beijing(settings) as node:
        yield node


async def _partner(tianjin: Tianjin) -> dict[str, str]:
    client = await create_client(tianjin.app, role=Role.partner, region="TJ")
    return bearer(await token_for(tianjin.http, *client))


def _item_answers(item: dict[str, Any]) -> Any:
    return lambda question: [item for _ in question["items"]]


# --- 1. a peer's per-item status and problem are never copied --------------------------------------------------------

NOT_UNDERSTOOD = {
    "500": {"index": 0, "status": 500},
    "200 without an answer": {"index": 0, "status": 200, "problem": {"type": EVIL[0], "title": EVIL[1], "status": 200}},
    "no such status": {"index": 0, "status": 99999},
    "status as text": {"index": 0, "status": "404"},
    "status as a boolean": {"index": 0, "status": True},
    "not an object": "404",
}


@pytest.mark.parametrize("item", NOT_UNDERSTOOD.values(), ids=NOT_UNDERSTOOD.keys())
async def test_a_peer_item_status_the_protocol_does_not_know_is_not_trusted(tianjin: Tianjin, item: Any) -> None:
    tianjin.peer.recognition_answer = _item_answers(item)
    partner = await _partner(tianjin)
    params = {"holder_name": HOLDER, "purpose": "hiring"}

    single = await tianjin.http.get(f"/v1/recognition/{tianjin.peer.number}", params=params, headers=partner)
    bulk = await tianjin.http.post(
        "/v1/recognition/queries",
        json={"purpose": "hiring", "items": [{"number": tianjin.peer.number, "holder_name": HOLDER}]},
        headers=partner,
    )

    assert single.status_code == bulk.status_code == 200, (single.text, bulk.text)
    (result,) = bulk.json()["results"]
    assert (result["status"], result["problem"]) == (200, None)
    for answer in (single.json(), result["answer"]):
        assert (answer["result"], answer["decision"]) == ("unknown", "not_recognised")
        assert (answer["reason"], answer["decision_reason"]) == ("peer_answer_not_trusted", "peer_answer_not_trusted")
        assert answer["certificate"] is None
    assert not [word for word in EVIL if word in single.text + bulk.text]


PROBLEMS = {
    "404, errors without a field": (404, {"errors": [{"x": 1}], "type": EVIL[0], "title": EVIL[1]}),
    "404, the peer's own type and title": (404, {"type": EVIL[0], "title": EVIL[1], "detail": EVIL[1]}),
    "422, errors not a list": (422, {"errors": "abc", "type": EVIL[0], "title": EVIL[1]}),
    "422, errors without a field": (422, {"errors": [{"x": 1}], "title": EVIL[1]}),
}


@pytest.mark.parametrize(("status", "problem"), PROBLEMS.values(), ids=PROBLEMS.keys())
async def test_a_peer_problem_is_said_again_in_this_nodes_words(
    tianjin: Tianjin, status: int, problem: dict[str, Any]
) -> None:
    tianjin.peer.recognition_answer = _item_answers({"index": 0, "status": status, "problem": problem})
    partner = await _partner(tianjin)
    params = {"holder_name": HOLDER, "purpose": "hiring"}

    single = await tianjin.http.get(
        f"/v1/recognition/{tianjin.peer.number}", params=params, headers={**partner, "Accept-Language": "zh"}
    )
    bulk = await tianjin.http.post(
        "/v1/recognition/queries",
        json={"purpose": "hiring", "items": [{"number": tianjin.peer.number, "holder_name": HOLDER}]},
        headers=partner,
    )

    assert single.status_code == status, single.text
    body = single.json()
    slug = "not-found" if status == 404 else "validation-error"
    assert (body["type"], body["status"]) == (PROBLEM_TYPE_BASE + slug, status)
    assert body["title"] == ("未找到" if status == 404 else "请求内容无效")  # this node's, in the reader's language
    if status == 422:
        assert [error["field"] for error in body["errors"]] == ["number"]
    (result,) = bulk.json()["results"]
    assert (result["status"], result["answer"]) == (status, None)
    assert result["problem"]["type"] == PROBLEM_TYPE_BASE + slug
    if status == 422:
        assert [error["field"] for error in result["problem"]["errors"]] == ["items[0].number"]
    assert not [word for word in EVIL if word in single.text + bulk.text]


# --- 2. an answer that contradicts the question or itself is not passed on --------------------------------------------


def _recognition_lie(change: dict[str, Any], certificate: dict[str, Any] | None = None) -> Any:
    def answer(question: dict[str, Any]) -> Any:
        honest = fake_recognition(question["items"][0]["number"], question["to_region"])
        lie = {**honest, **change}
        if certificate is not None:
            lie["certificate"] = {**honest["certificate"], **certificate}
        return [{"index": 0, "status": 200, "answer": lie}]

    return answer


OTHER_NUMBER = numbering.new_number(region="BJ", cert_type="title", year=2026)
RECOGNITION_LIES = {
    "revoked yet recognised": _recognition_lie({"decision": "recognised", "decision_reason": None}),
    "suspended yet conditional": _recognition_lie({"result": "suspended", "decision": "conditional"}),
    "for another region": _recognition_lie({"to_region": "HE"}),
    "about another number": _recognition_lie({"number": OTHER_NUMBER}),
    "another certificate": _recognition_lie({}, {"number": OTHER_NUMBER}),
    "another holder": _recognition_lie({}, {"holder_name": "李四"}),
    "an identity number in clear": _recognition_lie({}, {"holder_id_masked": resident_id()}),
    "a masked form not ours": _recognition_lie({}, {"holder_id_masked": "110105********1234"}),
    "checked 11 months ago": _recognition_lie({"checked_at": (utcnow() - timedelta(days=330)).isoformat()}),
    "checked tomorrow": _recognition_lie({"checked_at": (utcnow() + timedelta(days=1)).isoformat()}),
    "checked at a time with no offset": _recognition_lie({"checked_at": "2026-12-01T08:00:00"}),
    "valid without a certificate": _recognition_lie({"result": "valid", "certificate": None}),
    "answered by another region": _recognition_lie({"answered_by": "HE"}),
}


@pytest.mark.parametrize("lie", RECOGNITION_LIES.values(), ids=RECOGNITION_LIES.keys())
async def test_a_recognition_answer_that_contradicts_the_question_is_not_signed_by_this_node(
    tianjin: Tianjin, lie: Any
) -> None:
    tianjin.peer.recognition_answer = lie
    partner = await _partner(tianjin)
    params = {"holder_name": HOLDER, "purpose": "hiring"}

    response = await tianjin.http.get(f"/v1/recognition/{tianjin.peer.number}", params=params, headers=partner)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["result"], answer["decision"], answer["decision_reason"]) == (
        "unknown",
        "not_recognised",
        "peer_answer_not_trusted",
    )
    assert (answer["number"], answer["to_region"], answer["certificate"]) == (tianjin.peer.number, "TJ", None)


async def test_an_honest_recognition_answer_is_passed_on_and_signed_by_this_node(tianjin: Tianjin) -> None:
    partner = await _partner(tianjin)
    grouped = numbering.group_canonical(tianjin.peer.number).lower()  # asked in another form than the canonical

    response = await tianjin.http.get(
        f"/v1/recognition/{grouped}", params={"holder_name": HOLDER, "purpose": "hiring"}, headers=partner
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["result"], answer["decision"], answer["answered_by"]) == ("revoked", "not_recognised", "BJ")
    assert answer["certificate"]["number"] == tianjin.peer.number
    assert answer["signature"]


def _verification_lie(change: dict[str, Any], certificate: dict[str, Any] | None = None) -> Any:
    def answer(question: dict[str, Any]) -> Any:
        honest = fake_verification(question["number"])
        body = {**honest, **change}
        if certificate is not None:
            body["certificate"] = {**honest["certificate"], **certificate}
        return {"status": 200, "body": body}

    return answer


VERIFICATION_LIES = {
    "valid without a certificate": _verification_lie({"result": "valid", "reason": None, "certificate": None}),
    "revoked without a certificate": _verification_lie({"certificate": None}),
    "valid with a bad signature": _verification_lie({"result": "valid", "reason": None, "signature_valid": False}),
    "checked 11 months ago": _verification_lie({"checked_at": (utcnow() - timedelta(days=330)).isoformat()}),
    "checked tomorrow": _verification_lie({"checked_at": (utcnow() + timedelta(days=1)).isoformat()}),
    "another certificate": _verification_lie({}, {"number": OTHER_NUMBER}),
    "another holder": _verification_lie({}, {"holder_name": "李四"}),
    "an identity number in clear": _verification_lie({}, {"holder_id_masked": resident_id()}),
    "answered by another region": _verification_lie({"answered_by": "HE"}),
    "status 500": lambda question: {"status": 500, "body": fake_verification(question["number"])},
}


@pytest.mark.parametrize("lie", VERIFICATION_LIES.values(), ids=VERIFICATION_LIES.keys())
async def test_a_verification_answer_that_contradicts_the_question_is_unknown(tianjin: Tianjin, lie: Any) -> None:
    tianjin.peer.verify_answer = lie

    response = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": HOLDER})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["result"], answer["reason"], answer["answered_by"]) == ("unknown", "peer_answer_not_trusted", "TJ")
    assert answer["certificate"] is None
    assert answer["signature_valid"] is False


# --- 5. an identity number typed as a certificate number is never audited in clear ---------------------------------


async def test_an_identity_number_typed_as_the_certificate_number_is_not_audited_in_clear(tianjin: Tianjin) -> None:
    identity = "11010519491231002X"
    partner = await _partner(tianjin)
    params = {"holder_name": HOLDER, "purpose": "hiring"}

    single = await tianjin.http.get(f"/v1/recognition/{identity}", params=params, headers=partner)
    items = [
        {"number": identity, "holder_name": HOLDER},
        {"number": tianjin.peer.number.lower(), "holder_name": HOLDER},
    ]
    question = {"purpose": "hiring", "items": items}
    bulk = await tianjin.http.post("/v1/recognition/queries", json=question, headers=partner)

    assert single.status_code == 422, single.text
    assert [result["status"] for result in bulk.json()["results"]] == [422, 200]
    admin_headers = bearer(await admin_token(tianjin.app, tianjin.http))
    audit = await tianjin.http.get(
        "/v1/audit", params={"action": "recognition.query", "limit": 50}, headers=admin_headers
    )
    assert audit.status_code == 200, audit.text
    records = audit.json()["data"]
    assert sorted(record["object_id"] for record in records) == sorted(["invalid", "invalid", tianjin.peer.number])
    assert identity not in json.dumps(audit.json())


# --- 3. a malformed key in the peer's key set ------------------------------------------------------------------------


def _malformed(key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    return {**peer_jwk(key, kid, "access_token"), "alg": ["EdDSA"]}  # PyJWK raises TypeError, not PyJWTError


async def _ask_as_beijing(tianjin: Tianjin, token: str) -> httpx.Response:
    number = numbering.new_number(region="TJ", cert_type="title", year=2026)
    question = {"number": number, "holder_name": HOLDER, "nonce": "n" * 16}
    return await tianjin.http.post("/v1/federation/verify", json=question, headers=bearer(token))


async def test_a_malformed_key_in_the_peer_key_set_is_skipped_and_the_good_ones_still_count(tianjin: Tianjin) -> None:
    peer = tianjin.peer
    peer.published = [_malformed(peer.stranger, "bj-node-2"), *peer.key_set()["keys"]]

    response = await tianjin.http.post("/v1/verify", json={"number": peer.number, "holder_name": HOLDER})

    assert response.status_code == 200, response.text
    assert (response.json()["result"], response.json()["answered_by"]) == ("revoked", "BJ")
    assert (await _ask_as_beijing(tianjin, beijing_service_token(peer.node_key))).status_code == 200


async def test_a_peer_key_set_with_no_usable_key_is_a_failed_fetch_and_never_a_500(tianjin: Tianjin) -> None:
    peer = tianjin.peer
    peer.published = [_malformed(peer.node_key, "bj-node")]
    question = {"number": peer.number, "holder_name": HOLDER}

    answers = [await tianjin.http.post("/v1/verify", json=question) for _ in range(2)]
    refused = await _ask_as_beijing(tianjin, beijing_service_token(peer.stranger))

    for response in answers:
        assert response.status_code == 200, response.text
        assert (response.json()["result"], response.json()["reason"]) == ("unknown", "peer_keys_unavailable")
    assert refused.status_code == 401, refused.text
    assert peer.key_set_fetches == 1  # the failure counts: the party is not asked again at once


# --- 4. a peer that trickles its answer ------------------------------------------------------------------------------


async def _timed_verify(tianjin: Tianjin) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    question = {"number": tianjin.peer.number, "holder_name": HOLDER}
    response = await asyncio.wait_for(tianjin.http.post("/v1/verify", json=question), timeout=4 * PEER_BOUND_SECONDS)
    assert response.status_code == 200, response.text
    return time.monotonic() - started, response.json()


async def test_a_peer_trickling_its_answer_is_given_up_within_two_timeouts(tianjin: Tianjin) -> None:
    tianjin.peer.trickle = {"/v1/federation/verify"}

    elapsed, answer = await _timed_verify(tianjin)

    assert (answer["result"], answer["reason"], answer["answered_by"]) == ("unknown", "peer_timeout", "TJ")
    assert elapsed <= PEER_BOUND_SECONDS, elapsed


async def test_a_peer_trickling_its_key_set_holds_no_question_beyond_the_bound(tianjin: Tianjin) -> None:
    tianjin.peer.trickle = {"/.well-known/jwks.json"}

    timed = await asyncio.gather(*(_timed_verify(tianjin) for _ in range(3)))
    started = time.monotonic()
    refused = await asyncio.wait_for(_ask_as_beijing(tianjin, beijing_service_token(tianjin.peer.node_key)), 5)

    for elapsed, answer in timed:
        assert (answer["result"], answer["reason"]) == ("unknown", "peer_keys_unavailable")
        assert elapsed <= PEER_BOUND_SECONDS, elapsed
    assert refused.status_code == 401, refused.text
    assert time.monotonic() - started < 0.5  # the failed fetch is remembered: no second wait behind the lock
    assert tianjin.peer.key_set_fetches == 1


# --- 6. a service token names one audience ---------------------------------------------------------------------------


async def test_a_service_token_naming_several_audiences_is_refused(tianjin: Tianjin) -> None:
    key = tianjin.peer.node_key
    several = beijing_service_token(key, "bj-node", aud=[protocol.node_audience("TJ"), protocol.node_audience("HE")])

    assert (await _ask_as_beijing(tianjin, several)).status_code == 401
    assert (await _ask_as_beijing(tianjin, beijing_service_token(key))).status_code == 200
