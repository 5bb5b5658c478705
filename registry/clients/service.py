"""Registering API clients (admin, evaluation body, partner agency), listing, disabling and enabling them, and
rotating their secrets; their tokens are ``registry.auth``'s business."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import clock
from registry.audit import service as audit
from registry.audit.service import Actor
from registry.auth import client_secrets, tokens
from registry.auth.models import ApiClient
from registry.auth.principals import Principal
from registry.auth.scopes import ROLE_SCOPES, Role
from registry.clients.schemas import (
    ClientCreate,
    ClientCreated,
    ClientFilter,
    ClientPage,
    ClientPublic,
    ClientSecretRotated,
)
from registry.config import Region
from registry.context import RegistryContext
from registry.db import MAX_ROW_ID
from registry.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    LastAdminClient,
    NotFound,
    said_masked,
)
from registry.i18n import _
from registry.issuers import service as issuers
from registry.issuers.models import Issuer
from registry.keys import service as keys
from registry.pagination import decode_cursor, encode_cursor

_PURPOSE = "access management"


async def create(ctx: RegistryContext, session: AsyncSession, *, actor: Actor, body: ClientCreate) -> ClientCreated:
    await _not_under_an_unproven_key(session)
    issuer_id = None
    if body.issuer_code is not None:
        issuer = await issuers.get_by_code(session, body.issuer_code)
        if issuer is None:
            raise InvalidInput.field("issuer_code", _("no evaluation body {code}", code=said_masked(body.issuer_code)))
        issuer_id = issuer.id
    client_id, client_secret = client_secrets.new_client_credentials()
    scopes = sorted(scope.value for scope in ROLE_SCOPES[body.role])
    session.add(
        ApiClient(
            client_id=client_id,
            secret_hash=client_secrets.secret_hash(ctx.box, client_secret),
            role=body.role,
            name=body.name,
            issuer_id=issuer_id,
            region=body.region,
            scopes=scopes,
        )
    )
    await session.flush()
    await audit.append(
        session,
        actor=actor,
        action="client.created",
        object_type="api_client",
        object_id=client_id,
        purpose=_PURPOSE,
        details={"role": body.role, "name": body.name, "issuer_code": body.issuer_code, "region": body.region},
    )
    return ClientCreated(
        client_id=client_id,
        client_secret=client_secret,
        role=body.role,
        name=body.name,
        issuer_code=body.issuer_code,
        region=body.region,
        scopes=scopes,
    )


def _public(client: ApiClient, issuer_code: str | None) -> ClientPublic:
    return ClientPublic(
        client_id=client.client_id,
        role=Role(client.role),
        name=client.name,
        issuer_code=issuer_code,
        region=Region(client.region) if client.region is not None else None,
        scopes=list(client.scopes),
        active=client.active,
        created_at=client.created_at,
        previous_secret_valid_until=client.previous_secret_until,
    )


def _read_cursor(position: list[Any]) -> int:
    (after_id,) = position
    if type(after_id) is not int or not 0 <= after_id <= MAX_ROW_ID:
        raise ValueError("a client cursor holds one client's position")
    return after_id


async def list_clients(session: AsyncSession, *, filters: ClientFilter) -> ClientPage:
    """Oldest first, keyset-paginated on the row id: a client registered while paging lands after the last page."""
    query = select(ApiClient, col(Issuer.code)).outerjoin(Issuer, col(Issuer.id) == col(ApiClient.issuer_id))
    if filters.role is not None:
        query = query.where(col(ApiClient.role) == filters.role)
    if filters.issuer_code is not None:
        query = query.where(col(Issuer.code) == filters.issuer_code)
    if filters.region is not None:
        query = query.where(col(ApiClient.region) == filters.region)
    if filters.active is not None:
        query = query.where(col(ApiClient.active) == filters.active)
    if filters.cursor is not None:
        query = query.where(col(ApiClient.id) > decode_cursor(filters.cursor, _read_cursor))
    rows = (await session.execute(query.order_by(col(ApiClient.id)).limit(filters.limit + 1))).all()
    page = rows[: filters.limit]
    next_cursor = None
    if len(rows) > filters.limit and (last_id := page[-1][0].id) is not None:
        next_cursor = encode_cursor([last_id])
    return ClientPage(data=[_public(client, code) for client, code in page], next_cursor=next_cursor)


async def _load(session: AsyncSession, client_id: str, *, for_update: bool = False) -> tuple[ApiClient, str | None]:
    query = (
        select(ApiClient, col(Issuer.code))
        .outerjoin(Issuer, col(Issuer.id) == col(ApiClient.issuer_id))
        .where(col(ApiClient.client_id) == client_id)
    )
    if for_update:  # the row as it is once locked, not as this session first read it
        query = query.with_for_update(of=ApiClient).execution_options(populate_existing=True)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(_("no API client {client_id}", client_id=said_masked(client_id)))
    return row[0], row[1]


async def get(session: AsyncSession, client_id: str) -> ClientPublic:
    return _public(*await _load(session, client_id))


# Who manages clients on the server's own machine (``registry clients …``): any client, admin clients included.
SERVER_MACHINE = None


def _not_another_admin(client: ApiClient, caller: Principal | None) -> None:
    """An admin client is managed through the API by itself only: a token narrowed to ``clients:write`` must not take
    over (rotate the secret of) or lock out (disable, or re-enable once it was found compromised) the other admin
    clients. On the server's machine (``caller`` None: ``registry clients disable|enable|rotate-secret``) the bureau
    manages every client, a leaked admin client's included."""
    if caller is not None and client.role == Role.admin and client.client_id != caller.client_id:
        raise Forbidden(
            _(
                "API client {client_id} is another admin client: an admin client manages only itself through the API;"
                " make a new admin client on the server's machine (registry clients create --role admin)",
                client_id=client.client_id,
            )
        )


