"""Whether the master key is the one this database's secrets are sealed with: one sealed signing key, opened.

A wrong key is otherwise silent: every certificate verifies as unknown, every client secret and claim code is refused,
and new blind indexes match nothing (duplicates go unnoticed). AES-GCM tells it at once: the oldest wrapped private key
fails its authentication under any other key. Every subkey comes from the one master key, so one row speaks for all.
A database with no signing key yet (a first start) holds nothing that issuance or verification trusts, and passes.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from registry.errors import ConfigurationError, DecryptionError
from registry.keys.models import SigningKey
from registry.keys.secrets_box import SecretsBox
from registry.keys.service import Executes

WRONG_MASTER_KEY = (
    "REGISTRY_MASTER_KEY is not the key this database's secrets are sealed with "
    "(a signing key does not open with it); start with the key the database was made with"
)


async def check_master_key(reader: Executes, box: SecretsBox) -> None:
    """Raise ConfigurationError (naming the setting, never a key) unless ``box`` opens the oldest sealed signing key."""
    statement = select(col(SigningKey.kid), col(SigningKey.private_key_wrapped)).order_by(col(SigningKey.id)).limit(1)
    row = (await reader.execute(statement)).first()
    if row is None:
        return
    try:
        box.unwrap_private_key(row.private_key_wrapped, kid=row.kid)
    except DecryptionError:
        raise ConfigurationError(WRONG_MASTER_KEY) from None


async def check_master_key_on(engine: AsyncEngine, box: SecretsBox) -> None:
    """``check_master_key`` over a connection of its own: for start-up and commands, before anything is sealed."""
    async with engine.connect() as connection:
        await check_master_key(connection, box)
