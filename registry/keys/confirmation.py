"""Confirming the master key of a database an earlier version left unproven (API clients, nothing sealed:
``service.master_key_unproven``) on the server's machine — ``registry keys confirm-master`` — when no client is there
to ask for the token that would confirm it (``registry.auth.tokens.issue_access_token``).

With a client's secret it is the token request's proof and binding, the same two functions: the secret opens the
client's keyed hash (``registry.auth.tokens.client_opened_by``), so the key is the clients' own, and the registry's
token key sealed under it binds the database (``service.registry_token_key``). Without proof it binds on the
operator's word, naming the clients whose secrets no longer open if the key was not theirs, for a new secret each
(allowed once bound).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import service as audit
from registry.audit.service import Actor
from registry.errors import InvalidClient
from registry.i18n import _
from registry.keys import service as keys
from registry.keys.key_check import check_master_key
from registry.keys.secrets_box import SecretsBox

CONFIRMED = "master_key.confirmed"
_PURPOSE = "key management"
# API clients by their table alone: registry.auth imports this package (``service._API_CLIENTS``).
_API_CLIENTS = table("api_clients", column("id"), column("client_id"), column("role"), column("name"))


@dataclass(frozen=True)
class SecretProof:
    """An API client's secret, as the check that it opens the client's keyed hash: ``check`` raises InvalidClient
    unless it does (``registry.auth.tokens.client_opened_by``, the token request's own, which the caller passes:
    registry.auth imports this package)."""

    client_id: str
    check: Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class UncheckedClient:
    """An API client whose secret the master key was bound without: it opens no more if the key was not its own."""

    client_id: str
    role: str
    name: str


@dataclass(frozen=True)
class Confirmation:
    """How the database stood (``service.master_key_state``); once it was unproven, the token key that binds it now
    and, bound without proof, the clients whose secrets could not be checked."""

    state: keys.MasterKeyState
    kid: str | None = None
    unchecked: tuple[UncheckedClient, ...] = ()


async def master_key_state(session: AsyncSession) -> keys.MasterKeyState:
    """The state, with the registry keys' turn held until the transaction ends: a client's token binding the database
    meanwhile is seen (``service.lock_registry_keys``)."""
    await keys.lock_registry_keys(session)
    return await keys.master_key_state(session)


async def unproven_clients(session: AsyncSession) -> tuple[UncheckedClient, ...]:
    """Every API client, oldest first: in an unproven database no secret of theirs has proved the key."""
    clients = _API_CLIENTS.c
    rows = (await session.execute(select(clients.client_id, clients.role, clients.name).order_by(clients.id))).all()
    return tuple(UncheckedClient(client_id=str(row[0]), role=str(row[1]), name=str(row[2])) for row in rows)


async def confirm(session: AsyncSession, box: SecretsBox, *, proof: SecretProof | None) -> Confirmation:
    """Bind an unproven database to the master key of ``box``: as the client's token request would once ``proof``
    checked out (else InvalidClient, nothing bound), or without proof (None) on the operator's word, naming every
    client. Audited either way. A database bound already, or holding no client, is left as it is; bound under
    another master key (another process bound it while this one waited its turn), ConfigurationError."""
    state = await master_key_state(session)
    if state == "bound":  # perhaps meanwhile, by another process under its own key: this one's must open it
        await check_master_key(session, box)
    if state != "unproven":
        return Confirmation(state=state)
    unchecked: tuple[UncheckedClient, ...] = ()
    if proof is not None:
        await _check(proof)
        details: dict[str, object] = {"proof": "client_secret", "client_id": proof.client_id}
    else:
        unchecked = await unproven_clients(session)
        details = {"proof": "none", "unchecked_clients": [client.client_id for client in unchecked]}
    key = await keys.registry_token_key(session, box, master_key_proved=True)
    await audit.append(
        session,
        actor=Actor(id="cli"),
        action=CONFIRMED,
        object_type="signing_key",
        object_id=key.kid,
        purpose=_PURPOSE,
        details=details,
    )
    return Confirmation(state=state, kid=key.kid, unchecked=unchecked)


async def _check(proof: SecretProof) -> None:
    try:
        await proof.check()
    except InvalidClient:
        raise InvalidClient(
            _(
                "the secret given does not open API client {client_id} under REGISTRY_MASTER_KEY (a wrong secret, an "
                "unknown or disabled client, or not the key its secret was hashed under): nothing was bound",
                client_id=proof.client_id,
            )
        ) from None
