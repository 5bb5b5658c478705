"""Three regional nodes (BJ, TJ, HE) as three real `registry serve` processes on loopback, each with its own database
(Beijing on a fresh PostgreSQL database, Tianjin and Hebei on SQLite files) and its own master key, each naming the
other two in REGISTRY_PEERS. Each node is set up as its bureau would: an admin client from the command line, an
evaluation body of the node's region, its issuer client, certificates (whose numbers carry the node's region).

The stories, in order (the last one stops and restarts the Beijing node):

1. a Tianjin verifier checks a Beijing certificate through the Tianjin node (API and verification page);
2. a Hebei agency's bulk query mixes Beijing, Tianjin and Hebei certificates, gets every decision signed, and each
   item is one audit record;
3. a revocation in Beijing is seen at Tianjin within the cache bound;
4. a forwarded question is never forwarded again (no A -> B -> A loop), and only peers may ask;
5. with the Beijing node stopped Tianjin answers "unknown" within its timeout, the breaker opens (fail fast), and
   closes again after its reset time once Beijing is back; Beijing killed and started again on its port and
   database answers through Tianjin again.

Peers that answer with bad signatures or unknown keys are in test_federation_trust.py (a fake peer, in-process).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from registry.certificates import numbering
from registry.federation import protocol
from registry.recognition import queries
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES, _postgres_reachable, scratch_database
from tests.factories import bearer
from tests.integration.federation_support import (
    CACHE_SECONDS,
    PEER_BOUND_SECONDS,
    RESET_SECONDS,
    SLACK_SECONDS,
    TIMEOUT_SECONDS,
    Network,
    answered_for_peers,
    audit_records,
    checked,
    key_set,
    partner_client,
    problem,
    service_token,
    three_nodes,
    timed_verify,
)


@pytest.fixture(scope="module")
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for the Beijing node (its server migrates it), dropped at the end."""
    unreachable = await _postgres_reachable()
    if unreachable is not None:
        message = f"the multi-node test needs PostgreSQL at {POSTGRES_URL} ({unreachable})"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    async with scratch_database("tr_federation") as url:
        yield url


@pytest.fixture(scope="module")
async def network(tmp_path_factory: pytest.TempPathFactory, postgres_database: str) -> AsyncIterator[Network]:
    async with three_nodes(tmp_path_factory.mktemp("federation"), postgres_database) as network:
        yield network


# --- 1. verification through another region's node ----------------------------------------------------------------


async def test_a_tianjin_verifier_checks_a_beijing_certificate_through_the_tianjin_node(network: Network) -> None:
    bj, tj = network.nodes["BJ"], network.nodes["TJ"]
    certificate = network.certificates["bj_ai"]

    at_home = await bj.http.post("/v1/verify", json=certificate.question)
    through_tianjin = await tj.http.post("/v1/verify", json=certificate.question)

    assert at_home.status_code == through_tianjin.status_code == 200, through_tianjin.text
    local, forwarded = at_home.json(), through_tianjin.json()
    assert forwarded["result"] == "valid"
    assert forwarded["answered_by"] == "BJ"
    assert forwarded["signature_valid"] is True
    assert forwarded["certificate"] == local["certificate"]  # masked exactly as Beijing masks it
    assert forwarded["certificate"]["holder_id_masked"] != certificate.id_number
    assert certificate.id_number not in through_tianjin.text
    grouped = {**certificate.question, "number": numbering.group_canonical(certificate.number).lower()}
    assert (await tj.http.post("/v1/verify", json=grouped)).json()["result"] == "valid"

    wrong_name = await tj.http.post("/v1/verify", json={**certificate.question, "holder_name": "李四五"})
    unissued = numbering.new_number(region="BJ", cert_type="title", year=2026)
    missing = await tj.http.post("/v1/verify", json={"number": unissued, "holder_name": certificate.holder_name})
    assert wrong_name.status_code == missing.status_code == 404
    assert problem(wrong_name) == problem(missing)  # a wrong name and a missing number answer alike

    page = await tj.http.post("/v", data=certificate.question)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for shown in (certificate.holder_name, forwarded["certificate"]["number_display"], "北京市人才证书登记系统"):
        assert shown in page.text
    assert certificate.id_number not in page.text
    english = await tj.http.post("/v", params={"lang": "en"}, data=certificate.question)
    assert "Answered by the Beijing registry" in english.text
    own = await tj.http.post("/v", data=network.certificates["tj_ai"].question)
    assert "天津市人才证书登记系统" in own.text


