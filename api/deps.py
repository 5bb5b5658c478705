"""Dependencies: the request's transaction, the registry context and verifier, the authenticated principal with its
scopes, and the certificate a request is about (loaded and checked for the caller before its body is read)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.auth import tokens
from registry.auth.principals import Principal, require
from registry.auth.scopes import Role, Scope
from registry.certificates.records import CertificateRecord, get_visible
from registry.clients import service as clients
from registry.context import RegistryContext
from registry.errors import Unauthenticated
from registry.faults import Reads
from registry.federation.peers import Federation
from registry.holder_access.identity_provider import IdentityProvider
from registry.i18n import Language, _, language_of
from registry.verification.reading import Reader
from registry.verification.replica import RoutedReads
from registry.verification.verifier import Verifier


async def get_context(request: Request) -> RegistryContext:
    # async on purpose: FastAPI runs a plain def dependency in a worker thread, a thread hop on every request.
    context: RegistryContext = request.app.state.context
    return context


async def get_verifier(request: Request) -> Verifier:
    verifier: Verifier = request.app.state.verifier
    return verifier


async def get_federation(request: Request) -> Federation:
    federation: Federation = request.app.state.federation
    return federation


async def get_identity_provider(request: Request) -> IdentityProvider | None:
    provider: IdentityProvider | None = request.app.state.identity_provider
    return provider


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
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def get_reads(request: Request) -> Reads:
    """Public reads that change nothing (status lists), on the read replica while it serves, each in a session of
    its own: one that loses its connection runs once more on a fresh one (registry.faults.Reads) — on the primary when
    the replica failed it (registry.verification.replica)."""
    return RoutedReads(request.app.state.read_route)


async def get_unlocked_reads(request: Request) -> Reads:
    """Like ``get_reads``, taking no lock (see ``get_unlocked_session``): for the JWKS, which peers fetch."""
    return Reads(request.app.state.unlocked_sessions)


async def get_unlocked_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Reads that take no lock (autocommit, each statement on its own; on SQLite every transaction is BEGIN
    IMMEDIATE and holds the write lock): for handlers that wait on another node, and for what a node fetches from
    this one while it waits (the JWKS) — so two nodes asking each other never wait on each other's lock."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.unlocked_sessions
    async with factory() as session:
        yield session


async def get_reader(request: Request) -> AsyncIterator[Reader]:
    """Public verification's reads (the replica while it serves): the driver pool on PostgreSQL, autocommit
    otherwise."""
    async with Reader(request.app.state.read_route) as reader:
        yield reader


_LANG = "page language: zh or en (zh-CN, en-US, any case); anything else is zh"


def page_language(lang: Annotated[str, Query(description=_LANG)] = "zh") -> Language:
    """A page's language (``?lang=``): a link naming another language, a region or capitals opens a page, not an
    error. The pages' one reading of it: the verification page and the holder's pages."""
    return "en" if language_of(lang) == "en" else "zh"  # "*" too: the API's reading of a tag, Chinese by default


Lang = Annotated[Language, Depends(page_language)]
ContextDep = Annotated[RegistryContext, Depends(get_context)]
VerifierDep = Annotated[Verifier, Depends(get_verifier)]
FederationDep = Annotated[Federation, Depends(get_federation)]
IdentityProviderDep = Annotated[IdentityProvider | None, Depends(get_identity_provider)]
ReaderDep = Annotated[Reader, Depends(get_reader, scope="function")]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadsDep = Annotated[Reads, Depends(get_reads)]
UnlockedReadsDep = Annotated[Reads, Depends(get_unlocked_reads)]
UnlockedSessionDep = Annotated[AsyncSession, Depends(get_unlocked_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /oauth/token")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(_("a Bearer access token is required"))
    return credentials.credentials


async def get_principal(context: ContextDep, session: SessionDep, credentials: BearerDep) -> Principal:
    return await tokens.authenticate(context, session, _bearer_token(credentials))


async def get_held_principal(context: ContextDep, session: SessionDep, credentials: BearerDep) -> Principal:
    """Like ``get_principal``, the client's row held until the request's transaction ends (``tokens.authenticate``):
    for requests that write (issue, change a certificate's status, answer a recognition question with its audit
    record, an admin's writes), which a disable or a secret rotation must not land in the middle of."""
    return await tokens.authenticate(context, session, _bearer_token(credentials), hold=True)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
HeldPrincipalDep = Annotated[Principal, Depends(get_held_principal)]
ADMIN = frozenset({Role.admin})
ISSUER = frozenset({Role.issuer})
ISSUER_OR_ADMIN = frozenset({Role.issuer, Role.admin})


class Authorize:
    """``Depends(Authorize(scope=..., roles=...))``: 401 without a valid token, 403 without the scope or role."""

    def __init__(self, *, scope: Scope, roles: frozenset[Role] | None = None) -> None:
        self.scope = scope
        self.roles = roles

    async def __call__(self, principal: PrincipalDep) -> Principal:
        return require(principal, scope=self.scope, roles=self.roles)


class AuthorizeHeld(Authorize):
    """Like ``Authorize``, the client's row held until the request's transaction ends (``get_held_principal``)."""

    async def __call__(self, principal: HeldPrincipalDep) -> Principal:
        return require(principal, scope=self.scope, roles=self.roles)


class AuthorizeAdminsFirst(AuthorizeHeld):
    """Like ``AuthorizeHeld``, for the requests that manage API clients: checked once without a lock (401 and 403
    take none). An admin's request about its own client (``/v1/clients/{client_id}/…`` naming itself) then locks every
    admin client's row (``clients.lock_admin_clients``) before the caller is checked again with its row held: it locks
    admins' rows for update (its own; a disable every enabled admin's), and had each held its caller's row first, A
    disabling itself while B does would each hold one row and wait for the other's. Taken first, in one order, they
    queue instead. Any other (a body's or partner's client, a new client, the registry's key) takes no admin's row
    but its caller's: a disable waiting for a body's batch holds up that body alone, never every admin's writes."""

    async def __call__(  # type: ignore[override]
        self, request: Request, context: ContextDep, session: SessionDep, credentials: BearerDep
    ) -> Principal:
        caller = require(await get_principal(context, session, credentials), scope=self.scope, roles=self.roles)
        if request.path_params.get("client_id") == caller.client_id:
            await clients.lock_admin_clients(session)
        return await super().__call__(await get_held_principal(context, session, credentials))


RecognitionWrite = Annotated[Principal, Depends(AuthorizeHeld(scope=Scope.recognition_write, roles=ADMIN))]
RecognitionRead = Annotated[Principal, Depends(Authorize(scope=Scope.recognition_read))]


class AuthorizeBriefly(Authorize):
    """Like ``Authorize``, but on a short session of its own, so the request holds no transaction (on SQLite: the
    write lock) while it waits: for a large upload to arrive, or for another region's node to answer."""

    async def __call__(  # type: ignore[override]
        self, request: Request, context: ContextDep, credentials: BearerDep
    ) -> Principal:
        token = _bearer_token(credentials)
        factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
        async with factory() as session, session.begin():
            principal = await tokens.authenticate(context, session, token)
        return require(principal, scope=self.scope, roles=self.roles)


IssuerBeforeUpload = Annotated[Principal, Depends(AuthorizeBriefly(scope=Scope.certificates_issue, roles=ISSUER))]
RecognitionAsk = Annotated[Principal, Depends(AuthorizeBriefly(scope=Scope.recognition_read))]
# Writes hold their caller's row (``AuthorizeHeld``): a disable or a secret rotation waits for them or is seen (401).
# The listings of the same scopes change nothing, and hold nothing.
CatalogueWrite = Annotated[Principal, Depends(AuthorizeHeld(scope=Scope.catalogue_write, roles=ADMIN))]
IssuersWrite = Annotated[Principal, Depends(AuthorizeHeld(scope=Scope.issuers_write, roles=ADMIN))]
IssuersListing = Annotated[Principal, Depends(Authorize(scope=Scope.issuers_write, roles=ADMIN))]
ClientsWrite = Annotated[Principal, Depends(AuthorizeAdminsFirst(scope=Scope.clients_write, roles=ADMIN))]
ClientsListing = Annotated[Principal, Depends(Authorize(scope=Scope.clients_write, roles=ADMIN))]
CertificatesIssue = Annotated[Principal, Depends(AuthorizeHeld(scope=Scope.certificates_issue, roles=ISSUER))]
CertificatesRead = Annotated[Principal, Depends(Authorize(scope=Scope.certificates_read, roles=ISSUER))]
# A status change (revoke, suspend, reinstate, the bureau's hold) holds its caller's row as issuance does.
CertificatesRevoke = Annotated[
    Principal, Depends(AuthorizeHeld(scope=Scope.certificates_revoke, roles=ISSUER_OR_ADMIN))
]
CertificatesSupervise = Annotated[Principal, Depends(Authorize(scope=Scope.certificates_read, roles=ISSUER_OR_ADMIN))]


async def _issuer_or_holder(principal: PrincipalDep) -> Principal:
    if principal.role is Role.holder:
        return principal
    return require(principal, scope=Scope.certificates_read, roles=ISSUER)


IssuerOrHolder = Annotated[Principal, Depends(_issuer_or_holder)]


# The certificate a status change or correction is about, locked for the change. A dependency, so it runs before
# FastAPI reads the request body: another body's caller gets 404 whatever the body says, never a 422 about it.
async def _certificate_to_change(number: str, session: SessionDep, actor: CertificatesRevoke) -> CertificateRecord:
    return await get_visible(session, principal=actor, number=number, for_update=True)


async def _certificate_to_correct(number: str, session: SessionDep, issuer: CertificatesIssue) -> CertificateRecord:
    return await get_visible(session, principal=issuer, number=number, for_update=True)


async def _certificate_to_supervise(
    number: str, session: SessionDep, viewer: CertificatesSupervise
) -> CertificateRecord:
    return await get_visible(session, principal=viewer, number=number)


CertificateToChange = Annotated[CertificateRecord, Depends(_certificate_to_change)]
CertificateToCorrect = Annotated[CertificateRecord, Depends(_certificate_to_correct)]
CertificateToSupervise = Annotated[CertificateRecord, Depends(_certificate_to_supervise)]
