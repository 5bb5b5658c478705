"""A checkpoint a partner kept still verifies after the registry's key is rotated out and every token it signed has
expired: the key stays in the JWKS by its kid (and by the key hash its note names), as a checkpoint key that verifies
no token. Checked the way a partner would, without the registry's code: joserfc reads the JWK, cryptography verifies
the C2SP note signature, the timestamped cosignature and the JSON ``signature``."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from joserfc.jwk import OKPKey

from registry.auth import tokens
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import transaction
from registry.federation import protocol
from registry.keys import service as keys
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer, certificate_body
from tests.integration.auth_support import ACCESS_TOKEN_TYP, assert_token_refused, fresh_claims, make_world, sign

ORIGIN = "registry.test/transparency"
NOTE_SIGNATURE, TIMESTAMPED_SIGNATURE = 0x01, 0x04


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _public_key(jwk: dict[str, Any]) -> Ed25519PublicKey:
    """The JWK as joserfc reads it (another JOSE library than the registry's), as a cryptography Ed25519 key."""
    key = OKPKey.import_key(jwk).get_op_key("verify")
    assert isinstance(key, Ed25519PublicKey)
    return key


def _key_hash(signature_type: int, key: Ed25519PublicKey) -> bytes:
    """c2sp.org/signed-note: SHA-256(key name || 0x0A || signature type || public key)[:4]."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(ORIGIN.encode() + b"\n" + bytes([signature_type]) + raw).digest()[:4]


def _note_signatures(note: str) -> tuple[str, list[bytes]]:
    text, _, block = note.rpartition("\n\n")
    blobs = []
    for line in block.splitlines():
        name, _, encoded = line.removeprefix("\u2014 ").partition(" ")
        assert name == ORIGIN, line
        blobs.append(_b64(encoded))
    return text + "\n", blobs


def _verify_kept(checkpoint: dict[str, Any], key: Ed25519PublicKey) -> None:
    """Every signature the checkpoint carries, checked with ``key`` alone (each raises InvalidSignature if forged)."""
    text, blobs = _note_signatures(checkpoint["note"])
    assert text == f"{ORIGIN}\n{checkpoint['tree_size']}\n{checkpoint['root_hash']}\n"
    by_hash = {blob[:4]: blob[4:] for blob in blobs}
    key.verify(by_hash[_key_hash(NOTE_SIGNATURE, key)], text.encode())
    stamped = by_hash[_key_hash(TIMESTAMPED_SIGNATURE, key)]
    assert int.from_bytes(stamped[:8], "big") == checkpoint["timestamp"]
    cosigned = f"cosignature/v1\ntime {checkpoint['timestamp']}\n{text}".encode()
    key.verify(stamped[8:], cosigned)
    key.verify(_b64(checkpoint["signature"]), cosigned)


async def _jwks(client: httpx.AsyncClient, path: str = "/.well-known/jwks.json") -> list[dict[str, Any]]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    found: list[dict[str, Any]] = document.get("jwks", document)["keys"]
    return found


async def _checkpoint(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/v1/transparency/checkpoint")
    assert response.status_code == 200, response.text
    checkpoint: dict[str, Any] = response.json()
    return checkpoint


async def _retired_token(app: FastAPI, kid: str, model: str) -> str:
    """A new access token, like ``model`` but fresh, signed with the retired key ``kid`` (taken from the database)."""
    context: RegistryContext = app.state.context
    async with transaction(app.state.sessions) as session:
        key = await keys.get_by_kid(session, kid)
    assert key is not None
    claims = fresh_claims(model, jti=str(uuid.uuid4()))
    return sign(claims, context.keyring.private_key(key), kid=kid, typ=ACCESS_TOKEN_TYP)


async def test_a_kept_checkpoint_verifies_long_after_its_key_is_rotated_out(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, registry_clock: RegistryClock
) -> None:
    world = await make_world(app, client)
    issued = await client.post("/v1/certificates", json=certificate_body(), headers=bearer(world.issuer))
    assert issued.status_code == 201, issued.text
    kept = await _checkpoint(client)
    old_kid = kept["kid"]
    assert kept["tree_size"] == 1
    assert old_kid == jwt.get_unverified_header(world.admin)["kid"]

    rotated = await client.post("/v1/registry/keys/rotate", headers=bearer(world.admin))
    assert rotated.status_code == 201, rotated.text
    new_kid = rotated.json()["kid"]
    # Well past the life of any token the old key signed: it verifies no token now.
    registry_clock.advance(tokens.token_key_afterlife(settings) + timedelta(days=400))

    published = await _jwks(client)
    [jwk] = [key for key in published if key["kid"] == old_kid]  # the README's recipe finds it
    assert (jwk["key_use"], jwk["status"], jwk["alg"]) == ("checkpoint", "retired", "EdDSA")
    assert "d" not in jwk
    valid_from, valid_until = datetime.fromisoformat(jwk["valid_from"]), datetime.fromisoformat(jwk["valid_until"])
    assert valid_from.timestamp() - 1 <= kept["timestamp"] <= valid_until.timestamp()
    key = _public_key(jwk)
    _verify_kept(kept, key)
    # A partner holding only the note finds the key too: by the key hash its signature lines carry.
    _, blobs = _note_signatures(kept["note"])
    hashed = {_key_hash(NOTE_SIGNATURE, _public_key(k)): k["kid"] for k in published if k.get("crv") == "Ed25519"}
    assert hashed[blobs[0][:4]] == old_kid
    # The registry's own issuer metadata names it the same way.
    [meta] = [k for k in await _jwks(client, "/.well-known/jwt-vc-issuer") if k["kid"] == old_kid]
    assert meta == jwk

    # Published is not trusted: no peer node takes it for the node's key, and the registry refuses its tokens.
    assert not protocol.is_node_key(jwk)
    assert [k["kid"] for k in published if protocol.is_node_key(k)] == [new_kid]
    problem = await assert_token_refused(app, client, await _retired_token(app, old_kid, world.admin))
    assert "retired" in problem["detail"]
    await assert_token_refused(app, client, world.issuer)

    # New checkpoints are signed with the new key, and the kept one is consistent with them.
    fresh = await admin_token(app, client)
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid
    later = await _checkpoint(client)
    assert later["kid"] == new_kid
    [new_jwk] = [k for k in await _jwks(client) if k["kid"] == new_kid]
    assert (new_jwk["key_use"], new_jwk["status"]) == ("access_token", "active")
    _verify_kept(later, _public_key(new_jwk))
    assert later["root_hash"] == kept["root_hash"]


async def test_a_forged_kept_checkpoint_does_not_verify_with_the_retired_key(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, registry_clock: RegistryClock
) -> None:
    """The published retired key is the real one: a checkpoint with a rewritten root fails against it."""
    world = await make_world(app, client)
    kept = await _checkpoint(client)
    assert (await client.post("/v1/registry/keys/rotate", headers=bearer(world.admin))).status_code == 201
    registry_clock.advance(tokens.token_key_afterlife(settings) + timedelta(minutes=1))
    [jwk] = [key for key in await _jwks(client) if key["kid"] == kept["kid"]]
    forged_root = base64.b64encode(hashlib.sha256(b"a rewritten history").digest()).decode("ascii")
    forged = {**kept, "note": kept["note"].replace(kept["root_hash"], forged_root), "root_hash": forged_root}
    with pytest.raises(InvalidSignature):
        _verify_kept(forged, _public_key(jwk))
