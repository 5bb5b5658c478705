"""Issuing certificates, reading an evaluation body's own certificates, and public verification."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime

import jwt
import orjson
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import clock
from registry.audit import service as audit
from registry.audit.service import Actor
from registry.catalogue import service as catalogue
from registry.catalogue.models import CatalogueEntry, CertType, Level
from registry.certificates import credential, idempotency, numbering, signing, status_lists, verification
from registry.certificates.models import Certificate, CertificateEvent, Status
from registry.certificates.schemas import (
    EARLIEST_AWARD,
    CertificateIssue,
    CertificateIssued,
    CertificatePage,
    CertificatePublic,
    HolderPublic,
    Verification,
    VerificationResult,
)
from registry.clients.models import Role
from registry.clients.service import Principal
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    OutsideFiledScope,
)
from registry.holders import service as holders
from registry.holders.identity import IdType
from registry.holders.models import Holder
from registry.issuers import service as issuers
from registry.issuers.models import Issuer, IssuerStatus
from registry.keys import service as keys
from registry.keys.models import KeyUse
from registry.metrics import CERTIFICATES_ISSUED

CLAIM_CODE_KIND = "claim-code"
ISSUE_OPERATION = "certificates.issue"
_CLAIM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_NUMBER_ATTEMPTS = 8


class NotVouchedFor(Conflict):
    slug = "cannot-confirm"
    title = "The registry cannot confirm this certificate"


def _id(value: int | None) -> int:
    assert value is not None, "flushed rows have ids"
    return value


def new_claim_code() -> str:
    """12 Crockford base32 characters (60 bits) in groups of four; guessing is throttled at the holder login.

    One 60-bit draw, five bits per character: each character is uniform and independent of the others, exactly as
    twelve ``secrets.choice`` calls would make them, for one call to the system's random source instead of twelve."""
    value = secrets.randbits(60)
    raw = "".join(_CLAIM_ALPHABET[(value >> shift) & 0b11111] for shift in range(55, -1, -5))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalize_claim_code(raw: str) -> str:
    return "".join(raw.upper().split()).replace("-", "")


def verify_url(ctx: RegistryContext, token: str) -> str:
    return f"{ctx.settings.public_base_url}/v/{token}"


# --- issuing -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssueOutcome:
    status_code: int
    body: CertificateIssued | dict[str, object]
    replayed: bool


async def issue(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    request: CertificateIssue,
    idempotency_key: str | None,
) -> IssueOutcome:
    digest = idempotency.request_hash(request.model_dump(mode="json"))
    if idempotency_key is not None:
        stored = await idempotency.replay(
            ctx, session, principal=principal, operation=ISSUE_OPERATION, key=idempotency_key, digest=digest
        )
        if stored is not None:
            return IssueOutcome(status_code=stored.status_code, body=stored.body, replayed=True)
    issued = await _issue_one(ctx, session, principal=principal, request=request)
    if idempotency_key is not None:
        await idempotency.store(
            ctx,
            session,
            principal=principal,
            operation=ISSUE_OPERATION,
            key=idempotency_key,
            digest=digest,
            status_code=201,
            body=issued.model_dump_json().encode(),
        )
    return IssueOutcome(status_code=201, body=issued, replayed=False)


@dataclass(frozen=True, slots=True)
class Award:
    """What an evaluation body awards, apart from who the holder is."""

    cert_type: CertType
    catalogue_code: str
    level: str
    holder_name: str
    awarded_on: date
    valid_until: date | None
    evaluation_batch: str | None

    @classmethod
    def of(cls, request: CertificateIssue) -> Award:
        return cls(
            cert_type=request.cert_type,
            catalogue_code=request.catalogue_code,
            level=request.level,
            holder_name=request.holder.name,
            awarded_on=request.awarded_on,
            valid_until=request.valid_until,
            evaluation_batch=request.evaluation_batch,
        )


async def _issue_one(
    ctx: RegistryContext, session: AsyncSession, *, principal: Principal, request: CertificateIssue
) -> CertificateIssued:
    if principal.issuer_id is None:
        raise Forbidden("only an evaluation body's client can issue certificates")
    issuer = await session.get(Issuer, principal.issuer_id)
    if issuer is None:
        raise Forbidden("the evaluation body of this client no longer exists")
    award = Award.of(request)
    entry, level = await check_award(session, issuer=issuer, award=award)
    holder = await holders.find_or_create(
        ctx, session, id_type=request.holder.id_type, id_number=request.holder.id_number
    )
    return await mint(
        ctx, session, actor=principal.actor, issuer=issuer, award=award, entry=entry, level=level, holder=holder
    )


