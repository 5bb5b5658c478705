"""Discoverable issuers and keys: a body's issuer identifier resolves to a document binding its keys to it with their
algorithm and validity; a credential's ``kid`` is a URL that dereferences to the key that verifies it; SD-JWT VC issuer
metadata answers at ``/.well-known/jwt-vc-issuer``; the JWKS is served as ``application/jwk-set+json`` and lists each
body key under both its kids."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from fastapi import FastAPI
from joserfc import jws as joserfc_jws
from joserfc.jwk import JWKRegistry

from tests.checks import assert_problem
from tests.factories import bearer, create_issuer, issued_certificate
from tests.integration.lifecycle_support import CODE, OTHER, set_up

BASE = "https://registry.test"
ISSUER_ID = f"{BASE}/v1/issuers/{CODE}"


async def _credential(client: httpx.AsyncClient, token: str, number: str) -> str:
    response = await client.get(f"/v1/certificates/{number}/credential", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.text.strip()


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET an absolute URL the registry published, on the test client."""
    assert url.startswith(BASE), url
    return await client.get(urlsplit(url).path)


async def test_the_issuer_identifier_resolves_to_a_document_binding_each_key_with_its_validity(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    first = await issued_certificate(client, world.issuer)
    credential = await _credential(client, world.issuer, first["number"])
    issuer_id = jwt.decode(credential, options={"verify_signature": False})["iss"]
    assert issuer_id == ISSUER_ID
    rotated = await client.post(
        f"/v1/issuers/{CODE}/keys/rotate", json={"algorithm": "ES256"}, headers=bearer(world.admin)
    )
    assert rotated.status_code == 201, rotated.text

    response = await _get(client, issuer_id)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["id"] == issuer_id
    assert document["code"] == CODE
    assert document["signing_keys"] == [first["kid"], rotated.json()["kid"]]  # the existing shape stays
    old, new = document["keys"]
    assert (old["kid"], old["status"], old["algorithm"]) == (first["kid"], "retired", "Ed25519")
    # Issuance times are whole seconds.
    assert datetime.fromisoformat(old["valid_from"]).replace(microsecond=0) <= datetime.fromisoformat(
        first["issued_at"]
    )
    assert datetime.fromisoformat(old["valid_until"]) >= datetime.fromisoformat(first["issued_at"])
    assert old["compromised_from"] is None
    assert (new["kid"], new["status"], new["algorithm"], new["valid_until"]) == (
        rotated.json()["kid"],
        "active",
        "ES256",
        None,
    )
    for key in (old, new):
        assert key["id"] == f"{issuer_id}/keys/{key['kid']}"
        assert key["jwk"]["kid"] == key["id"]
        assert key["jwk"]["alg"] == key["algorithm"]
        assert "d" not in key["jwk"]
    assert (old["jwk"]["kty"], new["jwk"]["kty"], new["jwk"]["crv"]) == ("OKP", "EC", "P-256")


async def test_a_compromised_key_stays_in_the_issuer_document_with_the_date_it_was_cut_off(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    first = await issued_certificate(client, world.issuer)
    since = "2026-01-01T00:00:00+00:00"
    marked = await client.post(
        f"/v1/issuers/{CODE}/keys/{first['kid']}/compromise",
        json={"compromised_from": since},
        headers=bearer(world.admin),
    )
    assert marked.status_code == 200, marked.text
    document = (await client.get(f"/v1/issuers/{CODE}")).json()
    compromised = next(key for key in document["keys"] if key["kid"] == first["kid"])
    assert compromised["status"] == "compromised"
    assert datetime.fromisoformat(compromised["compromised_from"]) == datetime.fromisoformat(since)
    assert compromised["jwk"]["compromised_from"] is not None
    assert len(document["keys"]) == 2  # and its replacement


@pytest.mark.parametrize("algorithm", ["Ed25519", "ES256"])
async def test_the_kid_of_a_credential_dereferences_to_the_key_that_verifies_it(
    app: FastAPI, client: httpx.AsyncClient, algorithm: str
) -> None:
    world = await set_up(app, client)
    rotated = await client.post(
        f"/v1/issuers/{CODE}/keys/rotate", json={"algorithm": algorithm}, headers=bearer(world.admin)
    )
    assert rotated.status_code == 201, rotated.text
    certificate = await issued_certificate(client, world.issuer)
    credential = await _credential(client, world.issuer, certificate["number"])
    kid = jwt.get_unverified_header(credential)["kid"]
    assert kid == f"{ISSUER_ID}/keys/{certificate['kid']}"

    response = await _get(client, kid)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/jwk+json"
    jwk = response.json()
    assert (jwk["kid"], jwk["alg"], jwk["status"], jwk["issuer_code"]) == (kid, algorithm, "active", CODE)
    assert jwk["valid_from"] is not None
    verified = joserfc_jws.deserialize_compact(credential, JWKRegistry.import_key(jwk), algorithms=[algorithm])
    assert json.loads(verified.payload)["credentialSubject"]["certificateNumber"] == certificate["number"]


async def test_a_key_url_naming_another_body_or_no_key_is_404(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    other = await create_issuer(client, world.admin, code=OTHER)
    (other_kid,) = other["signing_keys"]
    for path in (
        f"/v1/issuers/{CODE}/keys/{other_kid}",
        f"/v1/issuers/{CODE}/keys/no-such-key",
        f"/v1/issuers/NO-SUCH-BODY/keys/{other_kid}",
    ):
        response = await client.get(path)
        assert_problem(response, 404)


async def test_jwt_vc_issuer_metadata_answers_at_both_paths_for_a_body(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    kid = jwt.get_unverified_header(await _credential(client, world.issuer, certificate["number"]))["kid"]
    answers = []
    for path in (f"/.well-known/jwt-vc-issuer/v1/issuers/{CODE}", f"/.well-known/jwt-vc-issuer/issuers/{CODE}"):
        response = await client.get(path)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert answers[0] == answers[1]
    metadata: dict[str, Any] = answers[0]
    assert metadata["issuer"] == ISSUER_ID
    assert "jwks_uri" not in metadata  # SD-JWT VC: one or the other
    published = {key["kid"]: key for key in metadata["jwks"]["keys"]}
    assert set(published) == {certificate["kid"], kid}
    assert {key["issuer_code"] for key in published.values()} == {CODE}


async def test_jwt_vc_issuer_metadata_of_the_registry_names_its_token_keys(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await set_up(app, client)
    response = await client.get("/.well-known/jwt-vc-issuer")
    assert response.status_code == 200, response.text
    metadata = response.json()
    assert metadata["issuer"] == BASE
    assert metadata["jwks"]["keys"]
    assert {key["key_use"] for key in metadata["jwks"]["keys"]} == {"access_token"}


async def test_jwt_vc_issuer_metadata_of_an_unknown_body_is_404(app: FastAPI, client: httpx.AsyncClient) -> None:
    await set_up(app, client)
    for path in ("/.well-known/jwt-vc-issuer/v1/issuers/NO-SUCH-BODY", "/.well-known/jwt-vc-issuer/issuers/NO-SUCH"):
        assert_problem(await client.get(path), 404)
    assert_problem(await client.get("/v1/issuers/NO-SUCH-BODY"), 404)


async def test_the_jwks_is_a_jwk_set_listing_each_body_key_under_both_kids(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    published = {key["kid"]: key for key in response.json()["keys"]}
    short, url = published[certificate["kid"]], published[f"{ISSUER_ID}/keys/{certificate['kid']}"]
    # The same key, bound to the same body with the same validity; each with the alg its credentials carry.
    assert (short["alg"], url["alg"]) == ("EdDSA", "Ed25519")
    for member in ("kty", "crv", "x", "key_use", "issuer_code", "status", "valid_from", "valid_until"):
        assert short[member] == url[member], member