def _not_widening_itself(client: ApiClient, caller: Principal | None) -> None:
    """A token narrowed to fewer scopes than its client holds (``scope=clients:write`` at ``POST /oauth/token``) does
    not rotate that client's own secret: the new secret, shown to it, would open every scope the narrowing left out."""
    if caller is not None and caller.client_id == client.client_id and not set(client.scopes) <= caller.scopes:
        raise Forbidden(
            _(
                "this access token holds fewer scopes than its client, and a new secret would open them all: rotate "
                "the secret with a token of every scope of the client, or on the server's machine (registry clients "
                "rotate-secret)"
            )
        )


async def _not_under_an_unproven_key(session: AsyncSession) -> None:
    """No secret is made while the database's master key is unproven (``keys.master_key_unproven``: API clients of an
    earlier version, nothing sealed): hashed under whatever key this process runs with, its token would prove that key
    and bind the database to it (``registry.auth.tokens.issue_access_token``) — a wrong one locking the right one out.
    A token of a client the database already holds proves the key; then clients are made as ever."""
    if await keys.master_key_unproven(session):
        raise Conflict(
            _(
                "this database's master key has not been confirmed since an upgrade, and a client secret made now "
                "would confirm whichever key this process runs with: first confirm REGISTRY_MASTER_KEY — get a token "
                "with one of the database's existing API clients, or run `registry keys confirm-master` on the "
                "server's machine (--without-proof when no client's secret is known) — then create or rotate clients"
            )
        )


async def lock_admin_clients(session: AsyncSession) -> None:
    """Every admin client's row, enabled or not, locked until the transaction ends, in id order: what a request that
    manages clients takes before it holds its own caller's row (``api.deps.ClientsWrite``). Held first by every such
    request, in one order, the admins' rows cannot be taken crosswise: two admins each holding its own row and then
    asking for all of them (``_lock_enabled_admins``, A disabling itself while B does) would deadlock; and the set
    ``_lock_enabled_admins`` locks later, enabled ones only, is then already held, whatever was enabled meanwhile."""
    query = select(col(ApiClient.id)).where(col(ApiClient.role) == Role.admin).order_by(col(ApiClient.id))
    await session.execute(query.with_for_update())


async def _lock_enabled_admins(session: AsyncSession) -> list[str]:
    """The enabled admin clients, their rows locked until the transaction ends, always in the same order (so two
    requests locking them cannot deadlock). A second request deciding whether it may disable an admin waits here for
    the first to finish, then sees what the first did: two admins disabling themselves at once cannot both succeed."""
    query = (
        select(col(ApiClient.client_id))
        .where(col(ApiClient.role) == Role.admin, col(ApiClient.active).is_(True))
        .order_by(col(ApiClient.id))
        .with_for_update()
    )
    return list((await session.scalars(query)).all())


