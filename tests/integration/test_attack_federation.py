"""京津冀 mutual recognition attacked by a hostile or broken peer node and by a careless partner agency.

The Tianjin node runs in-process; its Beijing peer is a fake (``federation_support.FakeBeijing``) that answers as the
test tells it, through a transport the test may wrap (a huge body, a redirect, a refused connection). Each test asks
through the Tianjin node's public API and asserts on the real status and body.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from typing import Any

import httpx
import pytest

from registry.auth.scopes import Role
from registry.certificates import numbering
from registry.config import Settings
from registry.db import utcnow
from registry.federation.peers import KEY_SET_SECONDS, MAX_ANSWER_BYTES, Federation
from tests.factories import bearer, create_client, resident_id, token_for
from tests.integration.federation_support import (
    HOLDER,
    Network,
    Tianjin,
    answered_for_peers,
    audit_records,
    fake_recognition,
    fake_verification,
    partner_client,
    peer_jwk,
    three_nodes,
    tianjin_with_fake_beijing,
)

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    async with tianjin_with_fake_beijing(settings) as node:
        yield node


async def _partner(tianjin: Tianjin) -> dict[str, str]:
    client = await create_client(tianjin.app, role=Role.partner, region="TJ")
    return bearer(await token_for(tianjin.http, *client))


async def _through(tianjin: Tianjin, handler: Handler, clock: Callable[[], float] = time.monotonic) -> None:
    """The Tianjin node's federation client, now reaching its Beijing peer through ``handler`` (on ``clock``)."""
    await tianjin.app.state.federation.close()
    state = tianjin.app.state
    state.federation = Federation(state.context, state.sessions, transport=httpx.MockTransport(handler), clock=clock)


def _asked(tianjin: Tianjin) -> list[dict[str, Any]]:
    """Every question the fake Beijing node receives from now on, as it was sent."""
    questions: list[dict[str, Any]] = []
    verify, recognition = tianjin.peer.verify_answer, tianjin.peer.recognition_answer

    def seen_verify(question: dict[str, Any]) -> Any:
        questions.append(question)
        return verify(question)

    def seen_recognition(question: dict[str, Any]) -> Any:
        questions.append(question)
        return recognition(question)

    tianjin.peer.verify_answer, tianjin.peer.recognition_answer = seen_verify, seen_recognition
    return questions


# --- an identity number typed as the holder's name never leaves the node ---------------------------------------------


async def test_an_identity_number_typed_as_the_holder_name_is_not_sent_to_the_peer_in_a_verification(
    tianjin: Tianjin,
) -> None:
    questions = _asked(tianjin)
    identity = resident_id()

    response = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": identity})

    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert identity not in response.text
    assert not any(identity in json.dumps(question) for question in questions), questions


async def test_an_identity_number_beside_the_holder_name_is_not_sent_to_the_peer_in_a_recognition_query(
    tianjin: Tianjin,
) -> None:
    questions = _asked(tianjin)
    identity = resident_id()
    partner = await _partner(tianjin)
    items = [
        {"number": tianjin.peer.number, "holder_name": f"{HOLDER} {identity}"},
        {"number": tianjin.peer.number, "holder_name": HOLDER},
    ]

    response = await tianjin.http.post(
        "/v1/recognition/queries", json={"purpose": "hiring", "items": items}, headers=partner
    )

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [result["status"] for result in results] == [404, 200]
    assert results[1]["answer"]["result"] == "revoked"  # the good item is still asked and answered
    assert identity not in response.text
    assert not any(identity in json.dumps(question) for question in questions), questions


# --- a peer's transport misbehaves ------------------------------------------------------------------------------------