async def check_award(session: AsyncSession, *, issuer: Issuer, award: Award) -> tuple[CatalogueEntry, Level]:
    """Everything that must hold before a body may award this: it is active, the catalogue entry and level exist and
    were in force, and its filed scope covers the award both on the award date and today."""
    if issuer.status != IssuerStatus.active:
        raise Forbidden(f"evaluation body {issuer.code} is {issuer.status} and cannot issue")
    if award.valid_until is not None and award.valid_until <= award.awarded_on:
        raise InvalidInput.field("valid_until", "must be after awarded_on")
    if award.awarded_on < EARLIEST_AWARD:
        raise InvalidInput.field("awarded_on", f"must be on or after {EARLIEST_AWARD.isoformat()}")
    entry, level = await _catalogue_entry_and_level(session, award)
    today = clock.today()
    if award.awarded_on > today:
        raise InvalidInput.field("awarded_on", "is in the future")
    scopes = await issuers.filed_scopes(session, _id(issuer.id))
    covers = {"cert_type": award.cert_type, "catalogue_code": award.catalogue_code, "level": award.level}
    if not issuers.scope_covers(scopes, **covers, on=award.awarded_on):
        raise OutsideFiledScope(
            f"{issuer.code} is not filed to issue {award.catalogue_code} at level {award.level} "
            f"on {award.awarded_on.isoformat()}",
            errors=[
                FieldError(field="catalogue_code", message="outside the filed scope"),
                FieldError(field="level", message="outside the filed scope"),
            ],
        )
    if not issuers.scope_covers(scopes, **covers, on=today):
        raise OutsideFiledScope(f"{issuer.code}'s filing for {award.catalogue_code} is not in force today")
    return entry, level


async def mint(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    actor: Actor,
    issuer: Issuer,
    award: Award,
    entry: CatalogueEntry,
    level: Level,
    holder: Holder,
    supersedes: str | None = None,
) -> CertificateIssued:
    """Number, sign, record, take a status-list slot, log: one certificate, in the caller's transaction."""
    issuer_id = _id(issuer.id)
    key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer_id)
    if key is None:
        raise Forbidden(f"evaluation body {issuer.code} has no active signing key")
    claim_code = new_claim_code()
    issued_at = utcnow().replace(microsecond=0)
    for _ in range(_NUMBER_ATTEMPTS):
        number = numbering.new_number(region=issuer.region, cert_type=award.cert_type.value, year=award.awarded_on.year)
        taken = (await session.execute(select(col(Certificate.id)).where(col(Certificate.number) == number))).first()
        if taken is None:
            break
    else:  # 40 random bits: reaching this means the random source is broken, not that numbers ran out
        raise Conflict("could not allocate a certificate number")
    list_id, status_index = await status_lists.assign_slot(session, issuer_id=issuer_id)
    certificate = Certificate(
        number=number,
        issuer_id=issuer_id,
        kid=key.kid,
        cert_type=award.cert_type,
        catalogue_code=entry.code,
        catalogue_version=entry.version,
        level=award.level,
        holder_id=_id(holder.id),
        holder_name=award.holder_name,
        awarded_on=award.awarded_on,
        valid_until=award.valid_until,
        evaluation_batch=award.evaluation_batch,
        status=Status.active,
        verify_token=secrets.token_urlsafe(18),  # 144 random bits
        claim_code_hash=ctx.box.hash_secret(normalize_claim_code(claim_code), kind=CLAIM_CODE_KIND),
        signature="",
        issued_at=issued_at,
        supersedes=supersedes,
        status_list_id=list_id,
        status_index=status_index,
    )
    payload = signing.payload_of(
        certificate.model_dump(),
        issuer_code=issuer.code,
        holder_id_type=holder.id_type,
        holder_id_masked=holder.id_masked,
        holder_ref=holder.id_index,
    )
    certificate.signature = signing.sign(payload, key=ctx.keyring.private_key(key), kid=key.kid)
    certificate.record_seal = signing.record_seal(
        ctx.box, certificate_id=certificate.id, kid=key.kid, payload=payload, signature=certificate.signature
    )
    certificate.status_seal = signing.status_seal(
        ctx.box,
        certificate_id=certificate.id,
        number=number,
        status=Status.active,
        revocation_reason=None,
        superseded_by=None,
    )
    session.add(certificate)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("the certificate could not be recorded; retry with the same Idempotency-Key") from None
    session.add(
        CertificateEvent(
            certificate_id=certificate.id,
            event="issued",
            actor=actor.id,
            at=issued_at,
            reason="correction of " + supersedes if supersedes else None,
        )
    )
    await audit.append(
        session,
        actor=actor,
        action="certificate.issued",
        object_type="certificate",
        object_id=number,
        purpose="correction" if supersedes else "issuance",
        details={
            "issuer": issuer.code,
            "catalogue_code": entry.code,
            "level": award.level,
            "kid": key.kid,
            "holder_ref": holder.id_index[:16],
            "supersedes": supersedes,
        },
    )
    CERTIFICATES_ISSUED.labels(cert_type=award.cert_type.value).inc()
    public = _to_public(ctx, certificate, issuer=issuer, entry=entry, level=level, holder=holder)
    return CertificateIssued(**public.model_dump(), claim_code=claim_code)


