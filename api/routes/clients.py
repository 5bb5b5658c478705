"""API clients (admin only): register, list, disable and enable, rotate a secret."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import ClientsListing, ClientsWrite, ContextDep, SessionDep
from registry.clients import service as clients
from registry.clients.schemas import (
    ClientCreated,
    ClientFilter,
    ClientPage,
    ClientPublic,
    ClientRequest,
    ClientSecretRotated,
    ClientSecretRotation,
    ClientStatusChange,
)

router = APIRouter(prefix="/v1/clients", tags=["clients"])

# The answer holds the secret, shown once: said here as well as by the default (api.caching), which is for answers
# whose routes say nothing.
_NO_STORE = "no-store"


@router.post("", response_model=ClientCreated, status_code=201, operation_id="clients-create")
async def create_client(
    body: ClientRequest, context: ContextDep, session: SessionDep, admin: ClientsWrite, response: Response
) -> ClientCreated:
    """An evaluation body's or a partner agency's client; an admin client is made on the server's machine
    (`registry clients create --role admin`), so the request is 422 naming `role`."""
    response.headers["Cache-Control"] = _NO_STORE
    return await clients.create(context, session, actor=admin.actor, body=body)


@router.get("", response_model=ClientPage, operation_id="clients-list")
async def list_clients(
    filters: Annotated[ClientFilter, Query()], session: SessionDep, admin: ClientsListing
) -> ClientPage:
    """Every API client, oldest first; never a secret or its hash."""
    return await clients.list_clients(session, filters=filters)


@router.get("/{client_id}", response_model=ClientPublic, operation_id="clients-get")
async def get_client(client_id: str, session: SessionDep, admin: ClientsListing) -> ClientPublic:
    return await clients.get(session, client_id)


@router.post(
    "/{client_id}/disable",
    response_model=ClientPublic,
    operation_id="clients-disable",
    responses={
        403: {"description": "another admin client"},
        409: {"description": "already disabled, or the last enabled admin client"},
    },
)
async def disable_client(
    client_id: str, body: ClientStatusChange, session: SessionDep, admin: ClientsWrite
) -> ClientPublic:
    """The client gets no more tokens, and the ones it holds stop working at once, for good: enabling it again does not
    bring them back. An admin client disables only itself here (403 for another one), and not while it is the last
    enabled admin client (409: `registry clients disable` on the server's machine still does)."""
    return await clients.set_active(session, caller=admin, client_id=client_id, active=False, reason=body.reason)


@router.post(
    "/{client_id}/enable",
    response_model=ClientPublic,
    operation_id="clients-enable",
    responses={403: {"description": "another admin client"}, 409: {"description": "not disabled"}},
)
async def enable_client(
    client_id: str, body: ClientStatusChange, session: SessionDep, admin: ClientsWrite
) -> ClientPublic:
    return await clients.set_active(session, caller=admin, client_id=client_id, active=True, reason=body.reason)


@router.post(
    "/{client_id}/rotate-secret",
    response_model=ClientSecretRotated,
    operation_id="clients-rotate-secret",
    responses={403: {"description": "another admin client"}},
)
async def rotate_client_secret(
    client_id: str,
    context: ContextDep,
    session: SessionDep,
    admin: ClientsWrite,
    response: Response,
    body: ClientSecretRotation | None = None,
) -> ClientSecretRotated:
    """A new secret, shown once. The previous one still opens tokens for REGISTRY_CLIENT_SECRET_GRACE_SECONDS, unless
    the body says `{"grace": false}` (a leaked secret), the grace is configured 0, or the client is disabled: then it
    and every token it opened end at once (`previous_secret_valid_until` null)."""
    response.headers["Cache-Control"] = _NO_STORE
    keep_old = body.grace if body is not None else True
    return await clients.rotate_secret(context, session, caller=admin, client_id=client_id, keep_old=keep_old)