# --- 2. a partner agency's bulk query across the three regions ------------------------------------------------------


async def test_a_hebei_agency_bulk_query_mixes_three_regions_and_gets_every_decision(network: Network) -> None:
    he = network.nodes["HE"]
    partner_id, partner = await partner_client(he)
    asked = [network.certificates[key] for key in ("bj_eai", "bj_ai", "tj_ai", "he_ai")]
    items = [c.question for c in asked] + [{"number": "BJ-T-2026-0000000-Z", "holder_name": "张三"}]

    response = await he.http.post(
        "/v1/recognition/queries", json={"purpose": "hiring", "items": items}, headers=bearer(partner)
    )

    assert response.status_code == 200, response.text
    bulk = response.json()
    assert (bulk["to_region"], bulk["count"]) == ("HE", 5)
    results = bulk["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == [200, 200, 200, 422, 422], results
    answers = [r["answer"] for r in results[:3]]
    assert [a["number"] for a in answers] == [c.number for c in asked[:3]]
    decisions = [(a["decision"], a["decision_reason"]) for a in answers]
    assert decisions == [("conditional", None), ("recognised", None), ("recognised", None)]
    assert [a["answered_by"] for a in answers] == ["BJ", "BJ", "TJ"]
    assert all(a["result"] == "valid" and a["to_region"] == "HE" and a["rule_id"] and a["basis"] for a in answers)
    conditional = answers[0]
    assert conditional["equivalent"]["catalogue_code"] == "ENG-AI"
    assert conditional["conditions"]["zh"]
    assert conditional["conditions"]["en"]
    assert [r["problem"]["errors"][0]["field"] for r in results[3:]] == ["items[3].number", "items[4].number"]
    assert all(r["answer"] is None for r in results[3:])

    keys = await key_set(he)  # signed by the Hebei node, whichever node judged the certificate
    for answer in answers:
        claims = checked(answer["signature"], keys, typ=protocol.RECOGNITION_ANSWER_TYPE, audience=partner_id)
        assert claims["answer"] == {k: v for k, v in answer.items() if k != "signature"}
        assert (claims["iss"], claims["region"], claims["purpose"]) == (he.base_url, "HE", "hiring")

    records = await audit_records(he, action="recognition.query")
    assert len(records) == len(items)
    # A number that is not one is recorded as such, never as typed: it may be an identity number in the wrong box.
    assert [r["object_id"] for r in records] == [item["number"] for item in items[:4]] + [queries.UNPARSED_NUMBER]
    assert {r["purpose"] for r in records} == {"hiring"}
    assert {r["actor"] for r in records} == {f"client:{partner_id}"}
    assert [r["details"]["status"] for r in records] == [200, 200, 200, 422, 422]
    # The judging nodes keep their own record of what the Hebei node asked them, once per item.
    assert len(await audit_records(network.nodes["BJ"], action="recognition.query")) == 2
    assert len(await audit_records(network.nodes["TJ"], action="recognition.query")) == 1
    for node in network.nodes.values():
        everything = json.dumps(await audit_records(node), ensure_ascii=False)
        assert not [c.id_number for c in network.certificates.values() if c.id_number in everything]


async def test_a_single_recognition_query_is_judged_by_the_certificates_node(network: Network) -> None:
    he = network.nodes["HE"]
    partner_id, partner = await partner_client(he)
    certificate = network.certificates["bj_eai"]

    async def ask(number: str, holder_name: str) -> httpx.Response:
        params = {"holder_name": holder_name, "purpose": "talent_introduction"}
        return await he.http.get(f"/v1/recognition/{number}", params=params, headers=bearer(partner))

    response = await ask(certificate.number, certificate.holder_name)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["decision"], answer["answered_by"], answer["to_region"]) == ("conditional", "BJ", "HE")
    assert answer["equivalent"]["catalogue_code"] == "ENG-AI"
    keys = await key_set(he)
    claims = checked(answer["signature"], keys, typ=protocol.RECOGNITION_ANSWER_TYPE, audience=partner_id)
    assert claims["purpose"] == "talent_introduction"
    wrong_name = await ask(certificate.number, "张三丰")
    missing = await ask(numbering.new_number(region="BJ", cert_type="title", year=2026), certificate.holder_name)
    assert wrong_name.status_code == missing.status_code == 404
    assert problem(wrong_name) == problem(missing)
    records = await audit_records(he, action="recognition.query", actor=f"client:{partner_id}")
    assert [r["details"]["status"] for r in records] == [200, 404, 404]


