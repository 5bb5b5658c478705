"""Reading and extending the catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import clock
from registry.audit import service as audit
from registry.audit.service import Actor
from registry.catalogue.models import CatalogueEntry, CertType, Level, Series
from registry.catalogue.schemas import CatalogueEntryCreate, CatalogueEntryPublic, CataloguePage, LevelPublic
from registry.db import add_unless_taken
from registry.errors import Conflict, FieldError, InvalidInput, said_masked
from registry.i18n import Listing, Message, _, word


async def levels_by_type(session: AsyncSession) -> dict[str, dict[str, Level]]:
    rows = (await session.execute(select(Level).order_by(col(Level.cert_type), col(Level.rank)))).scalars().all()
    table: dict[str, dict[str, Level]] = {CertType.title: {}, CertType.skill: {}}
    for level in rows:
        table.setdefault(level.cert_type, {})[level.code] = level
    return table


def to_public(entry: CatalogueEntry, levels: dict[str, Level]) -> CatalogueEntryPublic:
    return CatalogueEntryPublic(
        code=entry.code,
        version=entry.version,
        cert_type=CertType(entry.cert_type),
        series_code=entry.series_code,
        series_zh=entry.series_zh,
        series_en=entry.series_en,
        name_zh=entry.name_zh,
        name_en=entry.name_en,
        occupation_code=entry.occupation_code,
        levels=[
            LevelPublic(code=code, rank=levels[code].rank, name_zh=levels[code].name_zh, name_en=levels[code].name_en)
            for code in entry.levels
            if code in levels
        ],
        effective_from=entry.effective_from,
        effective_until=entry.effective_until,
        basis=entry.basis,
    )


async def search(
    session: AsyncSession, *, cert_type: CertType | None, q: str | None, limit: int, offset: int
) -> CataloguePage:
    query = select(CatalogueEntry)
    if cert_type is not None:
        query = query.where(col(CatalogueEntry.cert_type) == cert_type)
    if q:
        # The text as typed: "%" and "_" are characters to find, not LIKE's wildcards ("q=%" matched every entry).
        literal = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{literal}%"
        query = query.where(
            or_(
                *(
                    column.like(pattern, escape="\\")
                    for column in (
                        func.lower(col(CatalogueEntry.code)),
                        func.lower(col(CatalogueEntry.name_zh)),
                        func.lower(col(CatalogueEntry.name_en)),
                        func.lower(func.coalesce(col(CatalogueEntry.series_zh), "")),
                        func.lower(func.coalesce(col(CatalogueEntry.series_en), "")),
                        func.coalesce(col(CatalogueEntry.occupation_code), ""),
                    )
                )
            )
        )
    count = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    entries = (
        (await session.execute(query.order_by(col(CatalogueEntry.code)).limit(limit).offset(offset))).scalars().all()
    )
    levels = await levels_by_type(session)
    return CataloguePage(data=[to_public(entry, levels[entry.cert_type]) for entry in entries], count=count)


async def get(session: AsyncSession, code: str) -> CatalogueEntry | None:
    return (await session.execute(select(CatalogueEntry).where(col(CatalogueEntry.code) == code))).scalar_one_or_none()


def not_fileable(entry: CatalogueEntry, *, first_day: date, last_day: date | None, today: date) -> Message | None:
    """Why a filing of an evaluation body from ``first_day`` to ``last_day`` (None: open-ended) cannot name
    ``entry``, or None. The entry must not have ended before the filing's first day (ending on it leaves that day),
    and must be in force by that day — or, for a filing recorded after its first day, by the day it is recorded: a
    scheduled amendment may name an entry that begins on or before the amendment's own first day, not one that begins
    after it. Either way it must begin by the filing's last day: a filing that ends before the entry begins would
    claim to authorise awards under it for days it does not exist, and never one on a day it does."""
    if entry.effective_until is not None and entry.effective_until < first_day:
        return _(
            "catalogue entry {code} was in force from {start} to {until}: it ended before {first}, "
            "the first day of this filing",
            code=said_masked(entry.code),
            start=entry.effective_from.isoformat(),
            until=entry.effective_until.isoformat(),
            first=first_day.isoformat(),
        )
    if last_day is not None and entry.effective_from > last_day:
        return _(
            "catalogue entry {code} comes into force on {start}, after {last}, the last day of this filing (from "
            "{first}): the filing would never cover it",
            code=said_masked(entry.code),
            start=entry.effective_from.isoformat(),
            last=last_day.isoformat(),
            first=first_day.isoformat(),
        )
    if entry.effective_from > max(first_day, today) and entry.effective_until is not None:
        return _(
            "catalogue entry {code} is in force from {start} to {until}: it begins after {first}, the first day of "
            "this filing; file it from {start} or later",
            code=said_masked(entry.code),
            start=entry.effective_from.isoformat(),
            until=entry.effective_until.isoformat(),
            first=first_day.isoformat(),
        )
    if entry.effective_from > max(first_day, today):
        return _(
            "catalogue entry {code} comes into force on {start}, after {first}, the first day of this filing: "
            "file it from {start} or later",
            code=said_masked(entry.code),
            start=entry.effective_from.isoformat(),
            first=first_day.isoformat(),
        )
    return None


class FilingDays(NamedTuple):
    """The entries one filing (or one version of it) names, with the field they are named in and its days."""

    field: str
    catalogue_codes: Sequence[str]
    first_day: date
    last_day: date | None  # None: until amended


async def check_fileable(session: AsyncSession, filings: Sequence[FilingDays]) -> None:
    """Each filing names entries in force for its days (``not_fileable``); 422 naming the field and each entry with
    its validity. Codes that are not entries are left to the caller (``registry.issuers.service.check_filings``,
    the one caller, for registrations and amendments alike)."""
    codes = {code for filing in filings for code in filing.catalogue_codes}
    found = await session.execute(select(CatalogueEntry).where(col(CatalogueEntry.code).in_(codes)))
    entries = {entry.code: entry for entry in found.scalars()}
    today = clock.today()
    errors = [
        FieldError(field=filing.field, message=problem)
        for filing in filings
        for code in dict.fromkeys(filing.catalogue_codes)
        if code in entries
        and (problem := not_fileable(entries[code], first_day=filing.first_day, last_day=filing.last_day, today=today))
        is not None
    ]
    if errors:
        raise InvalidInput(_("the filed scope names catalogue entries not in force for it"), errors=errors)


async def _refuse_taken(session: AsyncSession, code: str) -> None:
    if await get(session, code) is not None:
        raise Conflict(
            _("catalogue entry {code} already exists", code=said_masked(code)),
            errors=[FieldError(field="code", message=_("already exists"))],
        )


async def add_entry(session: AsyncSession, *, actor: Actor, entry: CatalogueEntryCreate) -> CatalogueEntryPublic:
    levels = (await levels_by_type(session))[entry.cert_type]
    # Named as typed, unless one holds an identity number (pasted in the wrong box): never echoed whole.
    unknown = [said_masked(code) for code in entry.levels if code not in levels]
    if unknown:
        raise InvalidInput(
            _(
                "levels: {levels} not on the {cert_type} ladder",
                levels=", ".join(unknown),
                cert_type=word(entry.cert_type),
            ),
            errors=[
                FieldError(
                    field="levels",
                    message=_("unknown {cert_type} level {level}", cert_type=word(entry.cert_type), level=code),
                )
                for code in unknown
            ],
        )
    await _refuse_taken(session, entry.code)
    series = None
    if entry.cert_type is CertType.title:
        series = (
            await session.execute(select(Series).where(col(Series.name_zh) == entry.series_zh))
        ).scalar_one_or_none()
        if series is None:  # else its certificates would fall outside every rule written for their series
            known = (await session.execute(select(col(Series.name_zh)).order_by(col(Series.code)))).scalars().all()
            raise InvalidInput.field(
                "series_zh",
                _("is not a title series; one of: {known}", known=Listing(list(known), separator=", ")),
            )
    row = CatalogueEntry(
        code=entry.code,
        cert_type=entry.cert_type,
        series_code=series.code if series else None,
        series_zh=entry.series_zh,
        series_en=entry.series_en or (series.name_en if series else None),
        name_zh=entry.name_zh,
        name_en=entry.name_en,
        occupation_code=entry.occupation_code,
        levels=sorted(entry.levels, key=lambda code: levels[code].rank),
        effective_from=entry.effective_from,
        effective_until=entry.effective_until,
        basis=entry.basis,
    )
    if not await add_unless_taken(session, row):  # added by another request since _refuse_taken looked
        await _refuse_taken(session, entry.code)
        raise RuntimeError(f"catalogue entry {entry.code} clashed with a row that cannot be found")
    await audit.append(
        session,
        actor=actor,
        action="catalogue.entry_added",
        object_type="catalogue_entry",
        object_id=row.code,
        purpose="catalogue maintenance",
        details={"cert_type": row.cert_type, "name_zh": row.name_zh, "levels": row.levels},
    )
    return to_public(row, levels)
