"""Evaluation bodies: admin registration, public look-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, Response

from api.deps import ContextDep, IssuersListing, IssuersWrite, SessionDep
from registry.certificates.schemas import StatusChange
from registry.credentials import discovery
from registry.issuers import amendments, listing
from registry.issuers import service as issuers
from registry.issuers.models import IssuerStatus
from registry.issuers.schemas import (
    IssuerCreate,
    IssuerDocument,
    IssuerFilter,
    IssuerPage,
    IssuerPublic,
    KeyCompromise,
    KeyPublic,
    KeyRotation,
    ScopeAmendment,
    ScopeWithdrawal,
)

router = APIRouter(prefix="/v1/issuers", tags=["issuers"])

JWK = "application/jwk+json"  # RFC 7517 §8.5


@router.post("", response_model=IssuerPublic, status_code=201, operation_id="issuers-create", responses={409: {}})
async def create_issuer(
    body: IssuerCreate, context: ContextDep, session: SessionDep, admin: IssuersWrite
) -> IssuerPublic:
    return await issuers.create(context, session, actor=admin.actor, body=body)


@router.get("", response_model=IssuerPage, operation_id="issuers-list")
async def list_issuers(
    filters: Annotated[IssuerFilter, Query()], session: SessionDep, admin: IssuersListing
) -> IssuerPage:
    """Every evaluation body the registry knows, in code order, as ``GET /v1/issuers/{code}`` shows each."""
    return await listing.list_issuers(session, filters=filters)


@router.post(
    "/{code}/scopes",
    response_model=IssuerPublic,
    status_code=201,
    operation_id="issuers-amend-scope",
    responses={409: {"description": "a version of that type already starts on or after effective_from"}},
)
async def amend_scope(code: str, body: ScopeAmendment, session: SessionDep, admin: IssuersWrite) -> IssuerPublic:
    """A new version of the body's filing for one type from ``effective_from``; the versions it replaces keep their
    content and end the day before, so every certificate is still judged by the filing of its award date."""
    return await amendments.amend_scope(session, actor=admin.actor, code=code, body=body)


@router.post(
    "/{code}/scopes/withdraw",
    response_model=IssuerPublic,
    operation_id="issuers-withdraw-scope-amendment",
    responses={
        404: {"description": "no amendment of that type from that day"},
        409: {"description": "it has taken effect, or a later amendment of that type was filed after it"},
    },
)
async def withdraw_scope_amendment(
    code: str, body: ScopeWithdrawal, session: SessionDep, admin: IssuersWrite
) -> IssuerPublic:
    """Withdraw a scheduled amendment of the body's filing before it takes effect: its version goes, and the
    versions it closed keep the last day they were filed with. The latest amendment of a type goes first."""
    return await amendments.withdraw(session, actor=admin.actor, code=code, body=body)


@router.post(
    "/{code}/suspend",
    response_model=IssuerPublic,
    operation_id="issuers-suspend",
    responses={409: {"description": "already suspended"}},
)
async def suspend_issuer(code: str, body: StatusChange, session: SessionDep, admin: IssuersWrite) -> IssuerPublic:
    """A suspended body cannot issue; its certificates stay valid unless revoked."""
    return await issuers.set_status(
        session, actor=admin.actor, code=code, status=IssuerStatus.suspended, reason=body.reason
    )


@router.post(
    "/{code}/reinstate",
    response_model=IssuerPublic,
    operation_id="issuers-reinstate",
    responses={409: {"description": "not suspended"}},
)
async def reinstate_issuer(code: str, body: StatusChange, session: SessionDep, admin: IssuersWrite) -> IssuerPublic:
    return await issuers.set_status(
        session, actor=admin.actor, code=code, status=IssuerStatus.active, reason=body.reason
    )


@router.post("/{code}/keys/rotate", response_model=KeyPublic, status_code=201, operation_id="issuers-keys-rotate")
async def rotate_key(
    code: str,
    context: ContextDep,
    session: SessionDep,
    admin: IssuersWrite,
    body: Annotated[KeyRotation | None, Body()] = None,
) -> KeyPublic:
    """The new key's ``algorithm`` is Ed25519 unless the body asks for ES256."""
    chosen = (body or KeyRotation()).algorithm
    key = await issuers.rotate_key(context, session, actor=admin.actor, code=code, algorithm=chosen)
    return KeyPublic.of(key)


@router.post(
    "/{code}/keys/{kid}/compromise",
    response_model=KeyPublic,
    operation_id="issuers-keys-compromise",
    responses={409: {"description": "the key is already compromised from an earlier `compromised_from`"}},
)
async def compromise_key(
    code: str, kid: str, body: KeyCompromise, context: ContextDep, session: SessionDep, admin: IssuersWrite
) -> KeyPublic:
    """``compromised_from`` may not be after now (422); on a key already compromised it may only move the date
    earlier (a later one is 409, the same one changes nothing)."""
    key = await issuers.mark_key_compromised(
        context, session, actor=admin.actor, code=code, kid=kid, since=body.compromised_from
    )
    return KeyPublic.of(key)


@router.get("/{code}", response_model=IssuerDocument, operation_id="issuers-get")
async def get_issuer(code: str, context: ContextDep, session: SessionDep) -> IssuerDocument:
    """What the body's issuer identifier (``{base}/v1/issuers/{code}``, its credentials' ``iss``) resolves to: the
    body, and each key it has signed with as a JWK with its algorithm and validity — the binding of keys to body."""
    return await discovery.issuer_document(session, code, base_url=context.settings.public_base_url)


@router.get(
    "/{code}/keys/{kid}",
    operation_id="issuers-keys-get",
    response_class=Response,
    responses={200: {"content": {JWK: {"schema": {"type": "object"}}}}, 404: {}},
)
async def get_key(code: str, kid: str, context: ContextDep, session: SessionDep) -> Response:
    """The key a credential's ``kid`` (``{base}/v1/issuers/{code}/keys/{kid}``) names, as a JWK with its validity."""
    jwk = await discovery.key_document(session, code, kid, base_url=context.settings.public_base_url)
    return JSONResponse(jwk, media_type=JWK)
