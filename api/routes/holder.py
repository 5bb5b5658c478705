"""Holders: sign in with identity document + claim code, list own certificates, download the e-certificate PDF,
share a certificate through an expiring link, and see who verified their certificates."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.deps import ContextDep, IdentityProviderDep, PrincipalDep, SessionDep, VerifierDep
from api.documents import certificate_pdf_response
from api.errors import language, registry_problem, said_in
from api.head import HeadOnly
from api.limits import client_address
from api.routes.pages import verdict_words
from registry.auth import tokens
from registry.auth.principals import Principal
from registry.auth.scopes import Role
from registry.errors import Forbidden, WrongClaimCode
from registry.holder_access import scope, share_links, sign_in, standing
from registry.holder_access.schemas import (
    ExternalSessionCreate,
    HolderCertificate,
    HolderSession,
    HolderSessionCreate,
    ShareLinkCreate,
    ShareLinkCreated,
    ShareLinkPublic,
)
from registry.i18n import Language, _, translate
from registry.verification import visits
from registry.verification.schemas import Verification
from registry.verification.visits import VisitPublic

_NO_STORE = {"Cache-Control": "no-store"}
HOLDER_SCOPE_HEADER = (
    "`issuing-body`: the session was opened with a claim code and lists only the certificates of the evaluation "
    "body that issued it; certificates from other bodies appear after signing in with that body's claim code, or "
    "through the identity provider. `all`: a session through the identity provider, listing every body's."
)


def _kept_by_no_cache(response: Response) -> None:
    """A holder's answers (their certificates with QR tokens, a share link's one-time URL, who looked) are theirs
    alone: no cache keeps them, the browser's included. Answers a route builds itself say so themselves."""
    response.headers.update(_NO_STORE)


router = APIRouter(prefix="/v1/holder", tags=["holder"], dependencies=[Depends(_kept_by_no_cache)])


async def _holder(principal: PrincipalDep) -> Principal:
    if principal.role is not Role.holder:
        raise Forbidden(_("this endpoint is for holders; sign in at POST /v1/holder/sessions"))
    return principal


HolderDep = Annotated[Principal, Depends(_holder)]


@router.post(
    "/sessions",
    response_model=HolderSession,
    status_code=201,
    operation_id="holder-sessions-create",
    responses={
        401: {"description": "no match"},
        429: {"description": "over the rate limit, or locked after five wrong claim codes from your network"},
    },
)
async def open_session(
    body: HolderSessionCreate, request: Request, context: ContextDep, session: SessionDep
) -> Response:
    opened = await sign_in.with_claim_code(context, session, request=body, client_address=client_address(request.scope))
    if isinstance(opened, WrongClaimCode):
        # Answered, not raised: the request's transaction then commits the strike this attempt recorded. This is the
        # one place a failed request keeps a write.
        return registry_problem(opened, instance=request.url.path, lang=language(request.scope))
    return _session_answer(opened, language(request.scope))


def _session_answer(opened: HolderSession, lang: Language) -> Response:
    """The new session, its ``notice`` (why other bodies' certificates are not listed) in the reader's language."""
    if opened.notice is not None:
        opened = opened.model_copy(update={"notice": translate(scope.other_bodies_notice(), lang)})
    answer = Response(opened.model_dump_json(), status_code=201, media_type="application/json", headers=_NO_STORE)
    return said_in(answer, lang)


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
async def open_external_session(
    body: ExternalSessionCreate, context: ContextDep, session: SessionDep, provider: IdentityProviderDep
) -> Response:
    """Sign in with an ID token from the configured external identity provider (REGISTRY_HOLDER_IDP_*)."""
    opened = await sign_in.with_identity_provider(context, session, provider=provider, id_token=body.id_token)
    return Response(opened.model_dump_json(), status_code=201, media_type="application/json", headers=_NO_STORE)


@router.delete(
    "/sessions/current",
    status_code=204,
    operation_id="holder-sessions-end",
    responses={204: {"description": "signed out: this holder token is refused from now on"}},
)
async def end_session(session: SessionDep, holder: HolderDep) -> Response:
    """Sign out: the holder token that authorises this request is refused from now on, not only forgotten by the
    client (tokens live 15 minutes)."""
    await tokens.end_session(session, holder)
    return Response(status_code=204, headers=_NO_STORE)


@router.get(
    "/certificates",
    response_model=list[HolderCertificate],
    operation_id="holder-certificates-list",
    responses={200: {"headers": {"Holder-Scope": {"description": HOLDER_SCOPE_HEADER, "schema": {"type": "string"}}}}},
)
async def list_certificates(
    request: Request,
    response: Response,
    context: ContextDep,
    session: SessionDep,
    verifier: VerifierDep,
    holder: HolderDep,
) -> list[HolderCertificate]:
    """Every certificate issued to the holder that the session reads, each with what verifying it answers now
    (``result``, ``reason``...: the same judgement ``GET /v1/verify/{token}`` makes), and what that means in the
    reader's language. A session opened with a claim code reads only the certificates of the evaluation body that
    issued the code (header ``Holder-Scope: issuing-body``; the session's ``notice`` says why): certificates from
    other bodies appear after signing in with that body's claim code, or through the identity provider
    (``Holder-Scope: all``)."""
    lang = language(request.scope)
    said_in(response, lang)
    response.headers["Holder-Scope"] = "all" if holder.holder_issuer_id is None else "issuing-body"

    def words(answer: Verification) -> tuple[str, str | None]:
        said = verdict_words(answer, lang)
        return said.meaning, said.reason

    return await standing.list_for_holder(context, session, verifier, principal=holder, words=words)


@router.get(
    "/certificates/{number}.pdf",
    operation_id="holder-certificates-pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def certificate_pdf(
    number: str,
    context: ContextDep,
    session: SessionDep,
    verifier: VerifierDep,
    holder: HolderDep,
    head: HeadOnly,
) -> Response:
    return await certificate_pdf_response(context, session, verifier, principal=holder, number=number, head=head)


@router.post(
    "/share-links",
    response_model=ShareLinkCreated,
    status_code=201,
    operation_id="holder-share-links-create",
    responses={404: {"description": "not a certificate of this holder"}},
)
async def create_share_link(
    body: ShareLinkCreate, context: ContextDep, session: SessionDep, holder: HolderDep
) -> ShareLinkCreated:
    """A link that opens the certificate's verification page with the purpose shown; its URL is shown only once."""
    return await share_links.create(context.settings, session, principal=holder, request=body)


@router.get("/share-links", response_model=list[ShareLinkPublic], operation_id="holder-share-links-list")
async def list_share_links(session: SessionDep, holder: HolderDep) -> list[ShareLinkPublic]:
    return await share_links.list_for_holder(session, principal=holder)


@router.delete(
    "/share-links/{link_id}",
    status_code=204,
    operation_id="holder-share-links-withdraw",
    responses={404: {"description": "no such link of this holder"}},
)
async def withdraw_share_link(link_id: uuid.UUID, session: SessionDep, holder: HolderDep) -> Response:
    await share_links.withdraw(session, principal=holder, link_id=link_id)
    return Response(status_code=204)


@router.get("/verifications", response_model=list[VisitPublic], operation_id="holder-verifications-list")
async def list_verifications(session: SessionDep, holder: HolderDep) -> list[VisitPublic]:
    """Who looked: each verification of the holder's certificates that reached the registry (time, channel, purpose,
    region), newest first. Never the verifier's address; answers a cache gave without asking are not counted."""
    return await visits.list_public(session, principal=holder)
