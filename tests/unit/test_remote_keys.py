"""Another party's published keys (an identity provider's today, a peer node's for federation): fetched from the one
configured URL, cached, re-fetched early only for an unknown kid and not more often than a floor, and never answered
from a stale set when the party cannot be reached."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.auth.jwks import MAX_AGE_SECONDS, MIN_REFETCH_SECONDS, RemoteKeySet
from registry.errors import KeySetUnavailable

URL = "https://id.example.gov.cn/jwks.json"


def _jwk(kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate().public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"}


class Party:
    """A JWKS endpoint whose answer the test changes, counting the fetches; and a clock the test moves."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.answer: httpx.Response | None = None
        self.now = 1000.0

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == URL
        self.fetches += 1
        return self.answer or httpx.Response(200, json={"keys": self.keys})

    def key_set(self) -> RemoteKeySet:
        return RemoteKeySet(URL, transport=httpx.MockTransport(self.handle), clock=lambda: self.now)


async def test_keys_are_fetched_once_and_served_from_the_cache() -> None:
    party = Party(_jwk("k1"), _jwk("k2"))
    keys = party.key_set()
    assert await keys.key("k1") is not None
    party.now += MAX_AGE_SECONDS - 1
    assert await keys.key("k2") is not None
    assert party.fetches == 1
    party.now += 2
    assert await keys.key("k1") is not None
    assert party.fetches == 2  # older than the cache's age: fetched again
    await keys.close()


async def test_an_unknown_kid_fetches_again_but_not_more_often_than_the_floor() -> None:
    party = Party(_jwk("k1"))
    keys = party.key_set()
    await keys.key("k1")
    party.now += MIN_REFETCH_SECONDS + 1
    party.keys.append(_jwk("rotated"))
    assert await keys.key("rotated") is not None  # the party rotated: found on the early fetch
    assert party.fetches == 2
    for _ in range(50):  # made-up kids do not turn into requests to the party
        assert await keys.key("made-up") is None
    assert party.fetches == 2
    await keys.close()


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503, text="down"),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json=["not", "a", "key", "set"]),
        httpx.Response(200, json={"keys": "nope"}),
    ],
    ids=["error-status", "not-json", "not-an-object", "keys-not-a-list"],
)
async def test_a_party_that_answers_badly_is_unavailable(answer: httpx.Response) -> None:
    party = Party(_jwk("k1"))
    party.answer = answer
    keys = party.key_set()
    with pytest.raises(KeySetUnavailable):
        await keys.key("k1")
    await keys.close()


async def test_a_network_that_is_down_is_unavailable_and_a_stale_set_is_not_used() -> None:
    party = Party(_jwk("k1"))
    calls = {"down": False}

    def handle(request: httpx.Request) -> httpx.Response:
        if calls["down"]:
            raise httpx.ConnectError("network is unreachable", request=request)
        return party.handle(request)

    keys = RemoteKeySet(URL, transport=httpx.MockTransport(handle), clock=lambda: party.now)
    assert await keys.key("k1") is not None
    calls["down"] = True
    party.now += MAX_AGE_SECONDS + 1
    with pytest.raises(KeySetUnavailable):
        await keys.key("k1")  # the party may have withdrawn k1 since: not vouched for from the old copy
    await keys.close()


async def test_keys_that_cannot_be_used_do_not_count() -> None:
    party = Party(_jwk("good"), {"kid": "broken", "kty": "OKP", "crv": "Ed448x"}, {"no": "kid"}, "junk")  # type: ignore[arg-type]
    keys = party.key_set()
    assert await keys.key("good") is not None
    assert await keys.key("broken") is None
    await keys.close()


async def test_while_the_party_is_down_requests_fail_at_once_without_asking_it_again() -> None:
    party = Party(_jwk("k1"))
    party.answer = httpx.Response(503, text="down")
    keys = party.key_set()
    for _ in range(20):
        with pytest.raises(KeySetUnavailable):
            await keys.key("k1")
    assert party.fetches == 1
    party.answer = None
    party.now += MIN_REFETCH_SECONDS + 1
    assert await keys.key("k1") is not None  # back up: asked again, and answered
    assert party.fetches == 2
    await keys.close()


async def test_callers_arriving_together_share_one_fetch() -> None:
    party = Party(_jwk("k1"))

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # the party takes a while: everyone else arrives meanwhile
        return party.handle(request)

    keys = RemoteKeySet(URL, transport=httpx.MockTransport(slow), clock=lambda: party.now)
    found = await asyncio.gather(*(keys.key("k1") for _ in range(25)))
    assert all(key is not None for key in found)
    assert party.fetches == 1
    await keys.close()


_UNUSABLE = [
    {**_jwk("k1"), "use": "enc"},
    {**_jwk("k1"), "key_ops": ["encrypt"]},
    {**_jwk("k1"), "alg": ["EdDSA"]},
    {**_jwk("k1"), "alg": "eddsa"},
    {**_jwk("k1"), "kty": "okp"},
    {**_jwk("k1"), "crv": "Ed448x"},
    {**_jwk("k1"), "use": "wrap"},
]


async def test_a_set_read_with_no_usable_key_is_kept_saying_why_and_not_refetched_for_made_up_kids() -> None:
    """Before, a set fetched whole but holding no usable key was a failed fetch: KeySetUnavailable (the identity
    provider said "cannot be fetched; try again shortly") though the party had answered, and nothing said why."""
    party = Party(*_UNUSABLE)
    keys = RemoteKeySet(URL, transport=httpx.MockTransport(party.handle), clock=lambda: party.now, empty_fails=False)

    assert await keys.published("k1") == []
    assert keys.unusable("k1") == ["encryption", "no-verify", "alg", "alg", "kty", "key", "other-use"]
    assert keys.unusable("made-up") == []
    for number in range(50):  # made-up kids do not turn into requests to the party
        assert await keys.key(f"made-up-{number}") is None
    assert party.fetches == 1
    party.now += MIN_REFETCH_SECONDS + 1
    party.keys = [_jwk("k1")]  # the party fixed its key: found on the next early fetch
    assert await keys.key("k1") is not None
    assert (party.fetches, keys.unusable("k1")) == (2, [])
    await keys.close()


async def test_a_set_with_no_usable_key_is_still_a_failed_fetch_where_empty_fails() -> None:
    """The default (a peer node's keys): unchanged, a failure remembered for the floor."""
    party = Party(*_UNUSABLE)
    keys = party.key_set()
    for _ in range(5):
        with pytest.raises(KeySetUnavailable):
            await keys.key("k1")
    assert party.fetches == 1
    await keys.close()
