"""What a peer node's answer must agree with before it is passed on, and what a peer's published key set must hold:
checks that need no network (registry.federation.answers, registry.auth.jwks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.auth.jwks import MIN_REFETCH_SECONDS, RemoteKeySet
from registry.db import utcnow
from registry.errors import KeySetUnavailable
from registry.federation import answers
from registry.holders.identity import IdType, mask_id_number
from tests.factories import resident_id

URL = "http://bj-node.test/.well-known/jwks.json"


@pytest.mark.parametrize(
    ("id_type", "number"),
    [
        (IdType.RESIDENT_ID, resident_id()),
        (IdType.PASSPORT, "E12345678"),
        (IdType.PASSPORT, "AB123"),
        (IdType.HK_MACAU_PERMIT, "H12345678"),
        (IdType.FOREIGN_PERMANENT_RESIDENCE, "USA110079091801"),
    ],
)
def test_every_masked_form_this_software_makes_counts_as_masked(id_type: IdType, number: str) -> None:
    assert answers.is_masked(mask_id_number(id_type, number))


@pytest.mark.parametrize(
    "shown",
    [resident_id(), "11010519491231002X", "110105********1234", "11**************34 ", "", "1234", "**" + "9" * 15],
)
def test_a_full_or_foreign_shaped_identity_number_is_not_masked(shown: str) -> None:
    assert not answers.is_masked(shown)


def test_a_check_is_fresh_only_within_the_cache_bound_and_the_clock_skew() -> None:
    now = utcnow()
    skew = answers.CLOCK_SKEW_SECONDS
    assert answers.is_fresh(now, max_age_seconds=0)
    assert answers.is_fresh(now - timedelta(seconds=60 + skew - 1), max_age_seconds=60)
    assert not answers.is_fresh(now - timedelta(seconds=60 + skew + 5), max_age_seconds=60)
    assert not answers.is_fresh(now - timedelta(days=330), max_age_seconds=60)
    assert not answers.is_fresh(now + timedelta(seconds=skew + 5), max_age_seconds=60)
    assert not answers.is_fresh(datetime.now(UTC).replace(tzinfo=None), max_age_seconds=60)  # no offset: not ours


def _jwk(kid: str, **changes: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate().public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "EdDSA", "use": "sig", **changes}


class Party:
    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.now = 1000.0
        self.trickle = False

    async def _trickle(self) -> AsyncIterator[bytes]:
        yield b"{"
        while True:
            await asyncio.sleep(0.05)
            yield b" "

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.trickle:
            return httpx.Response(200, content=self._trickle())
        return httpx.Response(200, json={"keys": self.keys})

    def key_set(self, timeout: float = 5.0) -> RemoteKeySet:
        return RemoteKeySet(URL, transport=httpx.MockTransport(self.handle), timeout=timeout, clock=lambda: self.now)


async def test_one_malformed_key_is_skipped_on_its_own_and_the_good_ones_kept() -> None:
    party = Party(_jwk("bad", alg=["EdDSA"]), _jwk("good"), _jwk("bad-type", kty=["OKP"]))
    keys = party.key_set()
    assert await keys.key("good") is not None
    assert await keys.key("bad") is None
    await keys.close()


async def test_a_key_set_with_no_usable_key_is_a_failed_fetch_and_the_backoff_applies() -> None:
    party = Party(_jwk("bad", alg=["EdDSA"]))
    keys = party.key_set()
    for _ in range(5):
        with pytest.raises(KeySetUnavailable):
            await keys.key("bad")
    assert party.fetches == 1
    party.now += MIN_REFETCH_SECONDS + 1
    party.keys = [_jwk("bad")]
    assert await keys.key("bad") is not None
    await keys.close()


async def test_a_key_set_trickled_a_byte_at_a_time_is_given_up_after_the_timeout() -> None:
    party = Party(_jwk("k1"))
    party.trickle = True
    keys = party.key_set(timeout=0.3)
    with pytest.raises(KeySetUnavailable):
        await asyncio.wait_for(keys.key("k1"), timeout=5)
    with pytest.raises(KeySetUnavailable):
        await asyncio.wait_for(keys.key("k1"), timeout=0.1)  # remembered: not waited out again
    assert party.fetches == 1
    await keys.close()
