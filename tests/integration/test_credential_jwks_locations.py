"""With a trust list, `registry verify-credential --jwks URL` takes a key set only from where the trusted registry
publishes one: its ``/.well-known/jwks.json``. Any other page under the registry (one that shows what someone typed,
a share page, a page a proxy in front of it serves) is whatever its author made it, so it is never read as keys."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI

from registry.credentials import sources
from registry.credentials.offline import STEPS, verify_credential
from tests.integration.test_credential_trust import JWKS, REGISTRY, _registry
from tests.integration.test_offline import _resign

ECHO = f"{REGISTRY}/s/a-page-that-shows-what-its-author-typed"


def _steps(token: str, gathered: sources.Sources) -> dict[str, str]:
    report = verify_credential(
        token, jwks=gathered.jwks, status_lists=gathered.status_lists, unreadable=gathered.unreadable
    )
    return {step.name: f"{step.outcome} {step.detail}" for step in report.steps}


def _forged(genuine: str, served_jwks: str) -> tuple[str, str]:
    """The genuine credential for another holder, signed by the forger's key under the genuine kid; and a key set
    that holds the forger's key as that kid, with the rest of the registry's JWK (its use, its validity)."""
    kid = jwt.get_unverified_header(genuine)["kid"]
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    theirs = next(jwk for jwk in json.loads(served_jwks)["keys"] if jwk["kid"] == kid)
    mine = {**theirs, "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), "alg": "EdDSA"}
    claims: dict[str, Any] = jwt.decode(genuine, options={"verify_signature": False})
    claims["credentialSubject"]["name"] = "李四"
    forged = _resign(genuine, key=key, kid=kid, change={"credentialSubject": claims["credentialSubject"]})
    return forged, json.dumps({"keys": [mine]})


async def test_a_page_under_the_trusted_registry_that_is_not_its_jwks_is_not_taken_for_keys(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    genuine, _list_url, network = await _registry(app, client)
    forged, keys = _forged(genuine, network.served[JWKS])
    network.served[ECHO] = keys  # the registry serves, at that page, what the forger typed

    gathered, requests = network.gather(forged, jwks=ECHO, trusted=[REGISTRY])

    assert requests == [], "nothing is fetched from a page that is not the registry's JWKS"
    said = _steps(forged, gathered)["signature"]
    assert said.startswith(f"unknown JWKS {ECHO} is not where {REGISTRY} publishes its keys"), said
    assert f"give --jwks {JWKS}, or no --jwks" in said, said


async def test_without_a_trust_list_a_page_under_the_credentials_registry_is_not_taken_for_keys_either(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The forger hands the verifier the credential and "its registry's keys": a link on the genuine registry's host,
    to a page that shows what the forger typed. The host is the registry's; the page is not its key set."""
    genuine, _list_url, network = await _registry(app, client)
    forged, keys = _forged(genuine, network.served[JWKS])
    network.served[ECHO] = keys

    gathered, requests = network.gather(forged, jwks=ECHO)

    assert requests == []
    assert _steps(forged, gathered)["signature"].startswith(f"unknown JWKS {ECHO} is not where {REGISTRY} publishes")
    gathered, requests = network.gather(genuine, jwks=JWKS)  # its own JWKS is taken, as before
    assert requests[0] == JWKS, requests
    assert [step.split()[0] for step in _steps(genuine, gathered).values()] == ["pass"] * len(STEPS)


async def test_only_the_trusted_registrys_own_jwks_url_is_taken(app: FastAPI, client: httpx.AsyncClient) -> None:
    genuine, _list_url, network = await _registry(app, client)
    for given in (JWKS, "https://Registry.test:443/.well-known/jwks.json"):
        network.served[given] = network.served[JWKS]
        gathered, requests = network.gather(genuine, jwks=given, trusted=[REGISTRY])
        assert requests[0] == JWKS, requests  # the same URL, as httpx writes it
        assert [step.split()[0] for step in _steps(genuine, gathered).values()] == ["pass"] * len(STEPS), given
    for other in (
        f"{REGISTRY}/v1/issuers/BJ-TEST/keys.json",  # under the registry, but no key set it publishes
        f"{REGISTRY}/.well-known/jwt-vc-issuer",  # its metadata: keys inside, but not a key set
        f"{REGISTRY}/.well-known/jwks.json?x=1",  # the JWKS path, asked with a query the page may echo
        f"{REGISTRY}/x/../.well-known/jwks.json",
        f"{REGISTRY}/.well-known/jwks.json/",
        f"{REGISTRY}/s/.well-known/jwks.json",
    ):
        gathered, requests = network.gather(genuine, jwks=other, trusted=[REGISTRY])
        assert requests == [], (other, requests)
        assert _steps(genuine, gathered)["signature"].startswith(f"unknown JWKS {other} is not "), other


def test_the_registrys_jwks_is_known_by_its_base_url() -> None:
    assert sources.is_registry_jwks("https://registry.test/.well-known/jwks.json", "https://registry.test/")
    assert sources.is_registry_jwks("http://127.0.0.1:8000/bj/.well-known/jwks.json", "http://127.0.0.1:8000/bj")
    for other in (
        "https://registry.test/bj/.well-known/jwks.json",  # another registry's base, on the same host
        "https://registry.test.evil.example/.well-known/jwks.json",
        "https://registry.test/.well-known/jwks.json#keys",
        "https://registry.test/.well-known/%6Awks.json",
        "https://registry.test//.well-known/jwks.json",
    ):
        assert not sources.is_registry_jwks(other, "https://registry.test"), other