async def _verify(tianjin: Tianjin) -> dict[str, Any]:
    response = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": HOLDER})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_peer_answering_with_a_huge_body_is_not_read_in_full(tianjin: Tianjin) -> None:
    sent = 0
    chunk = b" " * (1 << 20)

    async def huge() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"statement": "x", "padding": "'
        for _ in range(64):  # 64 MiB: far more than a thousand items' answers
            sent += len(chunk)
            yield chunk
        yield b'"}'

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/federation/verify":
            return httpx.Response(200, headers={"content-type": "application/json"}, content=huge())
        return await tianjin.peer.handle(request)

    await _through(tianjin, handler)

    answer = await _verify(tianjin)

    assert (answer["result"], answer["certificate"]) == ("unknown", None)
    assert sent <= MAX_ANSWER_BYTES + len(chunk), f"{sent >> 20} MiB read of a peer's answer"


async def test_a_peer_redirecting_to_an_internal_address_is_not_followed(tianjin: Tianjin) -> None:
    followed: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host != "bj-node.test":
            followed.append(str(request.url))
            return httpx.Response(200, json={})
        if request.url.path == "/v1/federation/verify":
            return httpx.Response(307, headers={"location": "http://169.254.169.254/latest/meta-data/"})
        return await tianjin.peer.handle(request)

    await _through(tianjin, handler)

    answer = await _verify(tianjin)

    assert (answer["result"], answer["reason"], answer["certificate"]) == ("unknown", "peer_answer_not_trusted", None)
    assert followed == []


async def test_a_peer_that_cannot_be_reached_costs_bounded_attempts_and_opens_the_breaker(tianjin: Tianjin) -> None:
    tries: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        tries.append(request.url.path)
        raise httpx.ConnectError("certificate verify failed", request=request)  # a TLS failure looks like this

    await _through(tianjin, handler)

    answers = [await _verify(tianjin) for _ in range(6)]

    assert {(answer["result"], answer["certificate"]) for answer in answers} == {("unknown", None)}
    assert {answer["reason"] for answer in answers[3:]} == {"peer_circuit_open"}
    assert len(tries) <= 3 * 2  # three failed questions of at most two attempts each, then none


async def test_an_answer_signed_by_a_node_key_the_peer_retired_is_not_trusted(tianjin: Tianjin) -> None:
    retired = {
        **peer_jwk(tianjin.peer.node_key, "bj-node", "access_token"),
        "status": "retired",
        "valid_from": (utcnow() - timedelta(days=30)).isoformat(),
        "valid_until": (utcnow() - timedelta(minutes=10)).isoformat(),  # still published for its tokens
    }
    tianjin.peer.published = [retired]

    answer = await _verify(tianjin)

    assert (answer["result"], answer["certificate"]) == ("unknown", None)


async def test_an_answer_signed_by_a_node_key_the_peer_then_marks_compromised_is_refused_within_a_minute(
    tianjin: Tianjin,
) -> None:
    now = [time.monotonic()]
    await _through(tianjin, tianjin.peer.handle, clock=lambda: now[0])
    trusted = await _verify(tianjin)
    tianjin.peer.published = [{**peer_jwk(tianjin.peer.node_key, "bj-node", "access_token"), "status": "compromised"}]

    now[0] += KEY_SET_SECONDS + 1
    answer = await _verify(tianjin)

    assert trusted["result"] == "revoked"
    assert (answer["result"], answer["certificate"]) == ("unknown", None)
    assert tianjin.peer.key_set_fetches == 2


async def test_an_answer_signed_by_a_node_key_the_peer_retired_a_moment_ago_is_still_trusted(tianjin: Tianjin) -> None:
    just_retired = {
        **peer_jwk(tianjin.peer.node_key, "bj-node", "access_token"),
        "status": "retired",
        "valid_until": (utcnow() - timedelta(seconds=30)).isoformat(),  # the peer's signer has not re-read it yet
    }
    tianjin.peer.published = [just_retired]

    answer = await _verify(tianjin)

    assert (answer["result"], answer["answered_by"]) == ("revoked", "BJ")


# --- a peer's answer names a successor it cannot have ----------------------------------------------------------------


def _successor() -> str:
    return numbering.new_number(region="BJ", cert_type="title", year=2026)


