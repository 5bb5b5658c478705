"""Holder sign-in with identity document + claim code (throttled per identity and client address) or an external
provider's token; answered with a holder token (``registry.auth.tokens.holder_token``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk
from registry.addresses import limit_key
from registry.audit import service as audit
from registry.auth import claim_chains, tokens
from registry.auth.claim_codes import claim_code_hash
from registry.certificates import records
from registry.certificates.models import Certificate
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import NotFound, TooManyRequests, Unauthenticated, WrongClaimCode
from registry.holder_access import scope
from registry.holder_access.identity_provider import IdentityProvider
from registry.holder_access.schemas import HolderSession, HolderSessionCreate
from registry.holders import service as holders
from registry.holders.models import Holder, HolderLoginThrottle
from registry.i18n import _
from registry.issuers.models import Issuer

MAX_FAILURES = 5  # per identity from one client address: the lockout that stops a guesser
# Per identity from every address together: only a backstop against guessing from many addresses at once, set high
# enough that a stranger alone cannot lock the holder out, who signs in from another address.
MAX_FAILURES_ANY_ADDRESS = 50
LOCKOUT = timedelta(minutes=15)
ANY_ADDRESS = "*"  # the address_index of the count from every address (a keyed hash is 64 hex characters)


async def with_claim_code(
    ctx: RegistryContext, session: AsyncSession, *, request: HolderSessionCreate, client_address: str
) -> HolderSession | WrongClaimCode:
    """Five wrong claim codes for one identity from one client address lock that address out for 15 minutes; fifty
    from all addresses together lock the identity. An unknown identity counts like a wrong code, so the answer never
    tells whether someone holds certificates here. An address counts as ``limit_key`` groups it (an IPv6 address by
    its /64: otherwise one subscriber would be a new address at every try); only a keyed hash of that is stored.

    A wrong code is returned, not raised: the strike it recorded is part of this request's work and must be committed
    with it, which only happens when the request does not fail. The caller answers it as the 401 it is."""
    index = holders.id_index(ctx, id_type=request.id_type, id_number=request.id_number)
    address = ctx.box.blind_index(limit_key(client_address), kind="client-address")
    everywhere, here = await _throttles(session, id_index=index, address_index=address)
    now = utcnow()
    for throttle, whose in ((here, _("from your network")), (everywhere, _("from many addresses"))):
        if throttle.locked_until is not None and throttle.locked_until > now:
            raise TooManyRequests(
                _("too many wrong claim codes for this identity {whose}; try again later", whose=whose),
                retry_after=max(1, int((throttle.locked_until - now).total_seconds())),
            )
    holder = (await session.execute(select(Holder).where(col(Holder.id_index) == index))).scalar_one_or_none()
    # The claim-code look-up runs for an unknown identity too: the answer's timing must not tell either.
    matched = await _holds_claim_code(ctx, session, holder_id=holder.id if holder else None, code=request.claim_code)
    if holder is None or matched is None:
        _record_strike(here, limit=MAX_FAILURES, now=now)
        _record_strike(everywhere, limit=MAX_FAILURES_ANY_ADDRESS, now=now)
        await session.flush()
        return WrongClaimCode(_("identity document and claim code do not match"))
    # The count from every address stays: the holder signing in says nothing about guesses made elsewhere.
    here.failures, here.locked_until = 0, None
    return await _holder_session(ctx, session, holder=holder, claimed=matched)


async def _throttles(
    session: AsyncSession, *, id_index: str, address_index: str
) -> tuple[HolderLoginThrottle, HolderLoginThrottle]:
    """The identity's counts from every address and from this one, both locked, always in that order (no deadlock)."""
    # Make sure the rows exist before locking them: FOR UPDATE locks nothing that is not there, and concurrent first
    # attempts would each see "no failures yet".
    dialect_insert = postgresql.insert if bulk.is_postgres(session) else sqlite.insert
    now = utcnow()
    await session.execute(
        dialect_insert(HolderLoginThrottle)
        .values(
            [
                {"id_index": id_index, "address_index": key, "failures": 0, "window_started_at": now}
                for key in (ANY_ADDRESS, address_index)
            ]
        )
        .on_conflict_do_nothing(index_elements=["id_index", "address_index"])
    )
    rows = []
    for key in (ANY_ADDRESS, address_index):
        row = await session.get(HolderLoginThrottle, (id_index, key), with_for_update=True, populate_existing=True)
        assert row is not None, "inserted just above"
        rows.append(row)
    return rows[0], rows[1]


