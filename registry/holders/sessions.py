"""Holder sign-in with identity document + claim code, throttled per identity; answered with a holder JWT."""

from __future__ import annotations

import uuid
from datetime import timedelta

import jwt
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import service as audit
from registry.audit.service import Actor
from registry.certificates.models import Certificate
from registry.clients.service import HOLDER_TOKEN_TYPE
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import NotFound, TooManyRequests, Unauthenticated
from registry.holders import service as holders
from registry.holders.idp import IdentityProvider
from registry.holders.models import Holder, HolderLoginThrottle
from registry.holders.schemas import HolderSession, HolderSessionCreate
from registry.keys import service as keys

HOLDER_TOKEN_TTL = timedelta(minutes=15)
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
CLAIM_CODE_KIND = "claim-code"


def normalize_claim_code(raw: str) -> str:
    return "".join(raw.upper().split()).replace("-", "")


async def open_session(ctx: RegistryContext, session: AsyncSession, *, request: HolderSessionCreate) -> HolderSession:
    """Five wrong claim codes for one identity lock it for 15 minutes; an unknown identity counts like a wrong code,
    so the answer never tells whether someone holds certificates here."""
    index = holders.id_index(ctx, id_type=request.id_type, id_number=request.id_number)
    now = utcnow()
    # Make sure the row exists before locking it: FOR UPDATE locks nothing that is not there, and concurrent first
    # attempts would each see "no failures yet".
    dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        dialect_insert(HolderLoginThrottle)
        .values(id_index=index, failures=0, window_started_at=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=["id_index"])
    )
    throttle = await session.get(HolderLoginThrottle, index, with_for_update=True, populate_existing=True)
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
        raise TooManyRequests(
            "too many wrong claim codes for this identity; try again later",
            retry_after=max(1, int((throttle.locked_until - now).total_seconds())),
        )
    holder = (await session.execute(select(Holder).where(col(Holder.id_index) == index))).scalar_one_or_none()
    matched = None
    if holder is not None:
        code_hash = ctx.box.hash_secret(normalize_claim_code(request.claim_code), kind=CLAIM_CODE_KIND)
        matched = (
            await session.execute(
                select(col(Certificate.number)).where(
                    col(Certificate.holder_id) == holder.id, col(Certificate.claim_code_hash) == code_hash
                )
            )
        ).first()
    if holder is None or matched is None:
        await _record_failure(session, index=index, existing=throttle)
        # The failure must be stored even though this request fails: commit it through the caller's unit of work.
        raise _WrongClaim("identity document and claim code do not match")
    if throttle is not None:
        throttle.failures, throttle.locked_until = 0, None
    return await _holder_session(ctx, session, holder=holder, via="claim_code")


async def open_external_session(ctx: RegistryContext, session: AsyncSession, *, id_token: str) -> HolderSession:
    """Sign in with a token from the configured external identity provider instead of a claim code."""
    provider: IdentityProvider | None = ctx.identity_provider
    if provider is None:
        raise NotFound("no external identity provider is configured")
    id_type, id_number = await provider.identity(id_token)
    index = holders.id_index(ctx, id_type=id_type, id_number=id_number)
    holder = (await session.execute(select(Holder).where(col(Holder.id_index) == index))).scalar_one_or_none()
    if holder is None:
        raise Unauthenticated("no certificates are registered for this identity")
    return await _holder_session(ctx, session, holder=holder, via="identity_provider")


async def _holder_session(ctx: RegistryContext, session: AsyncSession, *, holder: Holder, via: str) -> HolderSession:
    now = utcnow()
    key = await keys.registry_token_key(session, ctx.box)
    expires = now + HOLDER_TOKEN_TTL
    token = jwt.encode(
        {
            "iss": ctx.settings.token_issuer,
            "aud": ctx.settings.token_audience,
            "sub": f"holder:{holder.id_index}",
            "role": "holder",
            "scope": "",
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": str(uuid.uuid4()),
        },
        ctx.keyring.private_key(key),
        algorithm="EdDSA",
        headers={"kid": key.kid, "typ": HOLDER_TOKEN_TYPE},
    )
    await audit.append(
        session,
        actor=Actor(id=f"holder:{holder.id_index[:16]}"),
        action="holder.session_opened",
        object_type="holder",
        object_id=holder.id_index[:16],
        purpose="holder access to own certificates",
        details={"via": via},
    )
    return HolderSession(
        access_token=token,
        expires_in=int(HOLDER_TOKEN_TTL.total_seconds()),
        holder_name=await _latest_name(session, holder),
        id_masked=holder.id_masked,
    )


class _WrongClaim(Unauthenticated):
    slug = "wrong-claim-code"
    title = "Identity document and claim code do not match"
    commit = True  # keep the recorded failure although the request fails (api.deps.get_session)


async def _record_failure(session: AsyncSession, *, index: str, existing: HolderLoginThrottle | None) -> None:
    now = utcnow()
    throttle = existing or HolderLoginThrottle(id_index=index, failures=0, window_started_at=now)
    if now - throttle.window_started_at > LOCKOUT:
        throttle.failures, throttle.window_started_at = 0, now
    throttle.failures += 1
    if throttle.failures >= MAX_FAILURES:
        throttle.locked_until = now + LOCKOUT
        throttle.failures = 0
        throttle.window_started_at = now
    session.add(throttle)
    await session.flush()


async def _latest_name(session: AsyncSession, holder: Holder) -> str:
    name = (
        await session.execute(
            select(col(Certificate.holder_name))
            .where(col(Certificate.holder_id) == holder.id)
            .order_by(col(Certificate.issued_at).desc())
            .limit(1)
        )
    ).scalar_one()
    return str(name)
