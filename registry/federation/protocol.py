"""What crosses the wire between regional nodes, and what a node signs for partners.

* **Service token** (``typ: peer+jwt``): a node asking a peer sends ``Authorization: Bearer`` with a short-lived JWT
  signed by its registry key: ``iss`` its public URL, ``sub`` ``node:<region>``, ``region``, ``aud``
  ``talent-registry:node:<peer region>``, ``iat``/``nbf``/``exp`` (at most ``SERVICE_TOKEN_TTL``), ``jti``. The peer
  checks it against the key set published at the asking region's configured URL (``REGISTRY_PEERS``), so only the
  nodes a peer is configured to know can ask it anything.
* **Statement** (``typ: <kind>+jwt``): every answer a node gives — to a peer, or to a partner agency as evidence — is a
  compact JWS by the node's registry key (the ``kid`` is in its ``/.well-known/jwks.json``), with ``iss``, ``region``
  (the answering node), ``iat`` and the answer. An answer to a peer also echoes the question's ``nonce``, so an old
  answer cannot be replayed as a new one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from registry.auth.numeric_dates import require_numeric_dates
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import ProtocolError
from registry.keys import service as keys
from registry.keys.models import KeyStatus, KeyUse

ALGORITHM = "EdDSA"
SERVICE_TOKEN_TYPE = "peer+jwt"  # noqa: S105 — a JOSE typ, not a secret
PEER_ANSWER_TYPE = "peer-answer+jwt"
RECOGNITION_ANSWER_TYPE = "recognition-answer+jwt"
SERVICE_TOKEN_TTL = timedelta(minutes=2)
MAX_STATEMENT_AGE_SECONDS = 120
# How long a node signs with the key it read (``peers.Federation.sign``): a rotation is picked up within this.
SIGNER_SECONDS = 60.0
# How long after its retirement a node key still speaks for its node: the node signs with it for up to
# ``SIGNER_SECONDS`` more, and what it signed lives ``MAX_STATEMENT_AGE_SECONDS`` (a service token as long), the
# clocks a minute apart. A key retired before then signs nothing new: a statement by it is a forgery.
RETIRED_KEY_GRACE = timedelta(seconds=SIGNER_SECONDS + MAX_STATEMENT_AGE_SECONDS + 60)
_FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})


def node_audience(region: str) -> str:
    return f"talent-registry:node:{region}"


def is_node_key(jwk: dict[str, Any]) -> bool:
    """Of a node's published keys, only its own registry key speaks for the node (not its evaluation bodies' keys);
    whether it still does, once retired, is ``speaks_for_node``."""
    return jwk.get("key_use") == KeyUse.access_token and jwk.get("status") != KeyStatus.compromised


def speaks_for_node(jwk: dict[str, Any]) -> bool:
    """A peer's published key that may sign its statements and service tokens now: its node key (``is_node_key``),
    and if retired, only just (``RETIRED_KEY_GRACE``). Judged when the key set is fetched and again each time the key
    is used (``peers.Peer.keys``): the grace is counted to the use, not to a fetch up to ``KEY_SET_SECONDS`` before."""
    if not is_node_key(jwk):
        return False
    if jwk.get("status") != KeyStatus.retired:
        return True
    try:
        retired_at = datetime.fromisoformat(str(jwk.get("valid_until")))
    except ValueError:
        return False  # retired, but since when it does not say
    if retired_at.tzinfo is None:
        retired_at = retired_at.replace(tzinfo=UTC)
    return utcnow() - retired_at <= RETIRED_KEY_GRACE


Signer = Callable[[str, dict[str, Any]], str]


async def signer(ctx: RegistryContext, session: AsyncSession) -> Signer:
    """Sign many statements with one key look-up: ``sign(typ, claims)`` adds ``iss``, ``region`` and ``iat``."""
    key = await keys.registry_token_key(session, ctx.box)
    private_key = ctx.keyring.private_key(key)
    standard = {"iss": ctx.settings.public_base_url, "region": ctx.settings.region.value}

    def sign(typ: str, claims: dict[str, Any]) -> str:
        payload = {**standard, "iat": int(utcnow().timestamp()), **claims}
        return jwt.encode(payload, private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": typ})

    return sign


def service_token(sign: Signer, *, own_region: str, peer_region: str) -> str:
    now = int(utcnow().timestamp())
    claims = {
        "sub": f"node:{own_region}",
        "aud": node_audience(peer_region),
        "nbf": now,
        "exp": now + int(SERVICE_TOKEN_TTL.total_seconds()),
        "jti": str(uuid.uuid4()),
    }
    return sign(SERVICE_TOKEN_TYPE, claims)


def header_of(token: str, typ: str) -> str:
    """The kid of a token of type ``typ``, after the header checks that need no key."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise ProtocolError("malformed JWS") from None
    if header.get("alg") != ALGORITHM:
        raise ProtocolError("algorithm not accepted")
    if header.get("typ") != typ:
        raise ProtocolError(f"expected typ {typ}")
    if _FORBIDDEN_HEADERS & header.keys():
        raise ProtocolError("key-location headers are never trusted")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise ProtocolError("no kid")
    return kid


def unverified_region(token: str) -> str:
    """The region a service token claims to come from: only to choose whose key set to check it against."""
    try:
        region = jwt.decode(token, options={"verify_signature": False}).get("region")
    except jwt.PyJWTError:
        raise ProtocolError("malformed JWS") from None
    if not isinstance(region, str):
        raise ProtocolError("the token names no region")
    return region


def check_service_token(token: str, key: jwt.PyJWK, *, own_region: str, caller_region: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            audience=node_audience(own_region),
            leeway=5,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "region"]},
        )
        require_numeric_dates(claims)
    except jwt.PyJWTError as exc:
        raise ProtocolError(f"service token not valid: {exc}") from None
    # One audience, this node: a token naming several would be good at each of them. (``iss`` is the caller's public
    # URL, which need not be the address this node has configured for it — REGISTRY_PEERS may name an internal one —
    # so the caller is known by its region and the key set at its configured URL, not by ``iss``.)
    if not isinstance(claims["aud"], str) or not isinstance(claims["iss"], str):
        raise ProtocolError("service token's aud and iss must each be one string")
    if claims["region"] != caller_region or claims["sub"] != f"node:{caller_region}":
        raise ProtocolError("service token's region does not match its key")
    if claims["exp"] - claims["iat"] > SERVICE_TOKEN_TTL.total_seconds():
        raise ProtocolError("service token lives too long")
    return claims


def check_statement(token: str, key: jwt.PyJWK, *, region: str) -> dict[str, Any]:
    """The claims of a statement signed by ``region``'s node with ``key``, issued within the last two minutes."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key=key, algorithms=[ALGORITHM], options={"require": ["iss", "iat", "region"], "verify_aud": False}
        )
        require_numeric_dates(claims)
    except jwt.PyJWTError as exc:
        raise ProtocolError(f"statement not valid: {exc}") from None
    if claims["region"] != region:
        raise ProtocolError(f"statement signed for region {claims['region']}, not {region}")
    if abs(utcnow().timestamp() - claims["iat"]) > MAX_STATEMENT_AGE_SECONDS:
        raise ProtocolError("statement is not fresh")
    return claims
