"""Reading certificates as their issuing body, their holder or the bureau sees them (masked identity, no claim
code): one certificate, a holder's list. Finding a body's certificates by filters is registry.certificates.search."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.auth.principals import Principal
from registry.auth.scopes import Role
from registry.catalogue.models import CatalogueEntry, Level
from registry.certificates import numbering
from registry.certificates.models import Certificate, Status
from registry.certificates.schemas import CertificatePublic, HolderPublic
from registry.config import Settings
from registry.context import RegistryContext
from registry.errors import InvalidCertificateNumber, NotFound
from registry.holders.identity import IdType
from registry.holders.models import Holder
from registry.i18n import _
from registry.issuers.models import Issuer


def verify_url(settings: Settings, token: str) -> str:
    """The verification page a certificate's QR code opens."""
    return f"{settings.public_base_url}/v/{token}"


_JOINED = (Certificate, Issuer, CatalogueEntry, Level, Holder)


def joined_query() -> Select[Certificate, Issuer, CatalogueEntry, Level, Holder]:
    """Certificates with what showing one needs: its body, catalogue entry, level and holder."""
    return (
        select(*_JOINED)
        .join(Issuer, col(Issuer.id) == col(Certificate.issuer_id))
        .join(CatalogueEntry, col(CatalogueEntry.code) == col(Certificate.catalogue_code))
        .join(
            Level, and_(col(Level.cert_type) == col(Certificate.cert_type), col(Level.code) == col(Certificate.level))
        )
        .join(Holder, col(Holder.id) == col(Certificate.holder_id))
    )


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """A certificate with everything needed to show it: its body, catalogue entry, level and holder."""

    certificate: Certificate
    issuer: Issuer
    entry: CatalogueEntry
    level: Level
    holder: Holder


async def get_visible(
    session: AsyncSession, *, principal: Principal, number: str, for_update: bool = False
) -> CertificateRecord:
    """The certificate if this caller may see it: its issuing body, its holder, or the bureau. Otherwise 404, exactly
    as if the number did not exist — and, with ``for_update``, without locking a row the caller may not see."""
    try:
        canonical = numbering.normalize_number(number)
    except InvalidCertificateNumber:
        raise NotFound(_("no certificate {number}", number=number)) from None
    query = joined_query().where(col(Certificate.number) == canonical, _visible_to(principal))
    if for_update:  # status changes on one certificate queue up instead of overwriting each other
        query = query.with_for_update(of=Certificate)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(_("no certificate {number}", number=number))
    return CertificateRecord(*row)


def _visible_to(principal: Principal) -> ColumnElement[bool]:
    if principal.role is Role.admin:
        return true()
    if principal.issuer_id is not None:
        return col(Certificate.issuer_id) == principal.issuer_id
    if principal.holder_index is not None:
        return holders_certificates(principal)
    return false()


def holders_certificates(principal: Principal) -> ColumnElement[bool]:
    """The certificates a holder session reads (a query joining Certificate and Holder): those issued to the holder,
    and of a session opened with a claim code only those of the body that issued the code, which knew of them
    already. Every holder read goes through here (list, one certificate, PDF, credential, QR, share links, visits)."""
    return holder_reach(holder_index=principal.holder_index or "", issuer_id=principal.holder_issuer_id)


def holder_reach(*, holder_index: str, issuer_id: int | None) -> ColumnElement[bool]:
    """``holders_certificates`` before a Principal exists (at sign-in): the certificates of the holder with this
    blind index, and with ``issuer_id`` (the body whose claim code opens the session) only that body's."""
    own = col(Holder.id_index) == holder_index
    if issuer_id is None:
        return own
    return and_(own, col(Certificate.issuer_id) == issuer_id)


def to_public(ctx: RegistryContext, record: CertificateRecord) -> CertificatePublic:
    return public_view(
        ctx.settings,
        record.certificate,
        issuer=record.issuer,
        entry=record.entry,
        level=record.level,
        id_type=record.holder.id_type,
        id_masked=record.holder.id_masked,
    )


async def get_own(
    ctx: RegistryContext, session: AsyncSession, *, principal: Principal, number: str
) -> CertificatePublic:
    return to_public(ctx, await get_visible(session, principal=principal, number=number))


async def records_for_holder(session: AsyncSession, *, principal: Principal) -> list[CertificateRecord]:
    """Every certificate issued to the holder's identity document that the session reads (every body's, or through a
    claim code that body's: ``holders_certificates``), as loaded, newest award first."""
    query = (
        joined_query()
        .where(holders_certificates(principal))
        .order_by(col(Certificate.awarded_on).desc(), col(Certificate.number))
    )
    return [CertificateRecord(*row) for row in (await session.execute(query)).all()]


def public_view(
    settings: Settings,
    cert: Certificate,
    *,
    issuer: Issuer,
    entry: CatalogueEntry,
    level: Level,
    id_type: str,
    id_masked: str,
) -> CertificatePublic:
    """A certificate as its body and its holder see it: names from the catalogue, the identity number masked."""
    return CertificatePublic(
        id=cert.id,
        number=cert.number,
        number_display=numbering.format_number(cert.number),
        status=Status(cert.status),
        cert_type=cert.cert_type,
        catalogue_code=cert.catalogue_code,
        catalogue_version=cert.catalogue_version,
        name_zh=entry.name_zh,
        name_en=entry.name_en,
        level=cert.level,
        level_name_zh=level.name_zh,
        level_name_en=level.name_en,
        holder=HolderPublic(name=cert.holder_name, id_type=IdType(id_type), id_masked=id_masked),
        issuer_code=issuer.code,
        issuer_name=issuer.name,
        awarded_on=cert.awarded_on,
        valid_until=cert.valid_until,
        evaluation_batch=cert.evaluation_batch,
        issued_at=cert.issued_at,
        kid=cert.kid,
        signature=cert.signature,
        verify_url=verify_url(settings, cert.verify_token),
        qr_token=cert.verify_token,
        supersedes=cert.supersedes,
        superseded_by=cert.superseded_by,
    )
