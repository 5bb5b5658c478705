"""Reading the audit log as the bureau does: filtered, oldest first, keyset-paginated on the record id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit.models import AuditRecord
from registry.audit.schemas import AuditFilter, AuditPage, AuditRecordPublic
from registry.db import MAX_ROW_ID
from registry.pagination import decode_cursor, encode_cursor


def _read_cursor(position: list[Any]) -> int:
    (after_id,) = position
    if type(after_id) is not int or not 0 <= after_id <= MAX_ROW_ID:
        raise ValueError("an audit cursor holds one record id")
    return after_id


async def list_records(session: AsyncSession, *, filters: AuditFilter) -> AuditPage:
    """Ids follow the chain, so id order is the order things happened in, and new records only ever land after the
    last page: paging through never skips or repeats a record."""
    query = select(AuditRecord)
    if filters.actor is not None:
        query = query.where(col(AuditRecord.actor) == filters.actor)
    if filters.action is not None and filters.action.endswith(".*"):
        query = query.where(col(AuditRecord.action).startswith(filters.action[:-1], autoescape=True))
    elif filters.action is not None:
        query = query.where(col(AuditRecord.action) == filters.action)
    if filters.since is not None:
        query = query.where(col(AuditRecord.at) >= filters.since)
    if filters.cursor is not None:
        query = query.where(col(AuditRecord.id) > decode_cursor(filters.cursor, _read_cursor))
    query = query.order_by(col(AuditRecord.id)).limit(filters.limit + 1)
    records = (await session.execute(query)).scalars().all()
    page = [AuditRecordPublic.model_validate(record) for record in records[: filters.limit]]
    next_cursor = encode_cursor([page[-1].id]) if len(records) > filters.limit else None
    return AuditPage(data=page, next_cursor=next_cursor)
