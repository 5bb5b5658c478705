"""Issuing and reading an evaluation body's own certificates."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from api.deps import (
    CertificatesIssue,
    CertificatesRead,
    CertificatesRevoke,
    CertificatesSupervise,
    CertificateToChange,
    CertificateToCorrect,
    CertificateToSupervise,
    ContextDep,
    IssuerOrHolder,
    SessionDep,
    UnlockedReadsDep,
    VerifierDep,
)
from api.documents import certificate_pdf_response, credential_response, qr_response
from api.errors import DATABASE_UNAVAILABLE
from api.head import HeadOnly, headers_only
from api.responses import outcome_response
from registry.certificates import export, issuance, lifecycle, records, search
from registry.certificates.schemas import (
    CertificateEventPublic,
    CertificateFilters,
    CertificateIssue,
    CertificateIssued,
    CertificateListQuery,
    CertificatePage,
    CertificatePublic,
    Correction,
    Revocation,
    StatusChange,
)
from registry.schemas import Text256

router = APIRouter(prefix="/v1/certificates", tags=["certificates"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retrying with the same key and body returns the first response instead of issuing again.",
    ),
]


@router.post(
    "",
    response_model=CertificateIssued,
    status_code=201,
    operation_id="certificates-issue",
    responses={
        403: {"description": "outside the filed scope, or the body is suspended"},
        409: {
            "description": "the holder already has a live certificate for this entry and level (named), or the "
            "same Idempotency-Key is still in flight"
        },
        **DATABASE_UNAVAILABLE,
    },
)
async def issue_certificate(
    body: CertificateIssue,
    context: ContextDep,
    session: SessionDep,
    issuer: CertificatesIssue,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    outcome = await issuance.issue_one(
        context, session, principal=issuer, request=body, idempotency_key=idempotency_key
    )
    return outcome_response(outcome)


CSV = "text/csv; charset=utf-8"
_SEARCH_ERRORS: dict[int | str, dict[str, str]] = {
    403: {"description": "not a body or admin with `certificates:read`, or a body giving another's `issuer_code`"},
    422: {"description": "a bad filter (named), an admin without `purpose`, or a cursor of other filters"},
}


@router.get("", response_model=CertificatePage, operation_id="certificates-list", responses=_SEARCH_ERRORS)
async def list_certificates(
    query: Annotated[CertificateListQuery, Query()],
    context: ContextDep,
    session: SessionDep,
    reader: CertificatesSupervise,
) -> CertificatePage:
    """An evaluation body's own certificates, newest first; the bureau's admins see every body's, each read audited
    with its `purpose`. Certificates issued while paging appear before the first page, never among later ones."""
    return await search.find(context, session, principal=reader, query=query)


@router.get(
    "/export.csv",
    operation_id="certificates-export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}},
            "description": "UTF-8 with a byte-order mark (so Excel shows Chinese names); identity numbers masked; "
            "cells a spreadsheet would run as a formula start with `'`",
        },
        **_SEARCH_ERRORS,
    },
)
async def export_certificates(
    filters: Annotated[CertificateFilters, Query()],
    context: ContextDep,
    session: SessionDep,
    reads: UnlockedReadsDep,
    reader: CertificatesSupervise,
    head: HeadOnly,
) -> Response:
    """The same selection as the list, every page of it, as a CSV attachment (`limit` and `cursor` do not apply)."""
    if head:  # the request is checked as for the export, but nothing is read, exported or recorded
        selection = search.selection_for(context, principal=reader, filters=filters)
    else:
        selection = await export.open_export(context, session, principal=reader, filters=filters)
    headers = {
        "Content-Disposition": f'attachment; filename="{export.filename(reader, selection)}"',
        "Cache-Control": "private, no-store",
    }
    if head:
        return headers_only(CSV, headers)
    return StreamingResponse(export.csv_chunks(reads, selection), media_type=CSV, headers=headers)


@router.get(
    "/{number}.pdf",
    operation_id="certificates-pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def certificate_pdf(
    number: str,
    context: ContextDep,
    session: SessionDep,
    verifier: VerifierDep,
    issuer: CertificatesRead,
    head: HeadOnly,
) -> Response:
    return await certificate_pdf_response(context, session, verifier, principal=issuer, number=number, head=head)


@router.get(
    "/{number}/qr.{fmt}",
    operation_id="certificates-qr",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}, 304: {"description": "not modified"}},
)
async def certificate_qr(
    number: str,
    fmt: Literal["png", "svg"],
    request: Request,
    context: ContextDep,
    session: SessionDep,
    viewer: IssuerOrHolder,
    size: Annotated[int, Query(ge=64, le=2048, description="approximate width in pixels")] = 512,
) -> Response:
    """The QR code that opens the verification page; for the issuing body or the holder."""
    return await qr_response(
        context,
        session,
        principal=viewer,
        number=number,
        size=size,
        fmt=fmt,
        if_none_match=request.headers.get("if-none-match"),
    )


@router.get(
    "/{number}/credential",
    operation_id="certificates-credential",
    response_class=Response,
    responses={200: {"content": {"application/vc+jwt": {}}}},
)
async def certificate_credential(
    number: str,
    context: ContextDep,
    session: SessionDep,
    verifier: VerifierDep,
    viewer: IssuerOrHolder,
    head: HeadOnly,
) -> Response:
    """The signed credential (compact JWS, typ vc+jwt), verifiable offline with `registry verify-credential`."""
    return await credential_response(context, session, verifier, principal=viewer, number=number, head=head)


@router.get("/{number}/events", response_model=list[CertificateEventPublic], operation_id="certificates-events")
async def certificate_events(
    record: CertificateToSupervise,
    session: SessionDep,
    viewer: CertificatesSupervise,
    purpose: Annotated[
        Text256 | None,
        Query(
            description="admins: why the bureau reads this history, recorded in the audit log "
            "(`certificate.history_read`; optional, recorded as `not stated` when absent). "
            "Ignored for an evaluation body reading its own"
        ),
    ] = None,
) -> list[CertificateEventPublic]:
    """The certificate's status history with the body's reasons; the bureau's every read of it is audited."""
    return await lifecycle.history(session, principal=viewer, record=record, purpose=purpose)