async def _catalogue_entry_and_level(session: AsyncSession, award: Award) -> tuple[CatalogueEntry, Level]:
    entry = await catalogue.get(session, award.catalogue_code)
    if entry is None or entry.cert_type != award.cert_type:
        raise InvalidInput.field("catalogue_code", f"no {award.cert_type} catalogue entry {award.catalogue_code}")
    ladder = (await catalogue.levels_by_type(session))[award.cert_type]
    if award.level not in ladder:
        raise InvalidInput.field("level", f"{award.level} is not a {award.cert_type} level")
    if award.level not in entry.levels:
        raise InvalidInput.field("level", f"{entry.code} is not awarded at level {award.level}")
    if not entry.in_force_on(award.awarded_on):
        raise InvalidInput.field("awarded_on", f"catalogue entry {entry.code} was not in force on that date")
    return entry, ladder[award.level]


def _to_public(
    ctx: RegistryContext, cert: Certificate, *, issuer: Issuer, entry: CatalogueEntry, level: Level, holder: Holder
) -> CertificatePublic:
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
        holder=HolderPublic(name=cert.holder_name, id_type=IdType(holder.id_type), id_masked=holder.id_masked),
        issuer_code=issuer.code,
        issuer_name=issuer.name,
        awarded_on=cert.awarded_on,
        valid_until=cert.valid_until,
        evaluation_batch=cert.evaluation_batch,
        issued_at=cert.issued_at,
        kid=cert.kid,
        signature=cert.signature,
        verify_url=verify_url(ctx, cert.verify_token),
        qr_token=cert.verify_token,
        supersedes=cert.supersedes,
        superseded_by=cert.superseded_by,
    )


# --- the issuing body's own certificates ---------------------------------------------------------------------------

_JOINED = (Certificate, Issuer, CatalogueEntry, Level, Holder)


def _joined_query() -> Select[Certificate, Issuer, CatalogueEntry, Level, Holder]:
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
    """The certificate if this caller may see it: its issuing body, or its holder. Otherwise 404, exactly as if the
    number did not exist."""
    try:
        canonical = numbering.normalize_number(number)
    except numbering.InvalidCertificateNumber:
        raise NotFound(f"no certificate {number}") from None
    query = _joined_query().where(col(Certificate.number) == canonical)
    if for_update:  # status changes on one certificate queue up instead of overwriting each other
        query = query.with_for_update(of=Certificate)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"no certificate {number}")
    record = CertificateRecord(*row)
    visible = (
        principal.role is Role.admin
        or (principal.issuer_id is not None and record.certificate.issuer_id == principal.issuer_id)
        or (principal.holder_index is not None and record.holder.id_index == principal.holder_index)
    )
    if not visible:
        raise NotFound(f"no certificate {number}")
    return record


def to_public(ctx: RegistryContext, record: CertificateRecord) -> CertificatePublic:
    return _to_public(
        ctx, record.certificate, issuer=record.issuer, entry=record.entry, level=record.level, holder=record.holder
    )


async def get_own(
    ctx: RegistryContext, session: AsyncSession, *, principal: Principal, number: str
) -> CertificatePublic:
    return to_public(ctx, await get_visible(session, principal=principal, number=number))


async def list_for_holder(
    ctx: RegistryContext, session: AsyncSession, *, principal: Principal
) -> list[CertificatePublic]:
    """Every certificate issued to the holder's identity document, by any evaluation body."""
    query = (
        _joined_query()
        .where(col(Holder.id_index) == principal.holder_index)
        .order_by(col(Certificate.awarded_on).desc(), col(Certificate.number))
    )
    rows = (await session.execute(query)).all()
    return [to_public(ctx, CertificateRecord(*row)) for row in rows]


def _encode_cursor(issued_at: datetime, cert_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([issued_at.isoformat(), str(cert_id)])).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        issued_at, cert_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(issued_at)
        if moment.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return moment, uuid.UUID(cert_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidInput.field("cursor", "is not a cursor this service returned") from None


async def list_own(
    ctx: RegistryContext, session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> CertificatePage:
    """Newest first, keyset-paginated on (issued_at, id): stable while new certificates keep arriving."""
    query = _joined_query().where(col(Certificate.issuer_id) == principal.issuer_id)
    if cursor is not None:
        issued_at, cert_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                col(Certificate.issued_at) < issued_at,
                and_(col(Certificate.issued_at) == issued_at, col(Certificate.id) < cert_id),
            )
        )
    query = query.order_by(col(Certificate.issued_at).desc(), col(Certificate.id).desc()).limit(limit + 1)
    rows = (await session.execute(query)).all()
    page = [
        _to_public(ctx, cert, issuer=issuer, entry=entry, level=level, holder=holder)
        for cert, issuer, entry, level, holder in rows[:limit]
    ]
    next_cursor = _encode_cursor(rows[limit - 1][0].issued_at, rows[limit - 1][0].id) if len(rows) > limit else None
    return CertificatePage(data=page, next_cursor=next_cursor)


