"""Algorithm agility: an evaluation body's key is Ed25519 (RFC 9864's name in new headers) or, from a rotation, ES256;
either way its credentials verify with an independent JOSE library (joserfc) against the published JWKS, online and
offline (`registry verify-credential`). Credentials issued before (``EdDSA``, short kid) still verify, and a header that
names another algorithm than its key's is refused."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, cast

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from joserfc import jws as joserfc_jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from registry.context import RegistryContext
from registry.credentials.offline import status_entries, verify_credential
from registry.issuers import service as issuers
from registry.keys import service as keys
from registry.keys.models import KeyUse
from tests.checks import run_sql
from tests.conftest import MASTER_KEY
from tests.factories import bearer, issued_certificate
from tests.integration.lifecycle_support import CODE, set_up, verified

KEYS_URL = f"https://registry.test/v1/issuers/{CODE}/keys/"
ALGORITHMS = ["Ed25519", "ES256"]
KEY_TYPES = {"Ed25519": ("OKP", "Ed25519"), "ES256": ("EC", "P-256")}


async def _body_signing_with(app: FastAPI, client: httpx.AsyncClient, algorithm: str) -> tuple[str, str, str]:
    """The default body, its key rotated to ``algorithm`` (Ed25519 is what it starts with): admin and issuer tokens
    and the current kid."""
    world = await set_up(app, client)
    rotated = await client.post(
        f"/v1/issuers/{CODE}/keys/rotate", json={"algorithm": algorithm}, headers=bearer(world.admin)
    )
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["algorithm"] == algorithm
    return world.admin, world.issuer, rotated.json()["kid"]


async def _credential(client: httpx.AsyncClient, token: str, number: str) -> str:
    response = await client.get(f"/v1/certificates/{number}/credential", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.text.strip()


async def _jwks(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/jwk-set+json"
    document: dict[str, Any] = response.json()
    return document


async def _status_lists(client: httpx.AsyncClient, credential: str) -> dict[str, str]:
    claims = jwt.decode(credential, options={"verify_signature": False})
    lists = {}
    for entry in status_entries(claims):
        url = entry["statusListCredential"]
        response = await client.get(url)
        assert response.status_code == 200, response.text
        lists[url] = response.text.strip()
    return lists


def _joserfc_claims(token: str, jwks: dict[str, Any], alg: str) -> dict[str, Any]:
    """Verified by joserfc alone: it finds the key by the header's kid and insists the JWK's alg is the header's."""
    key_set = KeySet.import_key_set(cast(KeySetSerialization, jwks))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns that EdDSA is deprecated (RFC 9864): old credentials say it
        verified = joserfc_jws.deserialize_compact(token, key_set, algorithms=[alg])
    claims: dict[str, Any] = json.loads(verified.payload)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _body_key(app: FastAPI) -> tuple[Any, str]:
    """The body's current private key as the registry holds it, and its short kid."""
    context: RegistryContext = app.state.context
    async with app.state.sessions() as session:
        issuer = await issuers.get_by_code(session, CODE)
        assert issuer is not None
        key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
        assert key is not None
        return context.keyring.signer(key).private_key, key.kid


