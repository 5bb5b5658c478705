"""Responses that render a certificate: QR codes and the e-certificate PDF, shared by issuer and holder routes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import orjson
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.head import headers_only
from api.responses import not_modified
from registry.audit import service as audit
from registry.auth.principals import Principal
from registry.certificates import numbering, records
from registry.context import RegistryContext
from registry.credentials import service as credentials
from registry.keys import jws
from registry.keys import service as keys
from registry.rendering import pdf, qr, signed_pdf
from registry.rendering.stamps import StatusMark
from registry.verification.schemas import Verification, VerificationResult
from registry.verification.verifier import Verifier

# The status line of the PDF, (Chinese, English): one table, so no status is named in one language only.
STATUS_NAMES = {
    VerificationResult.valid: ("有效", "Valid"),
    VerificationResult.suspended: ("暂停", "Suspended"),
    VerificationResult.revoked: ("已撤销", "Revoked"),
    VerificationResult.expired: ("已过期", "Expired"),
    VerificationResult.unknown: ("无法确认", "Unknown"),
    VerificationResult.superseded: ("已更正（以更正后的新证书为准）", "Corrected (a corrected one replaces it)"),
}
# Stamped across the PDF of a certificate that is not simply valid: (Chinese, English).
STATUS_MARKS = {
    VerificationResult.suspended: ("已暂停", "SUSPENDED"),
    VerificationResult.revoked: ("已撤销", "REVOKED"),
    VerificationResult.expired: ("已过期", "EXPIRED"),
    VerificationResult.superseded: ("已更正", "SUPERSEDED"),
}
# The public reason codes (the free-text reason stays with the issuer and the bureau).
PUBLIC_REASONS = {
    "issued_in_error": "误发 issued in error",
    "fraud": "以欺骗手段取得 obtained by deception",
    "disciplinary": "纪律处分 disciplinary action",
    "holder_request": "持证人申请 at the holder's request",
    "body_withdrawn": "评价机构备案撤销 evaluation body's filing withdrawn",
    "bureau": "主管部门暂停 suspended by the bureau",
    "other": "其他 other",
}
# The QR image holds the verify URL, which follows REGISTRY_PUBLIC_BASE_URL: a day in the client's cache, then
# revalidated by its ETag (private: it is behind authentication). It was a year, "immutable", before.
QR_CACHE = "private, max-age=86400"
CREDENTIAL_TYPE = "application/vc+jwt"


async def qr_response(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    number: str,
    size: int,
    fmt: str,
    if_none_match: str | None = None,
) -> Response:
    record = await records.get_visible(session, principal=principal, number=number)
    url = records.verify_url(ctx.settings, record.certificate.verify_token)
    if fmt == "svg":
        body, media_type = qr.qr_svg(url, size=size), "image/svg+xml"
    else:
        body, media_type = qr.qr_png(url, size=size), "image/png"
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": QR_CACHE, "ETag": etag}
    if not_modified(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


async def credential_response(
    ctx: RegistryContext,
    session: AsyncSession,
    verifier: Verifier,
    *,
    principal: Principal,
    number: str,
    filename: bool = False,
    head: bool = False,
) -> Response:
    """The signed credential, for the issuing body or the holder (API and holder page alike), audited as the PDF is:
    it carries the salted hash of the holder's identity number, and every access to a holder's data is on record.
    For a ``head`` request, only whether there is one: nothing is signed or recorded."""
    record = await records.get_visible(session, principal=principal, number=number)
    headers = {"Cache-Control": "private, no-store"}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{record.certificate.number}.jwt"'
    if head:
        await credentials.vouched_for(session, verifier, record)  # refused as the GET would be
        return headers_only(CREDENTIAL_TYPE, headers)
    token = await credentials.signed_credential(ctx, session, verifier, record)
    await audit.append(
        session,
        actor=principal.actor,
        action="certificate.credential_downloaded",
        object_type="certificate",
        object_id=record.certificate.number,
        purpose="signed credential download",
    )
    await refuse_unsound_signer(session, token)
    return Response(token, media_type=CREDENTIAL_TYPE, headers=headers)


async def certificate_pdf_response(
    ctx: RegistryContext,
    session: AsyncSession,
    verifier: Verifier,
    *,
    principal: Principal,
    number: str,
    head: bool = False,
) -> Response:
    """The signed e-certificate, audited; for a ``head`` request, only whether there is one (nothing is rendered,
    signed or recorded: a link checker or a download manager's HEAD is not a download)."""
    record = await records.get_visible(session, principal=principal, number=number)
    cert = record.certificate
    headers = {"Content-Disposition": f'attachment; filename="{cert.number}.pdf"', "Cache-Control": "private, no-store"}
    if head:
        await credentials.vouched_for(session, verifier, record)  # refused as the GET would be
        return headers_only("application/pdf", headers)
    verification = await verifier.of_record(session, record, channel="pdf")
    credential = await credentials.signed_credential(ctx, session, verifier, record)
    document = pdf.CertificateDocument(
        cert_type=cert.cert_type,
        number_display=numbering.format_number(cert.number),
        holder_name=cert.holder_name,
        holder_id_masked=record.holder.id_masked,
        series_zh=record.entry.series_zh,
        name_zh=record.entry.name_zh,
        name_en=record.entry.name_en,
        occupation_code=record.entry.occupation_code,
        level_name_zh=record.level.name_zh,
        level_name_en=record.level.name_en,
        issuer_name=record.issuer.name,
        issuer_code=record.issuer.code,
        awarded_on=cert.awarded_on,
        valid_until=cert.valid_until,
        status_zh=STATUS_NAMES[verification.result][0],
        status_en=STATUS_NAMES[verification.result][1],
        verify_url=records.verify_url(ctx.settings, cert.verify_token),
        issued_at=cert.issued_at,
    )
    body = await signed_pdf.signed_certificate_pdf(
        session,
        ctx.box,
        doc=document,
        issuer_id=cert.issuer_id,
        credential=credential.encode(),
        credential_filename=f"{cert.number}.vc.jwt",
        status_mark=status_mark(verification),
        crl_url=f"{ctx.settings.public_base_url.rstrip('/')}/.well-known/pdf-signing-root.crl",
    )
    await audit.append(
        session,
        actor=principal.actor,
        action="certificate.pdf_downloaded",
        object_type="certificate",
        object_id=cert.number,
        purpose="e-certificate download",
    )
    await refuse_unsound_signer(session, credential)  # and the PDF's document key
    return Response(body, media_type="application/pdf", headers=headers)


async def refuse_unsound_signer(session: AsyncSession, credential: str) -> None:
    """Once the answer's audit record holds the chain: 503 (ask again) if the key that signed ``credential`` was
    marked compromised, or retired before it signed (a rotation beside the download), by now."""
    kid = signing_kid(credential)
    await keys.refuse_compromised_signers(session, kids=(kid,))
    await keys.refuse_retired_signer(session, kid=kid, signed_at=signing_time(credential))


def signing_time(token: str) -> datetime:
    """When a credential of this registry says it was signed: its ``iat``, in whole seconds as a verifier reads it."""
    claims = orjson.loads(jws.unb64url(token.split(".")[1]))
    return datetime.fromtimestamp(int(claims["iat"]), UTC)


def signing_kid(token: str) -> str:
    """The short kid of the key that signed a credential of this registry (its header names the key's URL,
    ``{issuer}/keys/{kid}``)."""
    return str(jws.unverified_header(token)["kid"]).rsplit("/", 1)[-1]


def status_mark(verification: Verification) -> StatusMark | None:
    """What to stamp across the PDF: nothing while valid; else the status, the day it changed and the public reason."""
    labels = STATUS_MARKS.get(verification.result)
    if labels is None:
        return None
    code = verification.status_reason
    reason = PUBLIC_REASONS.get(code, code) if code else None
    return StatusMark(labels[0], labels[1], changed_on=verification.status_changed_on, reason=reason)
