"""OAuth 2.0 client-credentials token endpoint and the public JWKS."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Form, Header
from fastapi.responses import Response

from api.deps import ContextDep, SessionDep, UnlockedReadsDep
from api.errors import DATABASE_UNAVAILABLE
from registry.auth import tokens
from registry.auth.schemas import TokenResponse
from registry.credentials import discovery
from registry.errors import FieldError, InvalidClient, UnsupportedGrantType
from registry.keys import documents

router = APIRouter(tags=["auth"])


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: client_secret_basic, with form-urlencoded id and secret inside the Basic header."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("the Basic authorization header is malformed") from None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        raise InvalidClient("the Basic authorization header is malformed")
    return unquote(client_id), unquote(client_secret)


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    operation_id="auth-token",
    responses={401: {"description": "wrong client credentials"}, 400: {"description": "bad grant or scope"}},
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
        raise UnsupportedGrantType(
            f"grant_type {grant_type!r} is not supported",
            errors=[FieldError("grant_type", "must be client_credentials")],
        )
    basic = basic_credentials(authorization)
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        raise InvalidClient("client_id and client_secret are required")
    issued = await tokens.issue_access_token(
        context, session, client_id=client_id, client_secret=client_secret, scope=scope
    )
    # RFC 6749 §5.1: token responses must not be cached.
    return Response(
        issued.model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get("/.well-known/jwks.json", operation_id="auth-jwks", responses=DATABASE_UNAVAILABLE)
async def jwks(reads: UnlockedReadsDep) -> dict[str, Any]:
    """Every public key: the registry's access-token keys and every evaluation body's signing keys, with validity."""
    return await reads(discovery.jwks)


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
