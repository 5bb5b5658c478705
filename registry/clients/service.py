"""Creating API clients and exchanging their credentials for access tokens."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import service as audit
from registry.audit.service import Actor
from registry.clients.models import ROLE_SCOPES, ApiClient, Role, Scope
from registry.clients.schemas import ClientCreate, ClientCreated, TokenResponse
from registry.config import Region
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import FieldError, Forbidden, InvalidInput, RegistryError, Unauthenticated
from registry.issuers import service as issuers
from registry.issuers.models import Issuer
from registry.keys import service as keys
from registry.keys.models import KeyStatus, KeyUse

HOLDER_TOKEN_TYPE = "holder+jwt"  # noqa: S105 — see registry.holders.sessions
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 — RFC 9068; no other token of the registry uses this typ
SECRET_KIND = "client-secret"  # noqa: S105
_FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})


class InvalidClient(Unauthenticated):
    slug = "invalid-client"
    title = "Client authentication failed"


class InvalidScope(RegistryError):
    status = 400
    slug = "invalid-scope"
    title = "Requested scope is not allowed"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    client_id: str
    role: Role
    scopes: frozenset[str]
    issuer_id: int | None
    issuer_code: str | None
    region: str | None
    holder_index: str | None = None  # holder sessions only: the holder's blind index

    @property
    def actor(self) -> Actor:
        if self.holder_index is not None:
            return Actor(id=f"holder:{self.holder_index[:16]}")
        return Actor(id=f"client:{self.client_id}")


async def create(ctx: RegistryContext, session: AsyncSession, *, actor: Actor, body: ClientCreate) -> ClientCreated:
    issuer_id = None
    if body.issuer_code is not None:
        issuer = await issuers.get_by_code(session, body.issuer_code)
        if issuer is None:
            raise InvalidInput.field("issuer_code", f"no evaluation body {body.issuer_code}")
        issuer_id = issuer.id
    client_id = f"trc_{secrets.token_hex(10)}"
    client_secret = secrets.token_urlsafe(32)  # 256 bits
    scopes = sorted(scope.value for scope in ROLE_SCOPES[body.role])
    session.add(
        ApiClient(
            client_id=client_id,
            secret_hash=ctx.box.hash_secret(client_secret, kind=SECRET_KIND),
            role=body.role,
            name=body.name,
            issuer_id=issuer_id,
            region=body.region,
            scopes=scopes,
        )
    )
    await session.flush()
    await audit.append(
        session,
        actor=actor,
        action="client.created",
        object_type="api_client",
        object_id=client_id,
        purpose="access management",
        details={"role": body.role, "name": body.name, "issuer_code": body.issuer_code, "region": body.region},
    )
    return ClientCreated(
        client_id=client_id,
        client_secret=client_secret,
        role=body.role,
        name=body.name,
        issuer_code=body.issuer_code,
        region=body.region,
        scopes=scopes,
    )


async def issue_token(
    ctx: RegistryContext, session: AsyncSession, *, client_id: str, client_secret: str, scope: str | None
) -> TokenResponse:
    client = (
        await session.execute(select(ApiClient).where(col(ApiClient.client_id) == client_id))
    ).scalar_one_or_none()
    # Hash even for unknown clients so response time does not tell which client ids exist.
    candidate = ctx.box.hash_secret(client_secret, kind=SECRET_KIND)
    if client is None or not client.active or not secrets.compare_digest(candidate, client.secret_hash):
        raise InvalidClient("client_id or client_secret is wrong")
    allowed = set(client.scopes)
    requested = set(scope.split()) if scope else allowed
    if not requested <= allowed:
        raise InvalidScope(
            f"scope not allowed for this client: {' '.join(sorted(requested - allowed))}",
            errors=[FieldError(field="scope", message="not allowed for this client")],
        )
    key = await keys.registry_token_key(session, ctx.box)
    now = utcnow()
    ttl = ctx.settings.access_token_ttl_seconds
    issuer_code = None
    if client.issuer_id is not None:
        issuer = await session.get(Issuer, client.issuer_id)
        issuer_code = issuer.code if issuer else None
    claims: dict[str, object] = {
        "iss": ctx.settings.token_issuer,
        "aud": ctx.settings.token_audience,
        "sub": client.client_id,
        "role": client.role,
        "scope": " ".join(sorted(requested)),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    if issuer_code is not None:
        claims["issuer_code"] = issuer_code
    if client.region is not None:
        claims["region"] = client.region
    token = jwt.encode(
        claims, ctx.keyring.private_key(key), algorithm="EdDSA", headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
    )
    return TokenResponse(access_token=token, expires_in=ttl, scope=" ".join(sorted(requested)))


async def authenticate(ctx: RegistryContext, session: AsyncSession, token: str) -> Principal:
    """Verify an access token: algorithm pinned; typ, kid (looked up here), iss, aud, exp, nbf; client still active."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated("the access token is malformed") from None
    if header.get("alg") != "EdDSA":
        raise Unauthenticated("the access token's algorithm is not accepted")
    token_type = header.get("typ")
    if token_type not in (ACCESS_TOKEN_TYPE, HOLDER_TOKEN_TYPE):
        raise Unauthenticated("the token is not an access token")
    if _FORBIDDEN_HEADERS & header.keys():
        raise Unauthenticated("the access token carries key-location headers, which are never trusted")
    kid = header.get("kid")
    info = await ctx.keyring.public_key(session, kid) if isinstance(kid, str) else None
    if info is None or info.use != KeyUse.access_token or info.status == KeyStatus.compromised:
        raise Unauthenticated("the access token's key is not known")
    try:
        claims = jwt.decode(
            token,
            key=info.public_key,
            algorithms=["EdDSA"],
            audience=ctx.settings.token_audience,
            issuer=ctx.settings.token_issuer,
            leeway=5,
            options={"require": ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "scope", "role"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the access token has expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"the access token is not valid: {exc}") from None
    if token_type == HOLDER_TOKEN_TYPE:
        subject = str(claims["sub"])
        if claims.get("role") != Role.holder or not subject.startswith("holder:"):
            raise Unauthenticated("the holder token is not valid")
        return Principal(
            client_id=subject,
            role=Role.holder,
            scopes=frozenset(),
            issuer_id=None,
            issuer_code=None,
            region=None,
            holder_index=subject.removeprefix("holder:"),
        )
    client = (
        await session.execute(select(ApiClient).where(col(ApiClient.client_id) == claims["sub"]))
    ).scalar_one_or_none()
    if client is None or not client.active:
        raise Unauthenticated("the client of this access token is no longer active")
    issuer_code = claims.get("issuer_code")
    return Principal(
        client_id=client.client_id,
        role=Role(client.role),
        # A token never grants more than its client holds today.
        scopes=frozenset(str(claims["scope"]).split()) & frozenset(client.scopes),
        issuer_id=client.issuer_id,
        issuer_code=issuer_code if isinstance(issuer_code, str) else None,
        region=client.region,
    )


def require(principal: Principal, *, scope: Scope, roles: frozenset[Role] | None = None) -> Principal:
    if roles is not None and principal.role not in roles:
        raise Forbidden(f"this endpoint is not for {principal.role} clients")
    if scope not in principal.scopes:
        raise Forbidden(f"the access token lacks the {scope} scope")
    return principal


__all__ = ["Principal", "Region", "authenticate", "create", "issue_token", "require"]
