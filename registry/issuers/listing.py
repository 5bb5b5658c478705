"""Listing evaluation bodies as the bureau does: filtered, in code order, keyset-paginated on the code."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import clock
from registry.issuers import service
from registry.issuers.models import FiledScope, Issuer
from registry.issuers.schemas import BODY_CODE, IssuerFilter, IssuerPage
from registry.pagination import decode_cursor, encode_cursor


def _read_cursor(position: list[Any]) -> str:
    """The body code a page ended at: only what a body code can be (a NUL, which PostgreSQL cannot compare, or any
    other character no code holds is not a cursor this service returned)."""
    (after_code,) = position
    if not isinstance(after_code, str) or BODY_CODE.fullmatch(after_code) is None:
        raise ValueError("an evaluation-body cursor holds one code")
    return after_code


async def list_issuers(session: AsyncSession, *, filters: IssuerFilter) -> IssuerPage:
    query = select(Issuer)
    if filters.kind is not None:
        query = query.where(col(Issuer.kind) == filters.kind)
    if filters.region is not None:
        query = query.where(col(Issuer.region) == filters.region)
    if filters.status is not None:
        query = query.where(col(Issuer.status) == filters.status)
    if filters.credit_code is not None:
        query = query.where(col(Issuer.credit_code) == filters.credit_code.upper())
    if filters.catalogue_code is not None:
        query = query.where(col(Issuer.id).in_(await _filed_for(session, filters.catalogue_code)))
    if filters.cursor is not None:
        query = query.where(col(Issuer.code) > decode_cursor(filters.cursor, _read_cursor))
    bodies = (await session.execute(query.order_by(col(Issuer.code)).limit(filters.limit + 1))).scalars().all()
    page = list(bodies[: filters.limit])
    next_cursor = encode_cursor([page[-1].code]) if len(bodies) > filters.limit else None
    return IssuerPage(data=await service.public_views(session, page), next_cursor=next_cursor)


async def _filed_for(session: AsyncSession, catalogue_code: str) -> set[int]:
    """The bodies with a version naming the entry that has not ended: in force today, or scheduled. The codes are a
    JSON list, read the same way on every backend; the versions not yet ended are few (a handful per body)."""
    query = select(col(FiledScope.issuer_id), col(FiledScope.catalogue_codes)).where(
        or_(col(FiledScope.valid_until).is_(None), col(FiledScope.valid_until) >= clock.today())
    )
    return {issuer_id for issuer_id, codes in await session.execute(query) if catalogue_code in codes}
