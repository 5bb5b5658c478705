"""The registry's own tokens: access tokens for API clients (RFC 9068 ``at+jwt``) and holder tokens (``holder+jwt``).

Both are signed with the registry's current token key and checked here, the one place: algorithm pinned, typ, kid
looked up server-side (never a key from the token's headers) and not retired for longer than a token lives, iss, one
aud, exp, nbf, a life no longer than its kind's TTL, and for API clients that the client is still active, was not
disabled since the token was issued, and still holds every scope the token names. Whatever the token says of the
client beyond its id and scope (role, body, region) is read from the database, never from the claims.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk, clock
from registry.audit.service import Actor
from registry.auth import claim_chains, client_secrets
from registry.auth.jwt_words import jwt_refusal
from registry.auth.models import ApiClient, EndedToken
from registry.auth.numeric_dates import require_numeric_dates
from registry.auth.principals import HolderSessionId, Principal
from registry.auth.schemas import TokenResponse
from registry.auth.scopes import Role
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import FieldError, InvalidClient, InvalidScope, Unauthenticated
from registry.i18n import _
from registry.issuers.models import Issuer
from registry.keys import service as keys
from registry.keys.models import KeyStatus, KeyUse
from registry.keys.schemas import TokenKeyRotated
from registry.schemas import control_character

ALGORITHM = "EdDSA"
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 — RFC 9068; no other token of the registry uses this typ
HOLDER_TOKEN_TYPE = "holder+jwt"  # noqa: S105 — a holder's session; never accepted where a client is required
HOLDER_TOKEN_TTL = timedelta(minutes=15)
LEEWAY_SECONDS = 5  # clock skew allowed when checking exp and nbf
_TOKEN_TYPES = frozenset({ACCESS_TOKEN_TYPE, HOLDER_TOKEN_TYPE})
_FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "scope", "role"]
_HOLDER_SUBJECT = "holder:"
# A holder token's ``via``: how the session was opened, which decides what it reads (``holder_token``).
HOLDER_VIA_CLAIM_CODE = "claim_code"
HOLDER_VIA_IDENTITY_PROVIDER = "identity_provider"


def token_key_afterlife(settings: Settings) -> timedelta:
    """How long a retired token key stays published and trusted: the longest life of anything it signed (access and
    holder tokens; a node's service tokens and statements live two minutes, tests/unit/test_token_key_afterlife.py
    holds them to it), plus the leeway a verifier allows."""
    longest = max(timedelta(seconds=settings.access_token_ttl_seconds), HOLDER_TOKEN_TTL)
    return longest + timedelta(seconds=LEEWAY_SECONDS)


async def rotate_key(ctx: RegistryContext, session: AsyncSession, *, actor: Actor) -> TokenKeyRotated:
    """``POST /v1/registry/keys/rotate`` and ``registry keys rotate --registry``: tokens are signed with a new key from
    now on; the retired one stays published and trusted for ``token_key_afterlife``."""
    key, retired = await keys.rotate_registry_token_key(session, ctx.keyring, actor=actor)
    return TokenKeyRotated.of(key, retired, afterlife=token_key_afterlife(ctx.settings))


def end_tokens_issued_so_far(client: ApiClient) -> None:
    """Every access token ``client`` holds is refused from now on, even once it is enabled again: ``authenticate``
    refuses an ``iat`` before ``tokens_not_before``. ``iat`` counts whole seconds, so the cut is the next whole second
    (a token issued earlier in this second is refused too; ``sign`` dates one issued later at the cut)."""
    client.tokens_not_before = datetime.fromtimestamp(math.ceil(utcnow().timestamp()), UTC)


async def sign(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    typ: str,
    claims: dict[str, Any],
    ttl: timedelta,
    not_before: datetime | None = None,
    master_key_proved: bool = False,
) -> str:
    """A token of type ``typ`` with the registry's standard claims (iss, aud, iat, nbf, exp, jti) around ``claims``;
    never dated before ``not_before`` (its client's ``tokens_not_before``, at most a second ahead). Only a caller that
    ``master_key_proved`` makes a database's first key while it holds only API clients (``keys.registry_token_key``)."""
    key = await keys.registry_token_key(session, ctx.box, master_key_proved=master_key_proved)
    now = int(utcnow().timestamp())
    if not_before is not None:
        now = max(now, math.ceil(not_before.timestamp()))
    standard: dict[str, Any] = {
        "iss": ctx.settings.token_issuer,
        "aud": ctx.settings.token_audience,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl.total_seconds()),
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(
        {**standard, **claims}, ctx.keyring.private_key(key), algorithm=ALGORITHM, headers={"kid": key.kid, "typ": typ}
    )


async def client_opened_by(
    ctx: RegistryContext, session: AsyncSession, *, client_id: str, client_secret: str, hold: bool = False
) -> ApiClient:
    """The API client whose keyed hash ``client_secret`` opens (``client_secrets.opens``), else InvalidClient: the one
    check of a client's secret, for its token request and ``registry keys confirm-master``. A match proves the master
    key too: the hash is keyed by a subkey of it. With ``hold`` the row is held (FOR SHARE) until the transaction ends,
    as ``authenticate`` holds it."""
    known = control_character(client_id) is None  # a NUL is no client's id (and PostgreSQL cannot compare one)
    query = select(ApiClient).where(col(ApiClient.client_id) == client_id)
    if hold:
        query = query.with_for_update(read=True)
    client = (await session.execute(query)).scalar_one_or_none() if known else None
    # Hashed for unknown and disabled clients too, which get the same answer as a wrong secret.
    opened = client_secrets.opens(ctx.box, client, client_secret, now=clock.now())
    if client is None or not opened:
        raise InvalidClient(_("client_id or client_secret is wrong"))
    return client


async def issue_access_token(
    ctx: RegistryContext, session: AsyncSession, *, client_id: str, client_secret: str, scope: str | None
) -> TokenResponse:
    """OAuth 2.0 client credentials (RFC 6749 §4.4): the client's secret for a short-lived access token. The client's
    row is held until the token's transaction commits: a disable or a rotation without grace (which lock it for
    update) waits, and its cut (``tokens_not_before``, after this token's ``iat``) refuses the token. Read unheld, one
    committed between the check and the signing, and the token, dated a second after its cut, outlived it."""
    client = await client_opened_by(ctx, session, client_id=client_id, client_secret=client_secret, hold=True)
    allowed = set(client.scopes)
    requested = set(scope.split()) if scope else allowed
    if not requested <= allowed:
        raise InvalidScope(
            _("scope not allowed for this client: {scopes}", scopes=" ".join(sorted(requested - allowed))),
            errors=[FieldError(field="scope", message=_("not allowed for this client"))],
        )
    granted = " ".join(sorted(requested))
    claims: dict[str, Any] = {"sub": client.client_id, "role": client.role, "scope": granted}
    if client.issuer_id is not None:
        issuer = await session.get(Issuer, client.issuer_id)
        if issuer is not None:
            claims["issuer_code"] = issuer.code
    if client.region is not None:
        claims["region"] = client.region
    ttl = ctx.settings.access_token_ttl_seconds
    token = await sign(
        ctx,
        session,
        typ=ACCESS_TOKEN_TYPE,
        claims=claims,
        ttl=timedelta(seconds=ttl),
        not_before=client.tokens_not_before,
        # The secret opened a hash keyed by a subkey of the master key: the key is the clients' own, and may bind.
        master_key_proved=True,
    )
    return TokenResponse(access_token=token, expires_in=ttl, scope=granted)


async def holder_token(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    holder_index: str,
    certificates_of: str | None,
    claimed: uuid.UUID | None,
) -> str:
    """A holder's session token: it names the holder's blind index, never the identity number, and how far it reaches.

    ``certificates_of`` is the code of the body whose claim code opened the session: the token then reads only that
    body's certificates of the holder, what the body already knows (a body hands its codes out, so it knows them).
    None is a session through the identity provider, which proved the identity and reads every body's. The claim
    ``via`` says which, in every holder token: one without it predates the scoping and is refused (``_holder``).
    A claim-code token also names, as ``claimed``, the certificate whose code opened it (its id, never the code): the
    session ends once that certificate's correction chain holds one revoked as issued in error (``_holder_reach``)."""
    claims = {"sub": _HOLDER_SUBJECT + holder_index, "role": Role.holder.value, "scope": ""}
    if certificates_of is None:
        claims["via"] = HOLDER_VIA_IDENTITY_PROVIDER
    elif claimed is None:
        raise ValueError("a claim-code session names the certificate whose code opened it")
    else:
        claims |= {"via": HOLDER_VIA_CLAIM_CODE, "certificates_of": certificates_of, "claimed": str(claimed)}
    return await sign(ctx, session, typ=HOLDER_TOKEN_TYPE, claims=claims, ttl=HOLDER_TOKEN_TTL)


async def authenticate(ctx: RegistryContext, session: AsyncSession, token: str, *, hold: bool = False) -> Principal:
    """The caller a bearer token stands for, or Unauthenticated (401) saying what did not check out. With ``hold`` the
    client's row is held (FOR SHARE on PostgreSQL) until the transaction ends: a disable or a secret rotation, which
    lock it for update (``registry.clients.service``), waits for what the caller does in it, or is seen by this check —
    never lands between the check and the commit."""
    token_type, claims = await _verified_claims(ctx, session, token)
    if token_type == HOLDER_TOKEN_TYPE:
        return await _holder(session, claims)
    query = (
        select(ApiClient, col(Issuer.code))
        .outerjoin(Issuer, col(Issuer.id) == col(ApiClient.issuer_id))
        .where(col(ApiClient.client_id) == claims["sub"])
    )
    if hold:
        query = query.with_for_update(read=True, of=ApiClient)
    row = (await session.execute(query)).first()
    client, issuer_code = (row[0], row[1]) if row is not None else (None, None)
    if client is None or not client.active:
        raise Unauthenticated(_("the client of this access token is no longer active"))
    cut = client.tokens_not_before
    if cut is not None and claims["iat"] < cut.timestamp():
        raise Unauthenticated(_("this access token was issued before its client was disabled: ask for a new one"))
    return Principal(
        client_id=client.client_id,
        role=Role(client.role),
        # A token never grants more than its client holds today.
        scopes=frozenset(str(claims["scope"]).split()) & frozenset(client.scopes),
        issuer_id=client.issuer_id,
        # The client's body as the database has it: the claim is only a copy for other readers of the token.
        issuer_code=issuer_code if client.issuer_id is not None else None,
        region=client.region,
    )


async def _holder(session: AsyncSession, claims: dict[str, Any]) -> Principal:
    subject = str(claims["sub"])
    if claims.get("role") != Role.holder or not subject.startswith(_HOLDER_SUBJECT):
        raise Unauthenticated(_("the holder token is not valid"))
    if await session.get(EndedToken, str(claims["jti"])) is not None:
        raise Unauthenticated(_("this session has ended: sign in again"))
    issuer_id = await _holder_reach(session, claims)
    return Principal(
        client_id=subject,
        role=Role.holder,
        scopes=frozenset(),
        issuer_id=None,
        issuer_code=None,
        region=None,
        holder_index=subject.removeprefix(_HOLDER_SUBJECT),
        session=HolderSessionId(str(claims["jti"]), datetime.fromtimestamp(int(claims["exp"]), UTC)),
        holder_issuer_id=issuer_id,
    )


async def _holder_reach(session: AsyncSession, claims: dict[str, Any]) -> int | None:
    """The body a claim-code session is limited to (its id), or None for a session through the identity provider.

    A token without ``via`` was signed before sessions were limited to one body and cannot say how it was opened:
    read as unlimited, a claim-code token would keep reading every body's certificates. It is refused; holder tokens
    live 15 minutes (HOLDER_TOKEN_TTL), so at worst a holder signs in once more. So is a claim-code token without
    ``claimed``, and one whose certificate's correction chain now holds a certificate revoked as issued in error
    (``claim_chains``): the person the notice reached by mistake reads the stranger's certificates no longer."""
    via = claims.get("via")
    if via == HOLDER_VIA_IDENTITY_PROVIDER:
        return None
    code = claims.get("certificates_of")
    if via != HOLDER_VIA_CLAIM_CODE or not isinstance(code, str):
        raise Unauthenticated(
            _("this holder session was opened before sessions were limited to one body: sign in again")
        )
    claimed = _certificate_id(claims.get("claimed"))
    certificates = claim_chains.CERTIFICATES
    query = claim_chains.still_claimed(certificates.c.id == claimed).subquery("held")
    row = (
        await session.execute(
            select(col(Issuer.id), query.c.id)
            .outerjoin(query, query.c.issuer_id == col(Issuer.id))
            .where(col(Issuer.code) == code)
        )
    ).first()
    if row is None:
        raise Unauthenticated(_("the holder token is not valid"))
    if row[1] is None:
        raise Unauthenticated(_("this session has ended: sign in again"))
    return int(row[0])


def _certificate_id(claimed: object) -> uuid.UUID:
    """A claim-code token's ``claimed``; missing in one signed before sessions named it, which ends that session."""
    if not isinstance(claimed, str):
        raise Unauthenticated(_("this session has ended: sign in again"))
    try:
        return uuid.UUID(claimed)
    except ValueError:
        raise Unauthenticated(_("the holder token is not valid")) from None


async def end_session(session: AsyncSession, holder: Principal) -> None:
    """Signs ``holder`` out on the server: their token is refused from now on (``authenticate``), where deleting the
    cookie only forgot it in one browser. Kept until the token would have expired; older entries are dropped here."""
    if holder.session is None:
        return
    ended = bulk.table_of(EndedToken)
    await session.execute(delete(ended).where(ended.c.expires_at < clock.now() - timedelta(seconds=LEEWAY_SECONDS)))
    dialect_insert = postgresql.insert if bulk.is_postgres(session) else sqlite.insert
    row = {"jti": holder.session.jti, "expires_at": holder.session.expires_at}
    await session.execute(dialect_insert(ended).values(row).on_conflict_do_nothing(index_elements=["jti"]))


async def _verified_claims(ctx: RegistryContext, session: AsyncSession, token: str) -> tuple[str, dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated(_("the access token is malformed")) from None
    if header.get("alg") != ALGORITHM:
        raise Unauthenticated(_("the access token's algorithm is not accepted"))
    token_type = header.get("typ")
    if not isinstance(token_type, str) or token_type not in _TOKEN_TYPES:
        raise Unauthenticated(_("the token is not an access token"))
    if _FORBIDDEN_HEADERS & header.keys():
        raise Unauthenticated(_("the access token carries key-location headers, which are never trusted"))
    kid = header.get("kid")
    info = await ctx.keyring.public_key(session, kid) if isinstance(kid, str) else None
    if info is None or info.use != KeyUse.access_token or info.status == KeyStatus.compromised:
        raise Unauthenticated(_("the access token's key is not known"))
    if keys.outlived(info, afterlife=token_key_afterlife(ctx.settings), now=clock.now()):
        raise Unauthenticated(_("the access token's signing key has been retired"))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=info.public_key,
            algorithms=[ALGORITHM],
            audience=ctx.settings.token_audience,
            issuer=ctx.settings.token_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": _REQUIRED_CLAIMS},
        )
        require_numeric_dates(claims)
    except jwt.ExpiredSignatureError:
        raise Unauthenticated(_("the access token has expired")) from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(_("the access token is not valid: {reason}", reason=jwt_refusal(exc))) from None
    _check_shape(ctx.settings, token_type, claims)
    return token_type, claims


def _check_shape(settings: Settings, token_type: str, claims: dict[str, Any]) -> None:
    """What PyJWT lets through: an ``aud`` list that merely contains ours (the registry names one audience), and a
    token living longer than the registry issues its kind for (a long-lived forgery, or one signed for another use)."""
    if not isinstance(claims["aud"], str):
        raise Unauthenticated(_("the access token must name exactly one audience"))
    ttl = HOLDER_TOKEN_TTL if token_type == HOLDER_TOKEN_TYPE else timedelta(seconds=settings.access_token_ttl_seconds)
    if claims["exp"] - claims["iat"] > ttl.total_seconds() + LEEWAY_SECONDS:
        raise Unauthenticated(_("the access token lives longer than the registry issues tokens for"))
