"""Evaluation bodies: admin registration, public look-up."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContextDep, IssuersWrite, SessionDep
from registry.issuers import service as issuers
from registry.issuers.schemas import IssuerCreate, IssuerPublic

router = APIRouter(prefix="/v1/issuers", tags=["issuers"])


@router.post("", response_model=IssuerPublic, status_code=201, operation_id="issuers-create")
async def create_issuer(
    body: IssuerCreate, context: ContextDep, session: SessionDep, admin: IssuersWrite
) -> IssuerPublic:
    return await issuers.create(context, session, actor=admin.actor, body=body)


@router.get("/{code}", response_model=IssuerPublic, operation_id="issuers-get")
async def get_issuer(code: str, session: SessionDep) -> IssuerPublic:
    return await issuers.get_public(session, code)
