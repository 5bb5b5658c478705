"""Share links: a holder opens one certificate's verification page to somebody, for a stated purpose, for a while.

The link carries 192 random bits; only their SHA-256 is stored (a high-entropy token needs no slow or keyed hash), so
a copy of the database cannot open any link. An expired or withdrawn link answers Gone and never shows the
certificate; the holder can withdraw a link at any time, and withdrawing twice changes nothing. A link's purpose is
a purpose like a recognition question's: an identity number the holder types into it is masked before it is kept
(``registry.recognition.purposes``; links kept before were masked by migration 0020), so neither the public page, the
holder's list nor the visits it records ever hold it in clear.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.auth.principals import Principal
from registry.certificates import numbering, records
from registry.certificates.models import Certificate
from registry.config import Settings
from registry.db import utcnow
from registry.errors import Gone, InvalidCertificateNumber, InvalidInput, NotFound
from registry.holder_access.models import ShareLink
from registry.holder_access.schemas import ShareLinkCreate, ShareLinkCreated, ShareLinkPublic
from registry.holders.models import Holder
from registry.i18n import _, message_of
from registry.recognition.purposes import masked_or_none
from registry.recognition.schemas import Purpose

# 24 bytes → 32 URL-safe characters; verification tokens are 24 characters, so the two never look alike.
_TOKEN_BYTES = 24
_TOKEN_LENGTH = 32


@dataclass(frozen=True, slots=True)
class OpenedLink:
    """What a visitor of a live link is shown: the certificate (by its verification token) and the purpose."""

    verify_token: str
    purpose: Purpose
    purpose_text: str | None


def share_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url}/s/{token}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _public(link: ShareLink, number: str) -> ShareLinkPublic:
    state = "withdrawn" if link.withdrawn_at else "expired" if link.expires_at <= utcnow() else "active"
    return ShareLinkPublic(
        id=link.id,
        number=number,
        purpose=Purpose(link.purpose),
        purpose_text=link.purpose_text,
        created_at=link.created_at,
        expires_at=link.expires_at,
        withdrawn_at=link.withdrawn_at,
        state=state,
    )


async def _own_certificate(session: AsyncSession, *, principal: Principal, number: str) -> Certificate:
    try:
        canonical = numbering.normalize_number(number)
    except InvalidCertificateNumber as exc:
        raise InvalidInput.field("number", message_of(exc)) from None
    query = (
        select(Certificate)
        .join(Holder, col(Holder.id) == col(Certificate.holder_id))
        .where(col(Certificate.number) == canonical, records.holders_certificates(principal))
    )
    certificate = (await session.execute(query)).scalar_one_or_none()
    if certificate is None:
        raise NotFound(_("you hold no certificate {number}", number=canonical))
    return certificate


async def create(
    settings: Settings, session: AsyncSession, *, principal: Principal, request: ShareLinkCreate
) -> ShareLinkCreated:
    certificate = await _own_certificate(session, principal=principal, number=request.number)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    now = utcnow()
    link = ShareLink(
        token_hash=_hash(token),
        certificate_id=certificate.id,
        holder_index=principal.holder_index or "",
        purpose=request.purpose.value,
        purpose_text=masked_or_none(request.purpose_text),
        created_at=now,
        expires_at=now + timedelta(days=request.expires_in_days),
    )
    session.add(link)
    await session.flush()
    public = _public(link, certificate.number)
    return ShareLinkCreated(**public.model_dump(), url=share_url(settings, token))


async def list_for_holder(session: AsyncSession, *, principal: Principal) -> list[ShareLinkPublic]:
    """The holder's links to certificates the session reads: a session opened with a claim code neither sees nor
    withdraws links to other bodies' certificates, whose numbers it must not learn."""
    query = (
        select(ShareLink, col(Certificate.number))
        .join(Certificate, col(Certificate.id) == col(ShareLink.certificate_id))
        .join(Holder, col(Holder.id) == col(Certificate.holder_id))
        .where(col(ShareLink.holder_index) == principal.holder_index, records.holders_certificates(principal))
        .order_by(col(ShareLink.created_at).desc())
    )
    return [_public(link, number) for link, number in (await session.execute(query)).all()]


async def withdraw(session: AsyncSession, *, principal: Principal, link_id: uuid.UUID) -> None:
    query = (
        select(ShareLink)
        .join(Certificate, col(Certificate.id) == col(ShareLink.certificate_id))
        .join(Holder, col(Holder.id) == col(Certificate.holder_id))
        .where(
            col(ShareLink.id) == link_id,
            col(ShareLink.holder_index) == principal.holder_index,
            records.holders_certificates(principal),
        )
    )
    link = (await session.execute(query)).scalar_one_or_none()
    if link is None:  # another holder's, or made in a session that read a body this one does not
        raise NotFound(_("no such share link of yours"))
    if link.withdrawn_at is None:
        link.withdrawn_at = utcnow()
        await session.flush()


async def open_link(session: AsyncSession, *, token: str) -> OpenedLink:
    """The certificate a live link opens; NotFound for no such link, Gone for one expired or withdrawn."""
    if len(token) != _TOKEN_LENGTH:
        raise NotFound(_("no such share link"))
    query = (
        select(ShareLink, col(Certificate.verify_token))
        .join(Certificate, col(Certificate.id) == col(ShareLink.certificate_id))
        .where(col(ShareLink.token_hash) == _hash(token))
    )
    found = (await session.execute(query)).one_or_none()
    if found is None:
        raise NotFound(_("no such share link"))
    link, verify_token = found
    if link.withdrawn_at is not None:
        raise Gone(_("the holder has withdrawn this share link"))
    if link.expires_at <= utcnow():
        raise Gone(_("this share link has expired"))
    return OpenedLink(verify_token=verify_token, purpose=Purpose(link.purpose), purpose_text=link.purpose_text)
