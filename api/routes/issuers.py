"""Evaluation bodies: admin registration, public look-up."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContextDep, IssuersWrite, SessionDep
from registry.certificates.schemas import StatusChange
from registry.issuers import service as issuers
from registry.issuers.models import IssuerStatus
from registry.issuers.schemas import IssuerCreate, IssuerPublic, KeyCompromise, KeyPublic

router = APIRouter(prefix="/v1/issuers", tags=["issuers"])


@router.post("", response_model=IssuerPublic, status_code=201, operation_id="issuers-create", responses={409: {}})
async def create_issuer(
    body: IssuerCreate, context: ContextDep, session: SessionDep, admin: IssuersWrite
) -> IssuerPublic:
    return await issuers.create(context, session, actor=admin.actor, body=body)


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
async def rotate_key(code: str, context: ContextDep, session: SessionDep, admin: IssuersWrite) -> KeyPublic:
    key = await issuers.rotate_key(context, session, actor=admin.actor, code=code)
    return KeyPublic.of(key)


@router.post("/{code}/keys/{kid}/compromise", response_model=KeyPublic, operation_id="issuers-keys-compromise")
async def compromise_key(
    code: str, kid: str, body: KeyCompromise, context: ContextDep, session: SessionDep, admin: IssuersWrite
) -> KeyPublic:
    key = await issuers.mark_key_compromised(
        context, session, actor=admin.actor, code=code, kid=kid, since=body.compromised_from
    )
    return KeyPublic.of(key)


@router.get("/{code}", response_model=IssuerPublic, operation_id="issuers-get")
async def get_issuer(code: str, session: SessionDep) -> IssuerPublic:
    return await issuers.get_public(session, code)
