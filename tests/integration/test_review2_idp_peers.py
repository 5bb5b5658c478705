"""A second review of remote keys: a key published for encryption signs no holder in (identity provider) and speaks for
no peer node; a peer's retired node key stops speaking for it ``RETIRED_KEY_GRACE`` after its retirement, counted to
the moment it is used, not to when the key set holding it was fetched (kept ``KEY_SET_SECONDS``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from registry.config import Settings
from registry.db import utcnow
from registry.federation import protocol
from registry.federation.peers import KEY_SET_SECONDS, Federation
from tests.checks import assert_problem
from tests.factories import admin_token, create_issuer, issued_certificate, issuer_token, resident_id
from tests.integration.federation_support import HOLDER, Tianjin, peer_jwk, tianjin_with_fake_beijing
from tests.integration.holder_support import IDP_AUDIENCE, IDP_ISSUER, mock_identity_provider

ISSUER, AUDIENCE = IDP_ISSUER, IDP_AUDIENCE
SIGN_IN = "/v1/holder/sessions/external"


# --- identity provider ---------------------------------------------------------------------------------------------


def _published(key: Ed25519PrivateKey, kid: str, **members: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "EdDSA", **members}


class Provider:
    """A provider publishing a signing key and, beside it, keys marked for other uses (all Ed25519: a careless or
    compromised provider's encryption key is as able to sign as any)."""

    def __init__(self, app: FastAPI, **members_by_kid: dict[str, Any]) -> None:
        self.keys = {kid: Ed25519PrivateKey.generate() for kid in ("idp-sig", *members_by_kid)}
        document = {"keys": [_published(self.keys["idp-sig"], "idp-sig", use="sig")]}
        document["keys"] += [_published(self.keys[kid], kid, **members) for kid, members in members_by_kid.items()]

        def serve(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json=document)

        mock_identity_provider(app, serve)

    def token(self, number: str, kid: str) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-1", "iat": now, "exp": now + 300, "id_number": number}
        return jwt.encode(claims, self.keys[kid], algorithm="EdDSA", headers={"kid": kid, "typ": "JWT"})


async def _holder(app: FastAPI, client: httpx.AsyncClient) -> str:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = resident_id(birth="19880808")
    await issued_certificate(client, issuer, holder={"name": "冯十二", "id_type": "resident_id", "id_number": number})
    return number


_OTHER_USES = {
    "use enc": {"use": "enc"},
    "key_ops without verify": {"key_ops": ["encrypt", "decrypt"]},
}


@pytest.mark.parametrize("members", _OTHER_USES.values(), ids=_OTHER_USES.keys())
async def test_a_token_signed_with_a_key_published_for_encryption_signs_no_one_in(
    app: FastAPI, client: httpx.AsyncClient, members: dict[str, Any]
) -> None:
    """Found: the provider's key marked ``"use": "enc"`` (or ``key_ops`` without ``verify``) was used to check an ID
    token's signature, so whoever holds that key (a decryption key is shared more widely) could sign a holder in."""
    provider = Provider(app, **{"idp-enc": members})
    number = await _holder(app, client)

    refused = await client.post(SIGN_IN, json={"id_token": provider.token(number, "idp-enc")})
    accepted = await client.post(SIGN_IN, json={"id_token": provider.token(number, "idp-sig")})

    detail = str(assert_problem(refused, 401, slug="unauthenticated", secret=number)["detail"])
    assert "not published" in detail, detail
    assert number not in refused.text
    assert accepted.status_code == 201, accepted.text


async def test_a_rotated_in_key_signs_in_once_the_set_is_read_again(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A provider's rotation: a kid it starts signing with, published beside the old one, signs in like the old."""
    provider = Provider(app, **{"idp-next": {"use": "sig"}})
    number = await _holder(app, client)
    for kid in ("idp-sig", "idp-next"):
        response = await client.post(SIGN_IN, json={"id_token": provider.token(number, kid)})
        assert response.status_code == 201, (kid, response.text)


# --- peers ---------------------------------------------------------------------------------------------------------


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    async with tianjin_with_fake_beijing(settings) as node:
        yield node


async def _verify(tianjin: Tianjin) -> dict[str, Any]:
    response = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": HOLDER})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _on_clock(tianjin: Tianjin, now: list[float]) -> None:
    state = tianjin.app.state
    transport = httpx.MockTransport(tianjin.peer.handle)
    state.federation = Federation(state.context, state.sessions, transport=transport, clock=lambda: now[0])


async def test_a_retired_node_key_stops_speaking_for_the_peer_at_its_grace_not_a_key_set_later(
    tianjin: Tianjin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found: the retired key was judged only when the peer's key set was fetched, and the set is kept a minute, so a
    key retired ``RETIRED_KEY_GRACE`` (240 s) ago less a moment kept signing answers trusted for up to a minute more
    (about 300 s in all). Now the grace is counted to each use."""
    await tianjin.app.state.federation.close()
    now = [time.monotonic()]
    _on_clock(tianjin, now)
    grace = protocol.RETIRED_KEY_GRACE.total_seconds()
    tianjin.peer.published = [
        {
            **peer_jwk(tianjin.peer.node_key, "bj-node", "access_token"),
            "status": "retired",
            "valid_until": (utcnow() - timedelta(seconds=grace - 20)).isoformat(),
        }
    ]
    trusted = await _verify(tianjin)

    later = KEY_SET_SECONDS - 10  # within the minute the key set is kept: not fetched again
    now[0] += later

    def moved() -> datetime:
        return utcnow() + timedelta(seconds=later)

    monkeypatch.setattr(protocol, "utcnow", moved)  # the statement, signed now, is 50 s old: fresh enough
    answer = await _verify(tianjin)

    assert (trusted["result"], trusted["answered_by"]) == ("revoked", "BJ")
    assert (answer["result"], answer["certificate"], answer["reason"]) == ("unknown", None, "peer_answer_not_trusted")
    assert tianjin.peer.key_set_fetches == 1


async def test_a_key_published_for_encryption_does_not_speak_for_the_peer(tianjin: Tianjin) -> None:
    tianjin.peer.published = [{**peer_jwk(tianjin.peer.node_key, "bj-node", "access_token"), "use": "enc"}]

    answer = await _verify(tianjin)

    assert (answer["result"], answer["certificate"], answer["reason"]) == ("unknown", None, "peer_keys_unavailable")
