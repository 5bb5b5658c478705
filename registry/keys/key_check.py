"""Whether the master key is the one this database's secrets are sealed with: one sealed signing key, opened.

A wrong key is otherwise silent: every certificate verifies as unknown, every client secret and claim code is refused,
and new blind indexes match nothing (duplicates go unnoticed). AES-GCM tells it at once: the oldest wrapped private key
fails its authentication under any other key. Every subkey comes from the one master key, so one row speaks for all.

A keyed hash (an API client's secret) says nothing about the key without the secret, and ``registry clients create``
comes before anything is signed. So start-up and commands (``check_master_key_on``) seal the registry's token key
under the master key of a database that holds nothing the key protects yet, before anything else is sealed: from then
on every start is checked. A database holding API clients and no sealed key (made before this) cannot be checked,
and is not bound to a key no one has proved: a start under the wrong one would lock the right one out. Nor is it
bound by a request that makes the registry's first key (a checkpoint, a peer's statement, a holder's session): they
are refused until an API client's secret has opened its keyed hash, which proves the key, and its token's key binds
the database (``registry.keys.service.refuse_unproven_first_key``).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from registry.db import session_factory, transaction
from registry.errors import ConfigurationError, DecryptionError
from registry.i18n import _
from registry.keys.models import SigningKey
from registry.keys.secrets_box import SecretsBox
from registry.keys.service import Executes, master_key_unproven, registry_token_key

WRONG_MASTER_KEY = _(
    "REGISTRY_MASTER_KEY is not the key this database's secrets are sealed with "
    "(a signing key does not open with it); start with the key the database was made with"
)


async def check_master_key(reader: Executes, box: SecretsBox) -> bool:
    """Raise ConfigurationError (naming the setting, never a key) unless ``box`` opens the oldest sealed signing key;
    False when there is none to open."""
    statement = select(col(SigningKey.kid), col(SigningKey.private_key_wrapped)).order_by(col(SigningKey.id)).limit(1)
    row = (await reader.execute(statement)).first()
    if row is None:
        return False
    try:
        box.unwrap_private_key(row.private_key_wrapped, kid=row.kid)
    except DecryptionError:
        raise ConfigurationError(WRONG_MASTER_KEY) from None
    return True


async def check_master_key_on(engine: AsyncEngine, box: SecretsBox) -> None:
    """``check_master_key`` for start-up and commands, before anything is sealed; a database that holds nothing the
    master key protects is bound to it first (the registry's token key, sealed under it: module docstring)."""
    async with engine.connect() as connection:
        if await check_master_key(connection, box):
            return
        unproven = await master_key_unproven(connection)
    if unproven:
        logging.getLogger("registry.serve").warning(
            "the master key could not be checked: the database holds API clients but no sealed key yet"
        )
        return
    async with transaction(session_factory(engine)) as session:
        await registry_token_key(session, box)
        # Another process may have bound it first, under its own key: the oldest key is the one that counts.
        await check_master_key(session, box)