async def with_identity_provider(
    ctx: RegistryContext, session: AsyncSession, *, provider: IdentityProvider | None, id_token: str
) -> HolderSession:
    """Sign in with a token from the configured external identity provider instead of a claim code."""
    if provider is None:
        raise NotFound(_("no external identity provider is configured"))
    id_type, id_number = await provider.identity(id_token)
    index = holders.id_index(ctx, id_type=id_type, id_number=id_number)
    holder = (await session.execute(select(Holder).where(col(Holder.id_index) == index))).scalar_one_or_none()
    if holder is None:
        raise Unauthenticated(_("no certificates are registered for this identity"))
    return await _holder_session(ctx, session, holder=holder, claimed=None)


@dataclass(frozen=True, slots=True)
class _Claimed:
    """The certificate a claim code claims and the body that issued it: the only one a session it opens reads."""

    certificate_id: uuid.UUID
    issuer_id: int
    issuer_code: str


async def _holds_claim_code(
    ctx: RegistryContext, session: AsyncSession, *, holder_id: int | None, code: str
) -> _Claimed | None:
    """The certificate ``code`` claims of the holder and its body, or None: the session it opens reads that body's
    certificates only. The code of a certificate any of whose correction chain was revoked as issued in error opens
    nothing, answered as a wrong code (``registry.auth.claim_chains``, which also ends a session it opened once that
    happens later); that of one merely superseded still opens the session.

    One statement whatever the answer (the chain walked by a recursive query, as long as it is), for an unknown
    identity and a wrong code too: the answer's timing must not tell which it was."""
    certificates = claim_chains.CERTIFICATES
    held = claim_chains.still_claimed(
        certificates.c.holder_id == (holder_id if holder_id is not None else -1),
        certificates.c.claim_code_hash == claim_code_hash(ctx.box, code),
    ).subquery("held")
    matched = await session.execute(
        select(held.c.id, held.c.issuer_id, col(Issuer.code)).join(Issuer, col(Issuer.id) == held.c.issuer_id)
    )
    found = matched.first()
    return _Claimed(found[0], found[1], found[2]) if holder_id is not None and found is not None else None


async def _holder_session(
    ctx: RegistryContext, session: AsyncSession, *, holder: Holder, claimed: _Claimed | None
) -> HolderSession:
    certificates_of = claimed.issuer_code if claimed is not None else None
    token = await tokens.holder_token(
        ctx,
        session,
        holder_index=holder.id_index,
        certificates_of=certificates_of,
        claimed=claimed.certificate_id if claimed is not None else None,
    )
    via = "identity_provider" if certificates_of is None else "claim_code"
    await audit.append(
        session,
        actor=audit.Actor(id=f"holder:{holder.id_index[:16]}"),
        action="holder.session_opened",
        object_type="holder",
        object_id=holder.id_index[:16],
        purpose="holder access to own certificates",
        details={"via": via} | ({"certificates_of": certificates_of} if certificates_of else {}),
    )
    return HolderSession(
        access_token=token,
        expires_in=int(tokens.HOLDER_TOKEN_TTL.total_seconds()),
        holder_name=await _latest_name(session, holder, claimed=claimed),
        id_masked=holder.id_masked,
        certificates_of=certificates_of,
        notice=scope.other_bodies_notice() if certificates_of is not None else None,
    )


def _record_strike(throttle: HolderLoginThrottle, *, limit: int, now: datetime) -> None:
    if now - throttle.window_started_at > LOCKOUT:
        throttle.failures, throttle.window_started_at = 0, now
    throttle.failures += 1
    if throttle.failures >= limit:
        throttle.locked_until = now + LOCKOUT
        throttle.failures = 0
        throttle.window_started_at = now


async def _latest_name(session: AsyncSession, holder: Holder, *, claimed: _Claimed | None) -> str:
    """The name on the holder's latest certificate the session reads (``records.holder_reach``): another body's
    spelling is not the issuing body's to learn."""
    reach = records.holder_reach(holder_index=holder.id_index, issuer_id=claimed.issuer_id if claimed else None)
    name = (
        await session.execute(
            select(col(Certificate.holder_name))
            .join(Holder, col(Holder.id) == col(Certificate.holder_id))
            .where(reach)
            .order_by(col(Certificate.issued_at).desc())
            .limit(1)
        )
    ).scalar_one()
    return str(name)
