"""Finding or recording holders by identity document, without ever storing the number in clear."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk
from registry.context import RegistryContext
from registry.db import utcnow
from registry.holders.identity import IdType, mask_id_number
from registry.holders.models import Holder

INDEX_KIND = "holder-id"


def id_index(ctx: RegistryContext, *, id_type: IdType, id_number: str) -> str:
    """The blind index of a normalised identity number; the same person under one document type finds one holder."""
    return ctx.box.blind_index(f"{id_type}:{id_number}", kind=INDEX_KIND)


@dataclass(frozen=True, slots=True)
class Identity:
    """An identity document: its type, its normalised number and that number's blind index. The number is empty for
    a holder already on record (found by index, never decrypted to be used again)."""

    id_type: IdType
    id_number: str = field(repr=False)
    index: str


@dataclass(frozen=True, slots=True)
class HolderRef:
    """What issuance needs of a stored holder: the row id and the public (masked) form of the document."""

    id: int
    id_type: str
    id_masked: str


def identity(ctx: RegistryContext, *, id_type: IdType, id_number: str) -> Identity:
    """``id_number`` must already be normalised (``identity.normalize_id_number``, done by the request schemas)."""
    return Identity(id_type=id_type, id_number=id_number, index=id_index(ctx, id_type=id_type, id_number=id_number))


async def upsert(ctx: RegistryContext, session: AsyncSession, identities: Sequence[Identity]) -> dict[str, HolderRef]:
    """The holder of each identity by blind index, recording those not seen before (the number only encrypted).

    Insert-if-absent, returning what was inserted, then read whichever rows were there already or won: two evaluation
    bodies may record the same person at once. Rows go in blind-index order, so two batches sharing new holders take
    their index locks in the same order."""
    unique = {item.index: item for item in sorted(identities, key=lambda item: item.index)}
    new = {index: item for index, item in unique.items() if item.id_number}
    now = utcnow()
    values = [
        {
            "id_type": item.id_type.value,
            "id_index": index,
            "id_number_encrypted": ctx.box.encrypt(item.id_number.encode(), context=f"holder:{index}"),
            "id_masked": mask_id_number(item.id_type, item.id_number),
            "created_at": now,
        }
        for index, item in new.items()
    ]
    found: dict[str, HolderRef] = {
        index: HolderRef(id=holder_id, id_type=id_type, id_masked=masked)
        for index, holder_id, id_type, masked in await bulk.insert_missing(
            session,
            bulk.table_of(Holder),
            values,
            index_elements=["id_index"],
            returning=("id_index", "id", "id_type", "id_masked"),
        )
    }
    # Holders already recorded (by an earlier batch, or by another body at the same moment) are read back.
    postgres = bulk.is_postgres(session)
    for chunk in bulk.lookup_chunks([index for index in unique if index not in found], postgres=postgres):
        rows = await session.execute(
            select(col(Holder.id_index), col(Holder.id), col(Holder.id_type), col(Holder.id_masked)).where(
                bulk.one_of(col(Holder.id_index), chunk, postgres=postgres)
            )
        )
        for index, holder_id, id_type, masked in rows:
            assert holder_id is not None, "stored rows have ids"
            found[index] = HolderRef(id=holder_id, id_type=id_type, id_masked=masked)
    return found


def reveal_id_number(ctx: RegistryContext, holder: Holder) -> str:
    """Decrypt for the rare cases that need the clear number (re-issuing to the same holder, the salted hash a
    credential carries: registry.credentials.identity_hash); never for output."""
    return ctx.box.decrypt(holder.id_number_encrypted, context=f"holder:{holder.id_index}").decode()