SUCCESSIONS = {
    "valid, yet superseded": lambda: {"result": "valid", "reason": None, "superseded_by": _successor()},
    "superseded by a link": lambda: {"result": "superseded", "reason": "superseded", "superseded_by": "https://x.test"},
    "superseded by another region's": lambda: {
        "result": "superseded",
        "reason": "superseded",
        "superseded_by": numbering.new_number(region="HE", cert_type="title", year=2026),
    },
}


@pytest.mark.parametrize("change", SUCCESSIONS.values(), ids=SUCCESSIONS.keys())
async def test_a_peer_verification_naming_a_successor_it_cannot_have_is_unknown(
    tianjin: Tianjin, change: Callable[[], dict[str, Any]]
) -> None:
    said = change()
    tianjin.peer.verify_answer = lambda question: {
        "status": 200,
        "body": {**fake_verification(question["number"]), **said},
    }

    answer = await _verify(tianjin)

    assert (answer["result"], answer["reason"], answer["superseded_by"]) == ("unknown", "peer_answer_not_trusted", None)


@pytest.mark.parametrize("change", SUCCESSIONS.values(), ids=SUCCESSIONS.keys())
async def test_a_peer_judgement_naming_a_successor_it_cannot_have_is_not_signed_by_this_node(
    tianjin: Tianjin, change: Callable[[], dict[str, Any]]
) -> None:
    said = change()

    def judged(question: dict[str, Any]) -> Any:
        answer = {**fake_recognition(question["items"][0]["number"], question["to_region"]), **said}
        answer["decision_reason"] = "no_rule" if said["result"] == "valid" else said["result"]
        return [{"index": 0, "status": 200, "answer": answer}]

    tianjin.peer.recognition_answer = judged
    params = {"holder_name": HOLDER, "purpose": "hiring"}

    response = await tianjin.http.get(
        f"/v1/recognition/{tianjin.peer.number}", params=params, headers=await _partner(tianjin)
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["result"], answer["decision_reason"], answer["superseded_by"]) == (
        "unknown",
        "peer_answer_not_trusted",
        None,
    )


async def test_an_honest_superseded_answer_names_its_successor(tianjin: Tianjin) -> None:
    successor = _successor()
    tianjin.peer.verify_answer = lambda question: {
        "status": 200,
        "body": {
            **fake_verification(question["number"]),
            "result": "superseded",
            "reason": "superseded",
            "superseded_by": successor,
        },
    }

    answer = await _verify(tianjin)

    assert (answer["result"], answer["superseded_by"], answer["answered_by"]) == ("superseded", successor, "BJ")


# --- a partner agency's bulk question ---------------------------------------------------------------------------------


async def test_a_thousand_item_question_mixing_bad_items_asks_the_peer_once_and_answers_each(tianjin: Tianjin) -> None:
    questions = _asked(tianjin)
    good = {"number": tianjin.peer.number, "holder_name": HOLDER}
    bad: list[Any] = [
        "BJ",
        None,
        {"number": "X" * 33, "holder_name": HOLDER},
        {"number": tianjin.peer.number, "holder_name": "名" * 65},
        {"number": tianjin.peer.number, "holder_name": HOLDER, "id_number": resident_id()},
        {"number": numbering.new_number(region="TJ", cert_type="title", year=2026), "holder_name": HOLDER},
    ]
    items = [*bad, *[good] * (1000 - len(bad))]

    response = await tianjin.http.post(
        "/v1/recognition/queries", json={"purpose": "hiring", "items": items}, headers=await _partner(tianjin)
    )

    assert response.status_code == 200, response.text[:500]
    results = response.json()["results"]
    assert [result["status"] for result in results[: len(bad)]] == [422] * len(bad)
    assert {result["answer"]["result"] for result in results[len(bad) :]} == {"revoked"}
    assert [len(question["items"]) for question in questions] == [1000 - len(bad)]
    assert "id_number" not in json.dumps(questions)