# --- 3. staleness bound ---------------------------------------------------------------------------------------------


async def test_a_revocation_in_beijing_is_seen_at_tianjin_within_the_cache_bound(network: Network) -> None:
    bj, tj = network.nodes["BJ"], network.nodes["TJ"]
    certificate = network.certificates["bj_revoke"]
    assert (await tj.http.post("/v1/verify", json=certificate.question)).json()["result"] == "valid"  # now cached

    revoked = await bj.http.post(
        f"/v1/certificates/{certificate.number}/revoke", json={"reason": "材料造假"}, headers=bearer(bj.issuer)
    )
    assert revoked.status_code == 200, revoked.text
    started = time.monotonic()
    seen = []
    while True:
        answer = (await tj.http.post("/v1/verify", json=certificate.question)).json()
        seen.append(answer["result"])
        elapsed = time.monotonic() - started
        if answer["result"] == "revoked":
            break
        assert answer["result"] == "valid", answer
        assert elapsed <= CACHE_SECONDS + SLACK_SECONDS, f"still {answer['result']} after {elapsed:.2f} s"
        await asyncio.sleep(0.1)

    assert elapsed <= CACHE_SECONDS + SLACK_SECONDS
    assert answer["answered_by"] == "BJ"
    assert answer["certificate"]["number"] == certificate.number
    print(f"\nrevocation seen at TJ {elapsed:.2f} s after BJ recorded it (cache {CACHE_SECONDS} s; {len(seen)} asks)")


# --- 4. no loops; only peers ask ------------------------------------------------------------------------------------


async def test_a_forwarded_question_is_never_forwarded_again(network: Network) -> None:
    bj, tj = network.nodes["BJ"], network.nodes["TJ"]
    certificate = network.certificates["tj_ai"]
    nonce = secrets.token_urlsafe(16)
    question = {**certificate.question, "nonce": nonce}
    asked_before = await answered_for_peers(tj)

    # Tianjin asks Beijing about a Tianjin number: Beijing answers from its own records, and asks nobody.
    token = await service_token(tj, to="BJ")
    response = await bj.http.post("/v1/federation/verify", json=question, headers=bearer(token))

    assert response.status_code == 200, response.text
    claims = checked(response.json()["statement"], await key_set(bj), typ=protocol.PEER_ANSWER_TYPE, audience="TJ")
    assert (claims["answer"], claims["nonce"], claims["region"]) == ({"status": 404}, nonce, "BJ")
    # Likewise for recognition: judged from Beijing's records (no such certificate), not sent on to Tianjin.
    recognition = {"to_region": "HE", "purpose": "hiring", "items": [certificate.question], "nonce": nonce}
    response = await bj.http.post("/v1/federation/recognition", json=recognition, headers=bearer(token))
    assert response.status_code == 200, response.text
    claims = checked(response.json()["statement"], await key_set(bj), typ=protocol.PEER_ANSWER_TYPE, audience="TJ")
    assert [(item["status"], item["answer"]) for item in claims["answer"]] == [(404, None)]
    assert await answered_for_peers(tj) == asked_before

    # The same number through Beijing's public door is forwarded to Tianjin, once: the counter does move.
    public = await bj.http.post("/v1/verify", json=certificate.question)
    assert (public.json()["result"], public.json()["answered_by"]) == ("valid", "TJ")
    assert await answered_for_peers(tj) == asked_before + 1


