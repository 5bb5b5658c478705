"""What the token and authorisation tests share: a registry with one evaluation body and its issuer client, and ways
to forge tokens that differ from a real one in exactly one thing."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.context import RegistryContext
from registry.db import transaction
from registry.issuers import service as issuers
from registry.keys import service as keys
from registry.keys.models import KeyUse
from tests.checks import assert_problem, row_counts
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_client,
    create_issuer,
    token_for,
)

ISSUER_CODE = "BJ-AI-COMMITTEE"
ACCESS_TOKEN_TYP = "at+jwt"
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})


@dataclass(frozen=True, slots=True)
class World:
    admin: str
    issuer: str
    issuer_client_id: str
    issuer_client_secret: str


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def registry_key(app: FastAPI) -> tuple[str, Ed25519PrivateKey]:
    """The registry's active access-token key: its kid and private key."""
    context: RegistryContext = app.state.context
    async with transaction(app.state.sessions) as session:
        key = await keys.registry_token_key(session, context.box)
    return key.kid, context.keyring.private_key(key)


async def certificate_key(app: FastAPI, issuer_code: str) -> tuple[str, Ed25519PrivateKey]:
    """An evaluation body's active certificate-signing key: its kid and private key."""
    context: RegistryContext = app.state.context
    async with transaction(app.state.sessions) as session:
        issuer = await issuers.get_by_code(session, issuer_code)
        assert issuer is not None
        assert issuer.id is not None
        key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
    assert key is not None
    return key.kid, context.keyring.private_key(key)


def fresh_claims(token: str, **changes: Any) -> dict[str, Any]:
    """A real token's claims with new iat/nbf/exp/jti, then ``changes`` (a value of None removes the claim)."""
    now = int(time.time())
    claims = {**unverified_claims(token), "iat": now, "nbf": now, "exp": now + 600, "jti": str(uuid.uuid4())}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def sign(claims: dict[str, Any], key: Ed25519PrivateKey, **header: Any) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers=header)


async def forge(app: FastAPI, token: str, *, header: dict[str, Any] | None = None, **changes: Any) -> str:
    kid, key = await registry_key(app)
    return sign(fresh_claims(token, **changes), key, **{"kid": kid, "typ": ACCESS_TOKEN_TYP, **(header or {})})


async def assert_refused(app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Try to issue a certificate with these credentials: 401, a Bearer challenge, and nothing written."""
    before = await row_counts(app)
    response = await client.post("/v1/certificates", json=certificate_body(), headers=headers)
    assert await row_counts(app) == before, "a request with bad credentials wrote to the database"
    problem = assert_problem(response, 401)
    assert response.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), response.headers
    return problem


async def assert_token_refused(app: FastAPI, client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    return await assert_refused(app, client, bearer(token))


async def make_world(app: FastAPI, client: httpx.AsyncClient) -> World:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    client_id, client_secret = await create_client(app, role=Role.issuer, issuer_code=ISSUER_CODE)
    issuer = await token_for(client, client_id, client_secret)
    return World(admin=admin, issuer=issuer, issuer_client_id=client_id, issuer_client_secret=client_secret)