def _saved(directory: Path, credential: str, jwks: dict[str, Any], lists: dict[str, str]) -> list[str]:
    """The files a verifier saved, as ``registry verify-credential --offline`` arguments."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "credential.vc.jwt").write_text(credential, encoding="utf-8")
    (directory / "jwks.json").write_text(json.dumps(jwks), encoding="utf-8")
    args = [str(directory / "credential.vc.jwt"), "--offline", "--jwks", str(directory / "jwks.json")]
    for number, token in enumerate(lists.values()):
        path = directory / f"list-{number}.vc.jwt"
        path.write_text(token, encoding="utf-8")
        args += ["--status-list", str(path)]
    return args


async def _verify_credential_command(
    directory: Path, credential: str, jwks: dict[str, Any], lists: dict[str, str]
) -> tuple[int | None, str]:
    args = _saved(directory, credential, jwks, lists)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "verify-credential", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, out.decode()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_credentials_of_either_algorithm_verify_with_joserfc_online_and_offline(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path, algorithm: str
) -> None:
    _, issuer, kid = await _body_signing_with(app, client, algorithm)
    certificate = await issued_certificate(client, issuer)
    assert certificate["kid"] == kid
    credential = await _credential(client, issuer, certificate["number"])

    header = jwt.get_unverified_header(credential)
    assert (header["alg"], header["kid"], header["typ"]) == (algorithm, KEYS_URL + kid, "vc+jwt")
    jwks = await _jwks(client)
    jwk = next(key for key in jwks["keys"] if key["kid"] == header["kid"])
    assert ((jwk["kty"], jwk["crv"]), jwk["alg"]) == (KEY_TYPES[algorithm], algorithm)
    claims = _joserfc_claims(credential, jwks, algorithm)
    assert claims["credentialSubject"]["certificateNumber"] == certificate["number"]
    assert claims["iss"] == f"https://registry.test/v1/issuers/{CODE}"

    online = await verified(client, certificate)
    assert (online["result"], online["signature_valid"]) == ("valid", True)

    lists = await _status_lists(client, credential)
    for token in lists.values():  # the status lists too are signed with the body's key, under its URL
        assert jwt.get_unverified_header(token)["alg"] == algorithm
        _joserfc_claims(token, jwks, algorithm)
    report = verify_credential(credential, jwks=jwks, status_lists=lists)
    assert report.verdict == "VALID", report.render()
    code, out = await _verify_credential_command(tmp_path, credential, jwks, lists)
    assert code == 0, out
    assert f"{algorithm} signature by {KEYS_URL + kid} verifies" in out


async def test_an_es256_certificate_signature_verifies_in_full_without_its_record_seal(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, issuer, _kid = await _body_signing_with(app, client, "ES256")
    certificate = await issued_certificate(client, issuer)
    header = json.loads(base64.urlsafe_b64decode(certificate["signature"].split(".")[0] + "=="))
    assert (header["alg"], header["kid"]) == ("ES256", certificate["kid"])
    await run_sql(app, "UPDATE certificates SET record_seal = NULL WHERE number = :n", n=certificate["number"])
    answer = await verified(client, certificate)
    assert (answer["result"], answer["signature_valid"]) == ("valid", True)
    await run_sql(app, "UPDATE certificates SET level = 'senior' WHERE number = :n", n=certificate["number"])
    assert (await verified(client, certificate))["result"] == "unknown"


async def test_a_credential_issued_before_rfc_9864_still_verifies_offline_and_with_joserfc(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    credential = await _credential(client, world.issuer, certificate["number"])
    assert jwt.get_unverified_header(credential)["alg"] == "Ed25519"
    # As the registry signed it before: "EdDSA", the short kid, the same key and claims.
    private_key, kid = await _body_key(app)
    claims = jwt.decode(credential, options={"verify_signature": False})
    old = jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": kid, "typ": "vc+jwt"})

    jwks = await _jwks(client)
    assert _joserfc_claims(old, jwks, "EdDSA")["jti"] == claims["jti"]
    lists = await _status_lists(client, credential)
    report = verify_credential(old, jwks=jwks, status_lists=lists)
    assert report.verdict == "VALID", report.render()
    assert f"EdDSA signature by {kid} verifies" in report.render()


async def test_a_jwks_saved_before_keys_had_urls_still_verifies_new_credentials_offline(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    credential = await _credential(client, world.issuer, certificate["number"])
    jwks = await _jwks(client)
    saved_before = {"keys": [key for key in jwks["keys"] if not key["kid"].startswith("https://")]}
    report = verify_credential(credential, jwks=saved_before, status_lists=await _status_lists(client, credential))
    assert report.verdict == "VALID", report.render()


@pytest.mark.parametrize("claimed", ["ES256", "HS256", "none"])
async def test_a_header_naming_another_algorithm_than_the_keys_fails(
    app: FastAPI, client: httpx.AsyncClient, claimed: str
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    credential = await _credential(client, world.issuer, certificate["number"])
    private_key, kid = await _body_key(app)
    assert isinstance(private_key, Ed25519PrivateKey)
    # Signed by the body's own Ed25519 key, but the header says another algorithm.
    header = {"alg": claimed, "kid": KEYS_URL + kid, "typ": "vc+jwt"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{credential.split('.')[1]}"
    confused = f"{signing_input}.{_b64(private_key.sign(signing_input.encode()))}"

    jwks = await _jwks(client)
    report = verify_credential(confused, jwks=jwks, status_lists=await _status_lists(client, credential))
    assert report.verdict == "NOT VALID", report.render()
    assert report.steps[1].name == "signature"
    assert report.steps[1].outcome == "fail"
    assert f"algorithm {claimed!r} is not accepted" in report.steps[1].detail
    with pytest.raises((JoseError, ValueError)):
        _joserfc_claims(confused, jwks, claimed)


async def test_an_es256_kid_with_an_ed25519_header_fails(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, issuer, _kid = await _body_signing_with(app, client, "ES256")
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])
    header, payload, signature = credential.split(".")
    relabelled = json.loads(base64.urlsafe_b64decode(header + "=="))
    relabelled["alg"] = "Ed25519"
    forged = f"{_b64(json.dumps(relabelled).encode())}.{payload}.{signature}"
    report = verify_credential(forged, jwks=await _jwks(client), status_lists={})
    assert report.verdict == "NOT VALID"
    assert "algorithm 'Ed25519' is not accepted" in report.render()


async def test_rotation_refuses_an_algorithm_it_does_not_know(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    response = await client.post(
        f"/v1/issuers/{CODE}/keys/rotate", json={"algorithm": "RS256"}, headers=bearer(world.admin)
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(error["field"].endswith("algorithm") for error in response.json()["errors"])
    # Without a body the default holds: Ed25519.
    default = await client.post(f"/v1/issuers/{CODE}/keys/rotate", headers=bearer(world.admin))
    assert default.status_code == 201, default.text
    assert default.json()["algorithm"] == "Ed25519"


async def test_a_body_registered_with_es256_signs_with_es256_from_its_first_certificate(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client, key_algorithm="ES256")
    document = (await client.get(f"/v1/issuers/{CODE}")).json()
    assert [key["algorithm"] for key in document["keys"]] == ["ES256"]
    certificate = await issued_certificate(client, world.issuer)
    credential = await _credential(client, world.issuer, certificate["number"])
    assert jwt.get_unverified_header(credential)["alg"] == "ES256"
    _joserfc_claims(credential, await _jwks(client), "ES256")


async def test_keys_rotate_command_takes_an_algorithm(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    world = await set_up(app, client)
    env = {"REGISTRY_DATABASE_URL": database_url, "REGISTRY_MASTER_KEY": MASTER_KEY, "REGISTRY_ENV": "test"}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "cli", "keys", "rotate", "--issuer", CODE, "--algorithm", "ES256"),
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    printed = json.loads(out.decode())
    assert printed["algorithm"] == "ES256"
    certificate = await issued_certificate(client, world.issuer)
    assert certificate["kid"] == printed["kid"]
    credential = await _credential(client, world.issuer, certificate["number"])
    assert jwt.get_unverified_header(credential)["alg"] == "ES256"
