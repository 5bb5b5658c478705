"""Idempotency-Key handling for operations that create certificates.

Same key and same request → the stored response; same key, another request → 422; same key while the first is still
running → 409 (PostgreSQL; SQLite serialises writers, so the retry simply waits its turn). Stored responses hold claim
codes, so they are encrypted, and they expire after the configured time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.certificates.models import IdempotencyRecord
from registry.clients.service import Principal
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import Conflict, FieldError, IdempotencyKeyReused


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    body: Any


def request_hash(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _context(principal: Principal, operation: str, key: str) -> str:
    return f"idempotency:{principal.client_id}:{operation}:{key}"


async def replay(
    ctx: RegistryContext, session: AsyncSession, *, principal: Principal, operation: str, key: str, digest: str
) -> Replay | None:
    """The stored response for this key, or None when the operation should run (and then call ``store``)."""
    if session.get_bind().dialect.name == "postgresql":
        # Held to the end of the transaction: a retry racing its original is told to come back, not left waiting.
        lock_id = int.from_bytes(
            hashlib.sha256(_context(principal, operation, key).encode()).digest()[:8], "big", signed=True
        )
        got = (await session.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id})).scalar_one()
        if not got:
            raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
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
            "this Idempotency-Key was already used with a different request body",
            errors=[FieldError(field="Idempotency-Key", message="already used with a different request body")],
        )
    body = orjson.loads(ctx.box.decrypt(record.response_encrypted, context=_context(principal, operation, key)))
    return Replay(status_code=record.status_code, body=body)


async def store(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    operation: str,
    key: str,
    digest: str,
    status_code: int,
    body: bytes,
) -> None:
    session.add(
        IdempotencyRecord(
            client_id=principal.client_id,
            operation=operation,
            key=key,
            request_hash=digest,
            status_code=status_code,
            response_encrypted=ctx.box.encrypt(body, context=_context(principal, operation, key)),
        )
    )
    await session.flush()