async def test_only_configured_peers_may_ask_a_node(network: Network) -> None:
    bj, tj = network.nodes["BJ"], network.nodes["TJ"]
    question = {**network.certificates["bj_ai"].question, "nonce": secrets.token_urlsafe(16)}
    refused = {
        "no token": {},
        "not a token": bearer("not-a-jwt"),
        # Beijing is not among Beijing's peers: a token from "BJ" (even one Beijing signed itself) is refused.
        "own region": bearer(await service_token(bj, to="BJ")),
        # Signed by Tianjin's key but claiming to come from Hebei: checked against Hebei's key set, which lacks it.
        "wrong region": bearer(await service_token(tj, to="BJ", claims={"region": "HE", "sub": "node:HE"})),
        "meant for Hebei": bearer(await service_token(tj, to="HE")),
    }
    for case, headers in refused.items():
        response = await bj.http.post("/v1/federation/verify", json=question, headers=headers)
        assert response.status_code == 401, f"{case}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("application/problem+json")
    accepted = await bj.http.post(
        "/v1/federation/verify", json=question, headers=bearer(await service_token(tj, to="BJ"))
    )
    assert accepted.status_code == 200, accepted.text


# --- 5. a peer down: unknown, never valid; the breaker ---------------------------------------------------------------


async def test_with_beijing_stopped_tianjin_answers_unknown_and_the_breaker_opens_then_closes(network: Network) -> None:
    bj, tj = network.nodes["BJ"], network.nodes["TJ"]
    question = network.certificates["bj_down"].question
    bj.server.pause()  # SIGSTOP: connections are still accepted, nothing answers
    try:
        failing = await asyncio.gather(*(timed_verify(tj, question) for _ in range(3)))
        opened = time.monotonic()
        for elapsed, answer in failing:
            assert (answer["result"], answer["reason"], answer["answered_by"]) == ("unknown", "peer_timeout", "TJ")
            assert answer["certificate"] is None
            assert TIMEOUT_SECONDS <= elapsed <= PEER_BOUND_SECONDS, elapsed
        fast, answer = await timed_verify(tj, question)
        assert (answer["result"], answer["reason"]) == ("unknown", "peer_circuit_open")
        assert fast < TIMEOUT_SECONDS / 2, fast  # not asked at all: no timeout waited out
        page = await tj.http.post("/v", data=question)
        assert "证书所属地区的登记系统暂不可用" in page.text
    finally:
        bj.server.resume()

    # Beijing answers again at once, but Tianjin does not ask it until the breaker's reset time has passed.
    _, answer = await timed_verify(tj, question)
    assert (answer["result"], answer["reason"]) == ("unknown", "peer_circuit_open")
    reasons: list[str] = []
    while answer["result"] != "valid":
        assert answer["result"] == "unknown", answer
        assert time.monotonic() - opened <= RESET_SECONDS + PEER_BOUND_SECONDS, reasons
        await asyncio.sleep(0.1)
        _, answer = await timed_verify(tj, question)
        reasons.append(answer["reason"])
    closed = time.monotonic() - opened
    assert closed >= RESET_SECONDS / 2  # (``opened`` is stamped a little after the breaker opened)
    assert answer["answered_by"] == "BJ"
    print(
        f"\nBJ stopped: 3 timed-out answers in {max(e for e, _ in failing):.2f} s at most, then circuit open in"
        f" {fast * 1000:.1f} ms; BJ resumed: valid again at TJ {closed:.2f} s after the circuit opened"
    )


async def test_beijing_restarted_on_its_port_and_database_answers_through_tianjin_again(network: Network) -> None:
    bj, tj = network.nodes["BJ"], network.nodes["TJ"]
    question = network.certificates["bj_restart"].question  # never asked before: no cached answer at Tianjin
    await bj.server.kill_9()

    elapsed, answer = await timed_verify(tj, question)
    assert (answer["result"], answer["reason"]) == ("unknown", "peer_unreachable")
    assert elapsed <= PEER_BOUND_SECONDS

    await bj.server.start()  # same port, same (PostgreSQL) database, same master key
    _, answer = await timed_verify(tj, question)
    assert (answer["result"], answer["answered_by"]) == ("valid", "BJ")
