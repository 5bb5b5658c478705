"""Dependencies: the request's transaction, the registry context, and the authenticated principal with its scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.certificates.verification import Reader
from registry.clients import service as clients
from registry.clients.models import Role, Scope
from registry.clients.service import Principal
from registry.context import RegistryContext
from registry.errors import RegistryError, Unauthenticated


async def get_context(request: Request) -> RegistryContext:
    # async on purpose: FastAPI runs a plain def dependency in a worker thread, a thread hop on every request.
    context: RegistryContext = request.app.state.context
    return context


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: committed when the handler returns, rolled back when it raises.

    Used with ``scope="function"`` so the commit happens before the response is sent: a client never sees 201 for
    something that was not stored.
    """
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as session:
        await session.begin()
        try:
            yield session
        except RegistryError as exc:
            await (session.commit() if exc.commit else session.rollback())
            raise
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Read-only work (public verification) goes to the read replica when one is configured."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.read_sessions
    async with factory() as session, session.begin():
        yield session


def reader(request: Request) -> Reader:
    """Public verification's reads (replica when configured): the driver pool on PostgreSQL, autocommit otherwise."""
    return Reader(request.app.state.read_engine, request.app.state.read_pool)


async def get_reader(request: Request) -> AsyncIterator[Reader]:
    async with reader(request) as opened:
        yield opened


ContextDep = Annotated[RegistryContext, Depends(get_context)]
ReaderDep = Annotated[Reader, Depends(get_reader, scope="function")]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /oauth/token")


async def get_principal(
    context: ContextDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a Bearer access token is required")
    return await clients.authenticate(context, session, credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def issuer_before_upload(
    request: Request,
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate on a short session of its own, so a large upload is read only for a caller allowed to issue and
    no transaction (on SQLite: the write lock) is held while it arrives."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a Bearer access token is required")
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as session, session.begin():
        principal = await clients.authenticate(context, session, credentials.credentials)
    return clients.require(principal, scope=Scope.certificates_issue, roles=ISSUER)


IssuerBeforeUpload = Annotated[Principal, Depends(issuer_before_upload)]


class Authorize:
    """``Depends(Authorize(scope=..., roles=...))``: 401 without a valid token, 403 without the scope or role."""

    def __init__(self, *, scope: Scope, roles: frozenset[Role] | None = None) -> None:
        self.scope = scope
        self.roles = roles

    async def __call__(self, principal: PrincipalDep) -> Principal:
        return clients.require(principal, scope=self.scope, roles=self.roles)


ADMIN = frozenset({Role.admin})
ISSUER = frozenset({Role.issuer})

CatalogueWrite = Annotated[Principal, Depends(Authorize(scope=Scope.catalogue_write, roles=ADMIN))]
IssuersWrite = Annotated[Principal, Depends(Authorize(scope=Scope.issuers_write, roles=ADMIN))]
ClientsWrite = Annotated[Principal, Depends(Authorize(scope=Scope.clients_write, roles=ADMIN))]
CertificatesIssue = Annotated[Principal, Depends(Authorize(scope=Scope.certificates_issue, roles=ISSUER))]
CertificatesRead = Annotated[Principal, Depends(Authorize(scope=Scope.certificates_read, roles=ISSUER))]


async def _issuer_or_holder(principal: PrincipalDep) -> Principal:
    if principal.role is Role.holder:
        return principal
    return clients.require(principal, scope=Scope.certificates_read, roles=ISSUER)


IssuerOrHolder = Annotated[Principal, Depends(_issuer_or_holder)]
ISSUER_OR_ADMIN = frozenset({Role.issuer, Role.admin})
CertificatesRevoke = Annotated[Principal, Depends(Authorize(scope=Scope.certificates_revoke, roles=ISSUER_OR_ADMIN))]
CertificatesSupervise = Annotated[Principal, Depends(Authorize(scope=Scope.certificates_read, roles=ISSUER_OR_ADMIN))]