@pytest.mark.parametrize(
    ("to_region", "status"), [("SH", 422), ("bj", 422), ("HE", 403), ("TJ", 200)], ids=["SH", "bj", "HE", "TJ"]
)
async def test_a_partner_naming_a_region_is_answered_for_its_own_only(
    tianjin: Tianjin, to_region: str, status: int
) -> None:
    body = {
        "purpose": "hiring",
        "to_region": to_region,
        "items": [{"number": tianjin.peer.number, "holder_name": HOLDER}],
    }

    response = await tianjin.http.post("/v1/recognition/queries", json=body, headers=await _partner(tianjin))

    assert response.status_code == status, response.text
    if status != 200:
        assert response.headers["content-type"].startswith("application/problem+json")


# --- what a peer's answer looks like on the wire --------------------------------------------------------------------

WIRE = {
    "malformed JSON": lambda: httpx.Response(
        200, content=b'{"statement": "a.b.c"', headers={"content-type": "application/json"}
    ),
    "HTML": lambda: httpx.Response(200, content=b"<html>gateway</html>", headers={"content-type": "text/html"}),
    "not UTF-8": lambda: httpx.Response(200, content=b'{"statement": "\xff\xfe"}'),
    "500": lambda: httpx.Response(500, json={"detail": "boom"}),
    "empty": lambda: httpx.Response(200),
}


@pytest.mark.parametrize("wire", WIRE.values(), ids=WIRE.keys())
async def test_a_peer_answering_what_is_not_a_statement_is_unknown_never_an_error(
    tianjin: Tianjin, wire: Callable[[], httpx.Response]
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v1/federation/"):
            return wire()
        return await tianjin.peer.handle(request)

    await _through(tianjin, handler)

    answer = await _verify(tianjin)
    response = await tianjin.http.get(
        f"/v1/recognition/{tianjin.peer.number}",
        params={"holder_name": HOLDER, "purpose": "hiring"},
        headers=await _partner(tianjin),
    )

    assert (answer["result"], answer["certificate"]) == ("unknown", None)
    assert response.status_code == 200, response.text
    assert (response.json()["result"], response.json()["decision"]) == ("unknown", "not_recognised")


# --- real nodes: an identity number in the holder's name stays on the node it was typed into --------------------------


@pytest.fixture(scope="module")
async def network(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Network]:
    root = tmp_path_factory.mktemp("attack-federation")
    async with three_nodes(root, f"sqlite+aiosqlite:///{root}/BJ.db") as network:
        yield network


async def test_real_nodes_never_send_an_identity_number_typed_as_the_holder_name(network: Network) -> None:
    bj, tj = network.nodes["BJ"], network.nodes["TJ"]
    certificate = network.certificates["bj_ai"]
    _, partner = await partner_client(tj)
    asked_before = await answered_for_peers(bj)
    holder_names = [certificate.id_number, f"{certificate.holder_name}{certificate.id_number}"]

    verified = [
        await tj.http.post("/v1/verify", json={"number": certificate.number, "holder_name": name})
        for name in holder_names
    ]
    items = [{"number": certificate.number, "holder_name": name} for name in [*holder_names, certificate.holder_name]]
    bulk = await tj.http.post(
        "/v1/recognition/queries", json={"purpose": "hiring", "items": items}, headers=bearer(partner)
    )

    assert [response.status_code for response in verified] == [404, 404], [r.text for r in verified]
    assert bulk.status_code == 200, bulk.text
    assert [result["status"] for result in bulk.json()["results"]] == [404, 404, 200]
    assert bulk.json()["results"][2]["answer"]["answered_by"] == "BJ"
    assert await answered_for_peers(bj) == asked_before  # neither verification was forwarded
    judged_for_tianjin = await audit_records(bj, action="recognition.query")
    assert [record["object_id"] for record in judged_for_tianjin] == [certificate.number]  # the good item only
    for node in (bj, tj):
        assert certificate.id_number not in node.server.log.read_text(errors="replace")
