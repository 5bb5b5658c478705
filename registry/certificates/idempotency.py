"""Idempotency-Key handling for operations that create certificates.

Same key and same request → the stored response; same key, another request → 422; same key while the first is still
running → 409 (PostgreSQL; SQLite serialises writers, so the retry simply waits its turn). Stored responses hold claim
codes, so they are encrypted, and they expire after the configured time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk
from registry.auth.principals import Principal
from registry.certificates.models import IdempotencyRecord
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import FieldError, IdempotencyKeyInFlight, IdempotencyKeyReused
from registry.i18n import _


@dataclass(frozen=True, slots=True)
class Outcome:
    """An answer to a request that creates certificates: its status and its JSON body, already encoded."""

    status_code: int
    body: bytes
    replayed: bool = False


async def once(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    operation: str,
    key: str | None,
    digest: str,
    run: Callable[[], Awaitable[Outcome]],
) -> Outcome:
    """``run()`` unless this key was used before with the same request, in which case its stored answer; without a
    key, simply ``run()``. The answer is stored in the same transaction as the work it describes."""
    if key is None:
        return await run()
    stored = await replay(ctx, session, principal=principal, operation=operation, key=key, digest=digest)
    if stored is not None:
        return stored
    outcome = await run()
    await store(ctx, session, principal=principal, operation=operation, key=key, digest=digest, outcome=outcome)
    return outcome


def request_hash(payload: Any) -> str:
    try:
        canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        # What orjson cannot write but a JSON request may hold (an escaped lone surrogate, a 100-digit integer).
        canonical = json.dumps(payload, sort_keys=True, default=repr).encode()
    return hashlib.sha256(canonical).hexdigest()


def _context(principal: Principal, operation: str, key: str) -> str:
    return f"idempotency:{principal.client_id}:{operation}:{key}"


async def replay(
    ctx: RegistryContext, session: AsyncSession, *, principal: Principal, operation: str, key: str, digest: str
) -> Outcome | None:
    """The stored response for this key, or None when the operation should run (and then call ``store``)."""
    if bulk.is_postgres(session):
        # Held to the end of the transaction: a retry racing its original is told to come back, not left waiting.
        lock_id = int.from_bytes(
            hashlib.sha256(_context(principal, operation, key).encode()).digest()[:8], "big", signed=True
        )
        got = (await session.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id})).scalar_one()
        if not got:
            raise IdempotencyKeyInFlight(
                _("a request with this Idempotency-Key is still being processed; retry shortly")
            )
    record = (
        await session.execute(
            select(IdempotencyRecord).where(
                col(IdempotencyRecord.client_id) == principal.client_id,
                col(IdempotencyRecord.operation) == operation,
                col(IdempotencyRecord.key) == key,
            )
        )
    ).scalar_one_or_none()
    if record is None:
        return None
    if (utcnow() - record.created_at).total_seconds() > ctx.settings.idempotency_ttl_seconds:
        await session.delete(record)
        await session.flush()
        return None
    if not hmac.compare_digest(record.request_hash, digest):
        raise IdempotencyKeyReused(
            _("this Idempotency-Key was already used with a different request body"),
            errors=[FieldError(field="Idempotency-Key", message=_("already used with a different request body"))],
        )
    body = ctx.box.decrypt(record.response_encrypted, context=_context(principal, operation, key))
    return Outcome(status_code=record.status_code, body=body, replayed=True)


async def store(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    operation: str,
    key: str,
    digest: str,
    outcome: Outcome,
) -> None:
    session.add(
        IdempotencyRecord(
            client_id=principal.client_id,
            operation=operation,
            key=key,
            request_hash=digest,
            status_code=outcome.status_code,
            response_encrypted=ctx.box.encrypt(outcome.body, context=_context(principal, operation, key)),
        )
    )
    await session.flush()