# --- public verification -------------------------------------------------------------------------------------------


async def verify_by_token(ctx: RegistryContext, session: AsyncSession, *, token: str, channel: str) -> Verification:
    return await verification.by_token(ctx, session, token=token, channel=channel)


async def verify_by_number(
    ctx: RegistryContext, session: AsyncSession, *, number: str, holder_name: str
) -> Verification:
    return await verification.by_number(ctx, session, number=number, holder_name=holder_name)


async def verify_record(
    ctx: RegistryContext, session: AsyncSession, record: CertificateRecord, *, channel: str
) -> Verification:
    """The public answer for a certificate already loaded (PDF, holder views): the same rules as the hot path."""
    cert, holder, issuer = record.certificate, record.holder, record.issuer
    row = {
        **cert.model_dump(),
        "id_type": holder.id_type,
        "id_masked": holder.id_masked,
        "id_index": holder.id_index,
        "issuer_code": issuer.code,
        "issuer_name": issuer.name,
    }
    return await verification.answer(ctx, session, row, channel=channel)


async def signed_credential(ctx: RegistryContext, session: AsyncSession, record: CertificateRecord) -> str:
    """The certificate as a compact JWS credential, signed with its issuing body's current key — but only for what
    the registry can vouch for: a row whose stored signature, key or filing does not check out is never re-signed."""
    checked = await verify_record(ctx, session, record, channel="credential")
    if checked.result is VerificationResult.unknown:
        raise NotVouchedFor(
            f"certificate {record.certificate.number} cannot be confirmed ({checked.reason}); no credential is issued"
        )
    cert, issuer = record.certificate, record.issuer
    key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
    if key is None:
        raise Forbidden(f"evaluation body {issuer.code} has no active signing key")
    facts = credential.CredentialFacts(
        certificate_id=str(cert.id),
        number=cert.number,
        base_url=ctx.settings.public_base_url,
        issuer_code=issuer.code,
        issuer_name=issuer.name,
        cert_type=cert.cert_type,
        catalogue_code=cert.catalogue_code,
        catalogue_version=cert.catalogue_version,
        series_zh=record.entry.series_zh,
        name_zh=record.entry.name_zh,
        name_en=record.entry.name_en,
        occupation_code=record.entry.occupation_code,
        level=cert.level,
        level_name_zh=record.level.name_zh,
        level_name_en=record.level.name_en,
        holder_name=cert.holder_name,
        holder_id_type=record.holder.id_type,
        holder_id_masked=record.holder.id_masked,
        holder_ref=record.holder.id_index,
        awarded_on=cert.awarded_on,
        valid_until=cert.valid_until,
        issued_at=cert.issued_at,
        signed_at=utcnow(),
        status_list=(
            status_lists.entries_for(
                base_url=ctx.settings.public_base_url,
                issuer_code=issuer.code,
                list_id=cert.status_list_id,
                index=cert.status_index,
            )
            if cert.status_list_id is not None and cert.status_index is not None
            else None
        ),
    )
    return credential.sign_credential(facts, key=ctx.keyring.private_key(key), kid=key.kid)


async def status_list_credential(ctx: RegistryContext, session: AsyncSession, *, issuer_code: str, name: str) -> str:
    """A body's status list as a signed BitstringStatusListCredential (compact JWS, typ vc+jwt)."""
    parsed = status_lists.parse_list_name(name)
    issuer = await issuers.get_by_code(session, issuer_code)
    if parsed is None or issuer is None:
        raise NotFound(f"no status list {issuer_code}/{name}")
    list_id, purpose = parsed
    row = await status_lists.get_list(session, issuer_id=_id(issuer.id), list_id=list_id, purpose=purpose)
    key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
    if row is None or key is None:
        raise NotFound(f"no status list {issuer_code}/{name}")
    claims = status_lists.list_credential_claims(
        url=status_lists.list_url(ctx.settings.public_base_url, issuer.code, list_id, purpose),
        issuer_id=f"{ctx.settings.public_base_url}/v1/issuers/{issuer.code}",
        purpose=purpose,
        row=row,
    )
    return jwt.encode(
        claims,
        ctx.keyring.private_key(key),
        algorithm="EdDSA",
        headers={"kid": key.kid, "typ": credential.CREDENTIAL_TYPE},
    )
