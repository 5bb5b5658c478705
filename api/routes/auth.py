"""OAuth 2.0 client-credentials token endpoint, the public JWKS and issuer metadata, and the rotation of the registry's
token key."""

from __future__ import annotations

import base64
import binascii
from functools import partial
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Form, Header, Request
from fastapi.responses import JSONResponse, Response

from api.deps import ClientsWrite, ContextDep, SessionDep, UnlockedReadsDep
from api.errors import DATABASE_UNAVAILABLE, OAUTH_ENDPOINT
from registry.auth import tokens
from registry.auth.schemas import TokenResponse
from registry.credentials import discovery
from registry.errors import FieldError, InvalidClient, UnsupportedGrantType, UnsupportedMediaType, said_masked
from registry.i18n import _
from registry.keys import documents
from registry.keys.schemas import TokenKeyRotated

router = APIRouter(tags=["auth"])

JWK_SET = "application/jwk-set+json"  # RFC 7517 §8.5
_METADATA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "SD-JWT VC issuer metadata: `{issuer, jwks}`"},
    404: {"description": "no such evaluation body"},
    **DATABASE_UNAVAILABLE,
}


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: client_secret_basic, with form-urlencoded id and secret inside the Basic header."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient(_("the Basic authorization header is malformed")) from None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        raise InvalidClient(_("the Basic authorization header is malformed"))
    return unquote(client_id), unquote(client_secret)


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def form_encoded(request: Request) -> None:
    """RFC 6749 §4.4.2: the request is form-encoded. A body in another format (JSON, say) is 415 naming its type,
    not "grant_type: is required" for a grant_type it does carry; no body at all is left to say what is required."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _FORMS and await request.body():
        raise UnsupportedMediaType(
            _(
                "content type {media_type} is not accepted: send application/x-www-form-urlencoded",
                media_type=media_type or "none",
            )
        )


@router.post(
    OAUTH_ENDPOINT,
    response_model=TokenResponse,
    operation_id="auth-token",
    responses={
        401: {
            "description": "wrong client credentials: `error` `invalid_client` (RFC 6749 §5.2), "
            '`WWW-Authenticate: Basic realm="registry"`'
        },
        400: {"description": "bad grant or scope: `error` `unsupported_grant_type` or `invalid_scope`"},
        415: {"description": "the body is not form-encoded: `error` `invalid_request`"},
    },
    dependencies=[Depends(form_encoded)],
)
async def token(
    context: ContextDep,
    session: SessionDep,
    grant_type: Annotated[str, Form(max_length=64)],
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
    scope: Annotated[str | None, Form(max_length=1024)] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    if grant_type != "client_credentials":
        # Named as sent, unless it holds an identity number (typed into the wrong field): never said back whole.
        raise UnsupportedGrantType(
            _("grant_type {grant_type} is not supported", grant_type=repr(said_masked(grant_type))),
            errors=[FieldError("grant_type", _("must be client_credentials"))],
        )
    basic = basic_credentials(authorization)
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        raise InvalidClient(_("client_id and client_secret are required"))
    issued = await tokens.issue_access_token(
        context, session, client_id=client_id, client_secret=client_secret, scope=scope
    )
    # RFC 6749 §5.1: token responses must not be cached.
    return Response(
        issued.model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get(
    "/.well-known/jwks.json",
    operation_id="auth-jwks",
    response_class=Response,
    responses={200: {"content": {JWK_SET: {"schema": {"type": "object"}}}}, **DATABASE_UNAVAILABLE},
)
async def jwks(context: ContextDep, reads: UnlockedReadsDep) -> Response:
    """Every public key: the registry's access-token keys and every evaluation body's signing keys, with validity; a
    body's key under its short kid (``alg`` ``EdDSA`` for Ed25519, as credentials signed before RFC 9864 say) and under
    its URL ``{issuer}/keys/{kid}`` (``alg`` ``Ed25519`` or ``ES256``), the ``kid`` of credentials signed since."""
    return JSONResponse(await reads(partial(discovery.jwks, settings=context.settings)), media_type=JWK_SET)


@router.get(
    "/.well-known/jwt-vc-issuer",
    operation_id="auth-jwt-vc-issuer",
    responses={200: _METADATA_RESPONSES[200], **DATABASE_UNAVAILABLE},
)
async def registry_issuer_metadata(context: ContextDep, reads: UnlockedReadsDep) -> dict[str, Any]:
    """The registry's own issuer metadata (SD-JWT VC): its identifier and the keys of its tokens and statements."""
    return await reads(partial(discovery.registry_metadata, settings=context.settings))


@router.get(
    "/.well-known/jwt-vc-issuer/v1/issuers/{code}",
    operation_id="auth-jwt-vc-issuer-body",
    responses=_METADATA_RESPONSES,
)
async def body_issuer_metadata(code: str, context: ContextDep, reads: UnlockedReadsDep) -> dict[str, Any]:
    """An evaluation body's issuer metadata, where SD-JWT VC puts it for the issuer identifier
    ``{base}/v1/issuers/{code}``: ``{issuer, jwks}``, the body's keys under both their kids."""
    return await reads(partial(discovery.issuer_metadata, code=code, settings=context.settings))


@router.get(
    "/.well-known/jwt-vc-issuer/issuers/{code}", operation_id="auth-jwt-vc-issuer-short", responses=_METADATA_RESPONSES
)
async def body_issuer_metadata_short(code: str, context: ContextDep, reads: UnlockedReadsDep) -> dict[str, Any]:
    """The same as ``/.well-known/jwt-vc-issuer/v1/issuers/{code}``."""
    return await reads(partial(discovery.issuer_metadata, code=code, settings=context.settings))


@router.post(
    "/v1/registry/keys/rotate",
    response_model=TokenKeyRotated,
    status_code=201,
    operation_id="keys-registry-rotate",
    tags=["keys"],
)
async def rotate_registry_key(context: ContextDep, session: SessionDep, admin: ClientsWrite) -> TokenKeyRotated:
    """New tokens are signed with a new key; the retired one stays in the JWKS, and its tokens are honoured, until the
    last token it signed has expired."""
    return await tokens.rotate_key(context, session, actor=admin.actor)


@router.get(
    "/.well-known/pdf-signing-root.pem",
    operation_id="auth-pdf-signing-root",
    responses={200: {"content": {"application/x-pem-file": {}}}, **DATABASE_UNAVAILABLE},
)
async def pdf_signing_root(context: ContextDep, session: SessionDep) -> Response:
    """The registry's root certificate for PDF signatures: add it as a trust anchor to validate an e-certificate."""
    pem = await documents.root_certificate_pem(session, context.box)
    return Response(pem, media_type="application/x-pem-file", headers={"Cache-Control": "public, max-age=86400"})


@router.get(
    "/.well-known/pdf-signing-root.crl",
    operation_id="auth-pdf-signing-crl",
    responses={200: {"content": {"application/pkix-crl": {}}}, **DATABASE_UNAVAILABLE},
)
async def pdf_signing_crl(context: ContextDep, session: SessionDep) -> Response:
    """The root's revocation list: the document certificates of keys marked compromised (DER)."""
    crl = await documents.revocation_list(session, context.box)
    return Response(crl, media_type="application/pkix-crl", headers={"Cache-Control": "public, max-age=300"})
