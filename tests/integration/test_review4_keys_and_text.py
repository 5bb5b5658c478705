"""Review of 80e3264 and 192f4f8 / 8ec58b2: a peer node's key set read whole but holding no node key is said to be so,
not "cannot be fetched"; and an identity number typed after a lone digit is still found in free text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry import schemas
from registry.auth.jwks import MIN_REFETCH_SECONDS, RemoteKeySet
from registry.certificates import numbering
from registry.config import Settings
from registry.errors import KeySetUnavailable
from registry.federation.peers import Federation
from tests.checks import assert_problem, leaves_no_trace
from tests.factories import bearer, certificate_body, issued_certificate, ready_issuer
from tests.integration.federation_support import (
    HOLDER,
    Tianjin,
    beijing_service_token,
    peer_jwk,
    tianjin_with_fake_beijing,
)
from tests.unit.test_remote_keys import URL, Party, _jwk

NUMBER = "11010519491231002X"  # a valid resident ID number (GB 11643) that belongs to nobody


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    async with tianjin_with_fake_beijing(settings) as node:
        yield node


async def _ask_as_beijing(tianjin: Tianjin, headers: dict[str, str] | None = None) -> httpx.Response:
    number = numbering.new_number(region="TJ", cert_type="title", year=2026)
    question = {"number": number, "holder_name": HOLDER, "nonce": "n" * 16}
    token = beijing_service_token(tianjin.peer.node_key)
    return await tianjin.http.post("/v1/federation/verify", json=question, headers={**bearer(token), **(headers or {})})


async def test_a_calling_peer_whose_key_set_holds_no_node_key_is_told_so_not_that_it_cannot_be_fetched(
    tianjin: Tianjin,
) -> None:
    """Before, a key set fetched and read whole whose only node key was withdrawn (compromised) was answered "the
    calling node's key set cannot be fetched": the peer's operator would look for a network fault that is not there."""
    withdrawn = {**peer_jwk(tianjin.peer.node_key, "bj-node", "access_token"), "status": "compromised"}
    tianjin.peer.published = [withdrawn, peer_jwk(tianjin.peer.body_key, "bj-body", "certificate")]

    first = await _ask_as_beijing(tianjin)
    again = await _ask_as_beijing(tianjin, {"Accept-Language": "zh-CN"})  # within the floor: the failure remembered

    detail = assert_problem(first, 401, slug="unauthenticated")["detail"]
    assert detail == "the calling node's key set holds no node key this node can use", detail
    assert assert_problem(again, 401)["detail"] == "调用方节点的密钥集中没有本节点可用的节点密钥"
    assert tianjin.peer.key_set_fetches == 1


async def test_a_calling_peer_whose_key_set_is_out_of_reach_is_still_told_it_cannot_be_fetched(
    tianjin: Tianjin,
) -> None:
    app = tianjin.app
    await app.state.federation.close()

    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="internal error")

    app.state.federation = Federation(app.state.context, app.state.sessions, transport=httpx.MockTransport(failing))

    for _attempt in range(2):
        response = await _ask_as_beijing(tianjin)
        detail = assert_problem(response, 401, slug="unauthenticated")["detail"]
        assert detail == "the calling node's key set cannot be fetched", detail


# An identity number after a lone digit and a space or hyphen (a list's "1", a count): the 18 digits read first from
# that digit on ("1 11010519491231002") are no number, and used to use up the real one, which then went unseen.
AFTER_A_DIGIT = [f"1 {NUMBER}", f"第3-{NUMBER}号", f"序号 7 {NUMBER.lower()}", f"1 1 {NUMBER}"]


@pytest.mark.parametrize("reason", AFTER_A_DIGIT)
async def test_a_reason_holding_an_identity_number_after_a_lone_digit_is_refused(
    app: FastAPI, client: httpx.AsyncClient, reason: str
) -> None:
    token = await ready_issuer(app, client)
    number = (await issued_certificate(client, token))["number"]

    response = await leaves_no_trace(
        app, client.post(f"/v1/certificates/{number}/suspend", json={"reason": reason}, headers=bearer(token))
    )

    assert_problem(response, 422, field="reason", message="identity number", secret=NUMBER)


async def test_an_evaluation_round_holding_an_identity_number_after_a_lone_digit_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The round is signed with the certificate: let through, the number could never be taken out again."""
    token = await ready_issuer(app, client)
    body: dict[str, Any] = certificate_body(evaluation_batch=f"2026 1 {NUMBER}")

    response = await leaves_no_trace(app, client.post("/v1/certificates", json=body, headers=bearer(token)))

    assert_problem(response, 422, field="evaluation_batch", message="identity number", secret=NUMBER)


