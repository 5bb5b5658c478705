"""What a recognition rule names must exist and fit together: its entries, series and levels in the catalogue, on the
ladder it claims, and each level one that what it covers awards — else the rule could never decide a case, silently."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.catalogue import service as catalogue
from registry.catalogue.models import CatalogueEntry, Level, Series
from registry.errors import FieldError, InvalidInput, said_masked
from registry.i18n import _, word
from registry.recognition.models import RuleKind
from registry.recognition.schemas import RuleCreate


async def check(session: AsyncSession, body: RuleCreate) -> None:
    """Every entry, series and level the rule names exists, on the ladder it claims, and every level it names is one
    that what it covers awards: a rule for a level its entries never award could never decide a case. What the rule
    names is said back as typed, unless it holds an identity number (``said_masked``): never echoed whole."""
    errors: list[FieldError] = []
    ladders = await catalogue.levels_by_type(session)
    entries = await _covered_entries(session, body, errors)
    series = await session.get(Series, body.series_code) if body.series_code is not None else None
    covered = await _covered(session, entries, series)
    for index, level in enumerate(body.levels):
        if level not in ladders[body.cert_type]:
            message = _(
                "{level} is not on the {cert_type} ladder", level=said_masked(level), cert_type=word(body.cert_type)
            )
            errors.append(FieldError(f"levels[{index}]", message))
        elif (problem := _not_awarded(level, covered, ladders[body.cert_type])) is not None:
            errors.append(FieldError(f"levels[{index}]", problem))
    if body.series_code is not None and series is None:
        errors.append(FieldError("series_code", _("no title series {series}", series=said_masked(body.series_code))))
    if (other := _eq_series(body)) is not None and await session.get(Series, other) is None:
        errors.append(FieldError("equivalent.series_code", _("no title series {series}", series=said_masked(other))))
    target = await _check_equivalent(session, body, ladders, errors)
    if target is not None and body.kind is RuleKind.recognition and body.equivalent and body.equivalent.level is None:
        _check_same_level(body, target, covered, ladders[body.cert_type], errors)
    if errors:
        raise InvalidInput.fields(errors)


async def _covered_entries(session: AsyncSession, body: RuleCreate, errors: list[FieldError]) -> list[CatalogueEntry]:
    """The catalogue entries the rule names, each checked to be of its type (and series); the bad ones in ``errors``."""
    entries: list[CatalogueEntry] = []
    for index, code in enumerate(body.catalogue_codes):
        entry = await catalogue.get(session, code)
        if entry is None or entry.cert_type != body.cert_type:
            message = _("no {cert_type} catalogue entry {code}", cert_type=word(body.cert_type), code=said_masked(code))
            errors.append(FieldError(f"catalogue_codes[{index}]", message))
        elif body.series_code is not None and entry.series_code != body.series_code:
            message = _(
                "{code} is not in series {series}", code=said_masked(code), series=said_masked(body.series_code)
            )
            errors.append(FieldError(f"catalogue_codes[{index}]", message))
        else:
            entries.append(entry)
    return entries


def _not_awarded(level: str, covered: _Covered | None, ladder: Mapping[str, Level]) -> str | None:
    """Why a rule covering ``covered`` cannot decide a case at ``level``, or None."""
    if covered is None or level in covered.levels:
        return None
    levels = ", ".join(sorted(covered.levels, key=lambda code: ladder[code].rank if code in ladder else 0))
    if covered.series is not None:
        return _(
            "{level} is not awarded in series {series}; it awards: {levels}",
            level=said_masked(level),
            series=said_masked(covered.series),
            levels=levels,
        )
    return _(
        "{level} is awarded by none of {codes}; they award: {levels}",
        level=said_masked(level),
        codes=covered.codes,
        levels=levels,
    )


@dataclass(frozen=True)
class _Covered:
    """The levels awarded in what a rule covers: its entries (``codes``), or else its whole ``series``."""

    levels: frozenset[str]
    codes: str = ""
    series: str | None = None


async def _covered(session: AsyncSession, entries: Sequence[CatalogueEntry], series: Series | None) -> _Covered | None:
    if entries:
        codes = ", ".join(sorted({said_masked(entry.code) for entry in entries}))  # as the rule names them
        return _Covered(levels=frozenset(code for entry in entries for code in entry.levels), codes=codes)
    if series is None:
        return None  # the whole type: every level on its ladder is awarded somewhere
    # The series' own levels, and any an entry added to it awards beyond them.
    query = select(col(CatalogueEntry.levels)).where(col(CatalogueEntry.series_code) == series.code)
    awarded = {code for levels in (await session.execute(query)).scalars() for code in levels}
    return _Covered(levels=frozenset(awarded | set(series.levels)), series=series.code)


async def _check_equivalent(
    session: AsyncSession, body: RuleCreate, ladders: Mapping[str, Mapping[str, Level]], errors: list[FieldError]
) -> CatalogueEntry | None:
    """The equivalent names an entry of its ladder, and a level on that ladder that the entry awards. Returns the
    entry it names, when that is one."""
    equivalent = body.equivalent
    if equivalent is None:
        return None
    target_type = equivalent.cert_type or body.cert_type
    entry = None
    if equivalent.catalogue_code is not None:
        entry = await catalogue.get(session, equivalent.catalogue_code)
        if entry is None or entry.cert_type != target_type:
            message = _(
                "no {cert_type} catalogue entry {code}",
                cert_type=word(target_type),
                code=said_masked(equivalent.catalogue_code),
            )
            errors.append(FieldError("equivalent.catalogue_code", message))
            entry = None
    if equivalent.level is None:
        return entry
    if equivalent.level not in ladders[target_type]:
        level = said_masked(equivalent.level)
        message = _("{level} is not on the {cert_type} ladder", level=level, cert_type=word(target_type))
        errors.append(FieldError("equivalent.level", message))
    elif entry is not None and (
        problem := _not_awarded(
            equivalent.level, _Covered(frozenset(entry.levels), said_masked(entry.code)), ladders[target_type]
        )
    ):
        errors.append(FieldError("equivalent.level", problem))
    return entry


def _check_same_level(
    body: RuleCreate,
    target: CatalogueEntry,
    covered: _Covered | None,
    ladder: Mapping[str, Level],
    errors: list[FieldError],
) -> None:
    """A recognition rule that counts what it covers as ``target`` "at the same level" (no ``equivalent.level``): every
    level it covers is one ``target`` awards — else an answer would name a title or level that is never awarded."""
    if body.levels:
        levels: set[str] = set(body.levels)
    else:
        levels = set(covered.levels) if covered is not None else set(ladder)  # none: the whole type's ladder
    missing = sorted(levels - set(target.levels), key=lambda code: ladder[code].rank if code in ladder else 0)
    if not missing:
        return
    awarded = sorted(target.levels, key=lambda code: ladder[code].rank if code in ladder else 0)
    message = _(
        "{code} does not award {levels}, which the rule covers: name the level it counts as, or list in levels only "
        "what {code} awards ({awarded})",
        code=said_masked(target.code),
        levels=", ".join(said_masked(level) for level in missing),
        awarded=", ".join(awarded),
    )
    errors.append(FieldError("equivalent.level", message))


def _eq_series(body: RuleCreate) -> str | None:
    return body.equivalent.series_code if body.equivalent else None