@router.post(
    "/{number}/revoke",
    response_model=CertificatePublic,
    operation_id="certificates-revoke",
    responses={409: {"description": "illegal transition"}},
)
async def revoke(
    record: CertificateToChange, body: Revocation, context: ContextDep, session: SessionDep, actor: CertificatesRevoke
) -> CertificatePublic:
    return await lifecycle.change_status(
        context,
        session,
        principal=actor,
        record=record,
        action="revoke",
        reason=body.reason,
        reason_code=body.reason_code,
    )


@router.post(
    "/{number}/suspend",
    response_model=CertificatePublic,
    operation_id="certificates-suspend",
    responses={409: {"description": "illegal transition"}},
)
async def suspend(
    record: CertificateToChange, body: StatusChange, context: ContextDep, session: SessionDep, actor: CertificatesRevoke
) -> CertificatePublic:
    return await lifecycle.change_status(
        context, session, principal=actor, record=record, action="suspend", reason=body.reason
    )


@router.post(
    "/{number}/reinstate",
    response_model=CertificatePublic,
    operation_id="certificates-reinstate",
    responses={409: {"description": "illegal transition"}},
)
async def reinstate(
    record: CertificateToChange, body: StatusChange, context: ContextDep, session: SessionDep, actor: CertificatesRevoke
) -> CertificatePublic:
    return await lifecycle.change_status(
        context, session, principal=actor, record=record, action="reinstate", reason=body.reason
    )


@router.post(
    "/{number}/correct",
    response_model=CertificateIssued,
    status_code=201,
    operation_id="certificates-correct",
    responses={
        403: {"description": "not the issuing body, or the corrected award is outside its filed scope"},
        409: {
            "description": "not correctable (only an active certificate is), the holder already has a live "
            "certificate for the corrected entry and level (named), or the same Idempotency-Key is still in flight"
        },
    },
)
async def correct(
    record: CertificateToCorrect,
    body: Correction,
    context: ContextDep,
    session: SessionDep,
    issuer: CertificatesIssue,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    outcome = await lifecycle.correct(
        context, session, principal=issuer, record=record, correction=body, idempotency_key=idempotency_key
    )
    return outcome_response(outcome)


@router.get("/{number}", response_model=CertificatePublic, operation_id="certificates-get")
async def get_certificate(
    number: str, context: ContextDep, session: SessionDep, issuer: CertificatesRead
) -> CertificatePublic:
    return await records.get_own(context, session, principal=issuer, number=number)
