"""Holders: sign in with identity document + claim code, list own certificates, download the e-certificate PDF."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from api.deps import ContextDep, PrincipalDep, SessionDep
from api.documents import certificate_pdf_response
from registry.certificates import service as certificates
from registry.certificates.schemas import CertificatePublic
from registry.clients.models import Role
from registry.clients.service import Principal
from registry.errors import Forbidden
from registry.holders import sessions
from registry.holders.schemas import ExternalSessionCreate, HolderSession, HolderSessionCreate

router = APIRouter(prefix="/v1/holder", tags=["holder"])


async def _holder(principal: PrincipalDep) -> Principal:
    if principal.role is not Role.holder:
        raise Forbidden("this endpoint is for holders; sign in at POST /v1/holder/sessions")
    return principal


HolderDep = Annotated[Principal, Depends(_holder)]


@router.post(
    "/sessions",
    response_model=HolderSession,
    status_code=201,
    operation_id="holder-sessions-create",
    responses={401: {"description": "no match"}, 429: {"description": "locked after five wrong claim codes"}},
)
async def open_session(body: HolderSessionCreate, context: ContextDep, session: SessionDep) -> Response:
    opened = await sessions.open_session(context, session, request=body)
    return Response(
        opened.model_dump_json(), status_code=201, media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/sessions/external",
    response_model=HolderSession,
    status_code=201,
    operation_id="holder-sessions-external",
    responses={
        401: {"description": "token not valid, or no certificates for this identity"},
        404: {"description": "no identity provider configured"},
    },
)
async def open_external_session(body: ExternalSessionCreate, context: ContextDep, session: SessionDep) -> Response:
    """Sign in with an ID token from the configured external identity provider (REGISTRY_HOLDER_IDP_*)."""
    opened = await sessions.open_external_session(context, session, id_token=body.id_token)
    return Response(
        opened.model_dump_json(), status_code=201, media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@router.get("/certificates", response_model=list[CertificatePublic], operation_id="holder-certificates-list")
async def list_certificates(context: ContextDep, session: SessionDep, holder: HolderDep) -> list[CertificatePublic]:
    return await certificates.list_for_holder(context, session, principal=holder)


@router.get(
    "/certificates/{number}.pdf",
    operation_id="holder-certificates-pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def certificate_pdf(number: str, context: ContextDep, session: SessionDep, holder: HolderDep) -> Response:
    return await certificate_pdf_response(context, session, principal=holder, number=number)