async def test_a_certificate_whose_round_holds_an_identity_number_from_before_the_rule_is_still_corrected_and_found(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8ec58b2 refuses a new round holding an identity number; one signed before it stays as signed: a correction that
    leaves the round alone carries it over (it is not judged again), one that clears it takes it out, and a search
    for it as given still finds the certificate."""
    token = await ready_issuer(app, client)
    stored = f"2026 {NUMBER}"
    with monkeypatch.context() as before_the_rule:
        before_the_rule.setattr(schemas, "_holds_resident_id", lambda value: False)
        issued = await issued_certificate(client, token, evaluation_batch=stored)
    assert issued["evaluation_batch"] == stored

    found = await client.get("/v1/certificates", params={"evaluation_batch": stored}, headers=bearer(token))
    assert found.status_code == 200, found.text
    assert [item["number"] for item in found.json()["data"]] == [issued["number"]]

    kept = await client.post(
        f"/v1/certificates/{issued['number']}/correct",
        json={"reason": "姓名更正", "holder_name": "李四"},
        headers=bearer(token),
    )
    assert kept.status_code == 201, kept.text
    assert (kept.json()["holder"]["name"], kept.json()["evaluation_batch"]) == ("李四", stored)

    cleared = await client.post(
        f"/v1/certificates/{kept.json()['number']}/correct",
        json={"reason": "批次号误填", "evaluation_batch": None},
        headers=bearer(token),
    )
    assert cleared.status_code == 201, cleared.text
    assert cleared.json()["evaluation_batch"] is None


# --- 80e3264: how often a provider whose set is read but partly unusable is asked ------------------------------------


async def test_valid_unusable_and_made_up_kids_at_once_ask_the_provider_at_most_once_per_floor() -> None:
    """A set read with k1 usable and k2 for encryption only (the identity provider's ``empty_fails=False``): sign-ins
    alternating k1, k2 and made-up kids, all at once, make one fetch per ``MIN_REFETCH_SECONDS`` at most; a provider
    that then publishes k2 for signatures is heard on the first sign-in after the floor; one that fails is not asked
    again before it, and the kept k1 still answers meanwhile."""
    party = Party(_jwk("k1"), {**_jwk("k2"), "use": "enc"})
    keys = RemoteKeySet(URL, transport=httpx.MockTransport(party.handle), clock=lambda: party.now, empty_fails=False)

    async def sign_ins() -> list[bool]:
        kids = [("k1", "k2", f"made-up-{number}")[number % 3] for number in range(60)]
        return [key is not None for key in await asyncio.gather(*(keys.key(kid) for kid in kids))]

    assert (await sign_ins()).count(True) == 20
    party.now += MIN_REFETCH_SECONDS - 1
    await sign_ins()
    assert (party.fetches, keys.unusable("k2")) == (1, ["encryption"])
    party.now += 2
    await sign_ins()
    assert party.fetches == 2

    party.keys = [_jwk("k1"), _jwk("k2")]  # the provider fixes its key
    party.now += MIN_REFETCH_SECONDS + 1
    assert await keys.key("k2") is not None
    assert (party.fetches, keys.unusable("k2")) == (3, [])

    party.answer = httpx.Response(500, text="down")
    party.now += MIN_REFETCH_SECONDS + 1
    outcomes = await asyncio.gather(*(keys.key(f"other-{n}") for n in range(20)), return_exceptions=True)
    assert all(isinstance(outcome, KeySetUnavailable) for outcome in outcomes)
    assert await keys.key("k1") is not None
    assert party.fetches == 4
    await keys.close()