def _not_the_last_admin(client: ApiClient, enabled_admins: list[str]) -> None:
    """Through the API an admin client manages only itself, so the last enabled one disabling itself would leave the
    registry with no admin over the API, only the server's machine to recover it (``registry clients enable``)."""
    if enabled_admins == [client.client_id]:
        raise LastAdminClient(
            _(
                "API client {client_id} is the last enabled admin client: disabled, it would leave no admin client to"
                " manage the registry through the API; make another admin client on the server's machine first"
                " (registry clients create --role admin), or disable it there (registry clients disable)",
                client_id=client.client_id,
            )
        )


def _actor(caller: Principal | None) -> Actor:
    return Actor(id="cli") if caller is None else caller.actor


async def set_active(
    session: AsyncSession, *, caller: Principal | None, client_id: str, active: bool, reason: str
) -> ClientPublic:
    """Disable or enable a client. A disabled client gets no token, and the tokens it holds stop working at once and
    for good: ``registry.auth.tokens.authenticate`` looks the client up on every request, and refuses a token issued
    before it was last disabled even once it is enabled again. Through the API (``caller`` given) the last enabled
    admin client is not disabled (409); on the server's machine it is, the operator's to undo."""
    # Another admin is refused before anything is locked (a role never changes); the enabled admins are locked only
    # to disable an admin, before the client's own row, in the one order every such request takes (see
    # _lock_enabled_admins). A body's or partner's client is never the last admin: its disable locks no admin's row.
    seen, _code = await _load(session, client_id)
    _not_another_admin(seen, caller)
    guarded = caller is not None and not active and seen.role == Role.admin
    enabled_admins = await _lock_enabled_admins(session) if guarded else None
    client, issuer_code = await _load(session, client_id, for_update=True)
    if client.active == active:
        if active:
            raise IllegalTransition(_("API client {client_id} is already enabled", client_id=client_id))
        raise IllegalTransition(_("API client {client_id} is already disabled", client_id=client_id))
    if enabled_admins is not None:
        _not_the_last_admin(client, enabled_admins)
    client.active = active
    if not active:
        tokens.end_tokens_issued_so_far(client)
    await session.flush()
    await audit.append(
        session,
        actor=_actor(caller),
        action="client.enabled" if active else "client.disabled",
        object_type="api_client",
        object_id=client_id,
        purpose=_PURPOSE,
        details={"reason": reason},
    )
    return _public(client, issuer_code)


async def rotate_secret(
    ctx: RegistryContext, session: AsyncSession, *, caller: Principal | None, client_id: str, keep_old: bool = True
) -> ClientSecretRotated:
    """A new secret, shown once. The one it replaces still opens tokens for the configured grace period (only the
    latest old secret is kept: a second rotation within the grace ends the first one's), and the tokens it opened live
    out their own lifetime. With no grace the old secret is done at once, and so is every token it opened: when the
    configured grace is 0, when ``keep_old`` is False (``registry clients rotate-secret --no-grace``), and when the
    client is disabled — the grace is a handover between a client's old and new configuration, a disabled client has
    no traffic to hand over, and its secret is rotated because it leaked (disable, rotate, enable)."""
    _not_another_admin((await _load(session, client_id))[0], caller)  # before any lock: a role never changes
    client, _issuer_code = await _load(session, client_id, for_update=True)
    _not_widening_itself(client, caller)
    await _not_under_an_unproven_key(session)
    secret = client_secrets.new_secret()
    grace = timedelta(seconds=ctx.settings.client_secret_grace_seconds)
    ended = _why_no_grace(client, grace=grace, keep_old=keep_old)
    keeps_old = ended is None
    client.previous_secret_hash = client.secret_hash if keeps_old else None
    until = client.previous_secret_until = clock.now() + grace if keeps_old else None
    if not keeps_old:
        tokens.end_tokens_issued_so_far(client)
    client.secret_hash = client_secrets.secret_hash(ctx.box, secret)
    await session.flush()
    await audit.append(
        session,
        actor=_actor(caller),
        action="client.secret_rotated",
        object_type="api_client",
        object_id=client_id,
        purpose=_PURPOSE,
        details={
            "previous_secret_valid_until": until.isoformat() if until is not None else None,
            "previous_secret_ended_at_once": ended,
        },
    )
    return ClientSecretRotated(client_id=client_id, client_secret=secret, previous_secret_valid_until=until)


def _why_no_grace(client: ApiClient, *, grace: timedelta, keep_old: bool) -> str | None:
    """Why the replaced secret ends at once (for the audit record), or None when it keeps its grace."""
    if grace <= timedelta(0):
        return "no grace configured"
    if not keep_old:
        return "no grace asked"
    if not client.active:
        return "client disabled"
    return None
