"""Finding or recording a holder by identity document, without ever storing the number in clear."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.context import RegistryContext
from registry.db import utcnow
from registry.holders.identity import IdType, mask_id_number
from registry.holders.models import Holder

INDEX_KIND = "holder-id"


def id_index(ctx: RegistryContext, *, id_type: IdType, id_number: str) -> str:
    """The blind index of a normalised identity number; the same person under one document type finds one holder."""
    return ctx.box.blind_index(f"{id_type}:{id_number}", kind=INDEX_KIND)


async def find(ctx: RegistryContext, session: AsyncSession, *, id_type: IdType, id_number: str) -> Holder | None:
    index = id_index(ctx, id_type=id_type, id_number=id_number)
    return (await session.execute(select(Holder).where(col(Holder.id_index) == index))).scalar_one_or_none()


async def find_or_create(ctx: RegistryContext, session: AsyncSession, *, id_type: IdType, id_number: str) -> Holder:
    """``id_number`` must already be normalised (``identity.normalize_id_number``)."""
    index = id_index(ctx, id_type=id_type, id_number=id_number)
    values = {
        "id_type": id_type.value,
        "id_index": index,
        "id_number_encrypted": ctx.box.encrypt(id_number.encode(), context=f"holder:{index}"),
        "id_masked": mask_id_number(id_type, id_number),
        "created_at": utcnow(),
    }
    # Two evaluation bodies may record the same person at once: insert-if-absent, then read whichever row won.
    insert = (
        postgresql.insert if session.bind is not None and session.bind.dialect.name == "postgresql" else sqlite.insert
    )
    await session.execute(insert(Holder).values(**values).on_conflict_do_nothing(index_elements=["id_index"]))
    holder = (await session.execute(select(Holder).where(col(Holder.id_index) == index))).scalar_one()
    return holder


def reveal_id_number(ctx: RegistryContext, holder: Holder) -> str:
    """Decrypt for the rare cases that need the clear number (a holder's own view); never for public output."""
    return ctx.box.decrypt(holder.id_number_encrypted, context=f"holder:{holder.id_index}").decode()
