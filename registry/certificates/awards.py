"""Which awards an evaluation body may make: every rule of issuance, in one place, for single issuance, batches,
``registry import`` and corrections.

``screen`` takes any number of awards and answers, for each, either that it may be issued or why not (the field and
a message, the same words whichever entry point asked); ``Screener`` does the same a chunk of rows at a time, as a
batch's rows come back from validation. It reads what the rules need once per call — the level ladders, the body's
filed scope, the holders' live certificates, and each catalogue entry named the first time a chunk names it — so ten
thousand rows cost a handful of queries, and one row costs the same handful.

Refused, and why:
- an award before 1949-10-01, in the future, or valid until a day not after the award: a typo, not a certificate;
- a catalogue entry that does not exist, is of the other type, was not in force on the award date, or is not awarded
  at that level;
- an award outside the body's filed scope on the award date, naming which part falls outside (the entry is not filed,
  is filed at other levels, or its filing was not in force on that date), or one whose filing is not in force today;
- a second live (active or suspended) certificate of the same body for the same holder, entry and level, already
  issued or earlier in the same request. Only the body's own certificates count: issuing must not become a way to
  learn what other bodies awarded someone. A correction (``/correct``) replaces its original, which does not count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk, clock
from registry.catalogue.models import CatalogueEntry, CertType, Level
from registry.catalogue.schemas import FIRST_DAY
from registry.catalogue.service import levels_by_type
from registry.certificates import numbering
from registry.certificates.models import Certificate, Status
from registry.certificates.schemas import CertificateIssue
from registry.context import RegistryContext
from registry.errors import (
    BatchRejected,
    DuplicateCertificate,
    FieldError,
    Forbidden,
    InvalidInput,
    OutsideFiledScope,
    RegistryError,
    said_masked,
)
from registry.holders import service as holders
from registry.holders.identity import IdType
from registry.holders.models import Holder
from registry.i18n import _, word
from registry.issuers import service as issuers
from registry.issuers.models import FiledScope, Issuer, IssuerStatus

LIVE = (Status.active, Status.suspended)


class Refused(StrEnum):
    """Why an award is refused, which decides the status a single request answers with (``ANSWERS``)."""

    invalid = "invalid"
    outside_scope = "outside_scope"
    duplicate = "duplicate"


ANSWERS: dict[Refused, type[RegistryError]] = {
    Refused.invalid: InvalidInput,  # 422
    Refused.outside_scope: OutsideFiledScope,  # 403
    Refused.duplicate: DuplicateCertificate,  # 409
}


@dataclass(frozen=True, slots=True)
class Award:
    """What an evaluation body awards to whom. ``id_number`` is normalised by the request schema; for a holder
    already on record (a correction) it is empty and ``known_holder`` is the holder's blind index instead, so the
    number is never decrypted to re-issue."""

    cert_type: CertType
    catalogue_code: str
    level: str
    holder_name: str
    id_type: IdType
    id_number: str = field(repr=False)
    awarded_on: date
    valid_until: date | None
    evaluation_batch: str | None
    known_holder: str | None = None

    @classmethod
    def of(cls, request: CertificateIssue) -> Award:
        return cls(
            cert_type=request.cert_type,
            catalogue_code=request.catalogue_code,
            level=request.level,
            holder_name=request.holder.name,
            id_type=request.holder.id_type,
            id_number=request.holder.id_number,
            awarded_on=request.awarded_on,
            valid_until=request.valid_until,
            evaluation_batch=request.evaluation_batch,
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    row: int  # 1-based, as a person counts rows; 1 for a single request
    field: str
    message: str
    why: Refused = Refused.invalid


@dataclass(frozen=True, slots=True)
class Accepted:
    """An award that may be issued, with what recording it needs."""

    row: int
    award: Award
    holder: holders.Identity
    entry: CatalogueEntry
    level: Level


@dataclass
class Screening:
    accepted: list[Accepted] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    def refuse_single(self) -> None:
        """A single request with a refusal raises it, with the status its reason calls for."""
        if self.refusals:
            first = self.refusals[0]
            raise ANSWERS[first.why](
                _("{field}: {message}", field=first.field, message=first.message),
                errors=[FieldError(field=first.field, message=first.message)],
            )

    def refuse_batch(self, *, rows: int) -> None:
        """A batch with any refusal raises them all, row by row: nothing of it is issued."""
        if self.refusals:
            errors = [FieldError(field=r.field, message=r.message, row=r.row) for r in self.refusals]
            errors.sort(key=lambda e: (e.row or 0, e.field))
            bad_rows = len({r.row for r in self.refusals})
            detail = _("{bad} of {rows} rows are not valid; nothing was issued", bad=bad_rows, rows=rows)
            raise BatchRejected(detail, errors=errors)


def ensure_may_issue(issuer: Issuer) -> None:
    if issuer.status != IssuerStatus.active:
        raise Forbidden(_("evaluation body {code} is suspended and cannot issue", code=issuer.code))


async def screen(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    issuer: Issuer,
    awards: Sequence[tuple[int, Award]],
    replacing: Certificate | None = None,
) -> Screening:
    """Every rule for every (row, award); ``replacing`` is the certificate a correction supersedes."""
    screener = await Screener.open(ctx, session, issuer=issuer, many=len(awards) > 1, replacing=replacing)
    await screener.add(awards)
    return await screener.close()


@dataclass
class Screener:
    """``screen`` a chunk at a time, in row order (``add``), as the rows of a batch come back from validation: every
    rule that one row decides is applied as it comes, and those that need every row (a live certificate already held,
    ``close``) at the end. The body's issuance turn is taken at ``open``, before the first chunk is added."""

    ctx: RegistryContext
    session: AsyncSession
    issuer_id: int
    replacing: Certificate | None
    rules: _Rules
    screening: Screening = field(default_factory=Screening)
    seen: dict[tuple[str, str, str], int] = field(default_factory=dict)
    looked_up: set[str] = field(default_factory=set)

    @classmethod
    async def open(
        cls,
        ctx: RegistryContext,
        session: AsyncSession,
        *,
        issuer: Issuer,
        many: bool,
        replacing: Certificate | None = None,
        today: date | None = None,
    ) -> Screener:
        """Ready to screen awards of ``issuer``; ``many`` when more than one award is coming; ``today`` the day they
        are judged on (by default ``clock.today()`` now)."""
        ensure_may_issue(issuer)
        await _one_issuance_at_a_time(session, issuer_id=issuer.id or 0)
        await _still_may_issue(session, issuer)
        if bulk.is_postgres(session) and many:
            # The look-ups below are prepared statements; on a young table PostgreSQL would keep the sequential-scan
            # plan it chose while the table was empty, and every later batch of an import would get slower. (A single
            # award looks up one value: any plan serves it, and the two round trips are not worth it.)
            await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        rules = _Rules(
            entries={},
            ladders=await levels_by_type(session),
            scopes=await issuers.filed_scopes(session, issuer.id or 0),
            today=clock.today() if today is None else today,
        )
        return cls(ctx, session, issuer.id or 0, replacing, rules)

    async def add(self, awards: Sequence[tuple[int, Award]]) -> None:
        """Screens the next rows (after those already added)."""
        codes = {award.catalogue_code for _, award in awards} - self.looked_up
        if codes:
            self.rules.entries.update(await _entries(self.session, codes))
            self.looked_up |= codes
        for row, award in awards:
            self._add(row, award)

    def _add(self, row: int, award: Award) -> None:
        refusal = self.rules.refusal(row, award)
        if refusal is not None:
            self.screening.refusals.append(refusal)
            return
        identity = (
            holders.identity(self.ctx, id_type=award.id_type, id_number=award.id_number)
            if award.known_holder is None
            else holders.Identity(id_type=award.id_type, id_number="", index=award.known_holder)
        )
        key = (identity.index, award.catalogue_code, award.level)
        if key in self.seen:
            message = _("same holder, entry and level as row {row}", row=self.seen[key])
            self.screening.refusals.append(Refusal(row, "holder.id_number", message, Refused.duplicate))
            return
        self.seen[key] = row
        entry = self.rules.entries[award.catalogue_code]
        level = self.rules.ladders[award.cert_type][award.level]
        self.screening.accepted.append(Accepted(row, award, identity, entry, level))

    async def close(self) -> Screening:
        """The screening of every row added: accepted awards in row order, refusals in row order."""
        screening = self.screening
        await _refuse_live_duplicates(self.session, screening, issuer_id=self.issuer_id, replacing=self.replacing)
        screening.refusals.sort(key=lambda r: r.row)
        return screening


async def _one_issuance_at_a_time(session: AsyncSession, *, issuer_id: int) -> None:
    """Until the transaction ends, no other request issues for this body: the duplicate check below and the insert
    that follows it are one step, however many requests arrive at once. (Issuance for one body was serialised anyway,
    later, by its status list's row lock; this takes the turn before the check instead of after it.) On SQLite every
    writer already holds the database's write lock from BEGIN IMMEDIATE."""
    if bulk.is_postgres(session):
        key = int.from_bytes(hashlib.sha256(f"issuance:{issuer_id}".encode()).digest()[:8], "big", signed=True)
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def _still_may_issue(session: AsyncSession, issuer: Issuer) -> None:
    """The body's status read again under a share lock held to the end of the issuance: a suspension under way (its
    row lock, ``registry.issuers.service``) is waited for and then refuses this issuance, and a suspension arriving
    later waits for it to commit. Read once, unlocked, an issuance that had seen "active" went on while the
    suspension committed. On SQLite every writer already holds the database's write lock from BEGIN IMMEDIATE."""
    if not bulk.is_postgres(session):
        return
    query = select(col(Issuer.status)).where(col(Issuer.id) == issuer.id).with_for_update(read=True)
    if (await session.execute(query)).scalar_one() != IssuerStatus.active:
        raise Forbidden(_("evaluation body {code} is suspended and cannot issue", code=issuer.code))


async def _entries(session: AsyncSession, codes: set[str]) -> dict[str, CatalogueEntry]:
    found = await session.execute(select(CatalogueEntry).where(col(CatalogueEntry.code).in_(codes)))
    return {entry.code: entry for entry in found.scalars()}


@dataclass
class _Rules:
    """The rules on data loaded once. Rows of one evaluation round repeat a few (type, entry, level, date)
    combinations, so their verdicts are remembered."""

    entries: dict[str, CatalogueEntry]
    ladders: dict[str, dict[str, Level]]
    scopes: list[FiledScope]
    today: date
    verdicts: dict[tuple[str, str, str, date], tuple[str, str, Refused] | None] = field(default_factory=dict)

    def refusal(self, row: int, award: Award) -> Refusal | None:
        dates = self._dates(award)
        if dates is not None:
            return Refusal(row, *dates)
        combination = (award.cert_type.value, award.catalogue_code, award.level, award.awarded_on)
        if combination not in self.verdicts:
            self.verdicts[combination] = self._catalogue(award) or self._filed_scope(award)
        verdict = self.verdicts[combination]
        return None if verdict is None else Refusal(row, *verdict)

    def _dates(self, award: Award) -> tuple[str, str] | None:
        if award.awarded_on < FIRST_DAY:
            return "awarded_on", _("must be on or after {earliest}", earliest=FIRST_DAY.isoformat())
        if award.awarded_on > self.today:
            return "awarded_on", _("is in the future")
        if award.valid_until is not None and award.valid_until <= award.awarded_on:
            return "valid_until", _("must be after awarded_on")
        return None

    def _catalogue(self, award: Award) -> tuple[str, str, Refused] | None:
        entry = self.entries.get(award.catalogue_code)
        cert_type = word(award.cert_type)
        if entry is None or entry.cert_type != award.cert_type:
            # Named as typed, unless it holds an identity number (a column shifted in a CSV row): never echoed whole.
            code = said_masked(award.catalogue_code)
            message = _("no {cert_type} catalogue entry {code}", cert_type=cert_type, code=code)
            return "catalogue_code", message, Refused.invalid
        if award.level not in self.ladders[award.cert_type]:
            message = _("{level} is not a {cert_type} level", level=said_masked(award.level), cert_type=cert_type)
            return "level", message, Refused.invalid
        if award.level not in entry.levels:
            message = _("{code} is not awarded at level {level}", code=entry.code, level=award.level)
            return "level", message, Refused.invalid
        if not entry.in_force_on(award.awarded_on):
            message = _("catalogue entry {code} was not in force on that date", code=entry.code)
            return "awarded_on", message, Refused.invalid
        return None

    def _filed_scope(self, award: Award) -> tuple[str, str, Refused] | None:
        filed = {"cert_type": award.cert_type, "catalogue_code": award.catalogue_code, "level": award.level}
        if not issuers.scope_covers(self.scopes, **filed, on=award.awarded_on):
            return _outside_filed_scope(self.scopes, award, ladder=self.ladders[award.cert_type])
        if issuers.scope_covers(self.scopes, **filed, on=self.today):
            return None
        # Filed on the award date, but every filing that covered it has since ended.
        ended = max(s.valid_until or self.today for s in self.scopes if s.covers(**filed, on=award.awarded_on))
        message = _(
            "the evaluation body's filing for {code} at level {level} ended on {valid_until} and is not in force today",
            code=award.catalogue_code,
            level=award.level,
            valid_until=ended.isoformat(),
        )
        return "catalogue_code", message, _OUTSIDE


_OUTSIDE = Refused.outside_scope


def _outside_filed_scope(
    scopes: list[FiledScope], award: Award, *, ladder: dict[str, Level]
) -> tuple[str, str, Refused]:
    """Names the real cause of an award outside the body's filed scope on the award date: the entry was never filed
    (``catalogue_code``), the entry is filed but not at this level (``level``, naming the levels that are), or the
    filing for this entry and level was not in force on that date (``awarded_on``, naming when it was)."""
    code, level, on = award.catalogue_code, award.level, award.awarded_on
    for_entry = [s for s in scopes if s.cert_type == award.cert_type and code in s.catalogue_codes]
    if not for_entry:
        return (
            "catalogue_code",
            _("outside the evaluation body's filed scope: it has not filed {code}", code=code),
            _OUTSIDE,
        )
    # The levels filed for the entry on the award date; when none was in force then, the levels it was ever filed at.
    in_force = [s for s in for_entry if s.valid_from <= on and (s.valid_until is None or on <= s.valid_until)]
    with_level = [s for s in for_entry if level in s.levels]
    if in_force or not with_level:
        filed = {filed_level for s in in_force or for_entry for filed_level in s.levels}
        levels = ", ".join(rung for rung in ladder if rung in filed)  # lowest first, as the ladder runs
        message = _(
            "outside the evaluation body's filed scope: {code} is filed at levels {levels}, not at {level}",
            code=code,
            levels=levels,
            level=level,
        )
        return "level", message, _OUTSIDE
    ended = [s.valid_until for s in with_level if s.valid_until is not None and s.valid_until < on]
    begins = [s.valid_from for s in with_level if on < s.valid_from]
    dates = {"code": code, "level": level}
    if ended and begins:
        message = _(
            "outside the evaluation body's filed scope on that date: its filing for {code} at level {level} "
            "ended on {valid_until} and starts again on {valid_from}",
            **dates,
            valid_until=max(ended).isoformat(),
            valid_from=min(begins).isoformat(),
        )
    elif ended:
        message = _(
            "outside the evaluation body's filed scope on that date: its filing for {code} at level {level} "
            "ended on {valid_until}",
            **dates,
            valid_until=max(ended).isoformat(),
        )
    else:
        message = _(
            "outside the evaluation body's filed scope on that date: its filing for {code} at level {level} "
            "begins on {valid_from}",
            **dates,
            valid_from=min(begins).isoformat(),
        )
    return "awarded_on", message, _OUTSIDE


_HELD_COLUMNS = (col(Holder.id_index), col(Certificate.catalogue_code), col(Certificate.level), col(Certificate.number))


async def _refuse_live_duplicates(
    session: AsyncSession, screening: Screening, *, issuer_id: int, replacing: Certificate | None
) -> None:
    """Moves to the refusals every accepted award whose holder already has a live certificate of this body for the
    same entry and level, naming that certificate. A correction that keeps its original's entry and level replaces
    one live certificate with one, so only a correction onto another entry or level is checked (and its refusal
    names the field it changes)."""
    unchanged = (replacing.catalogue_code, replacing.level) if replacing is not None else None
    to_check = [a for a in screening.accepted if (a.award.catalogue_code, a.award.level) != unchanged]
    postgres = bulk.is_postgres(session)
    held: dict[tuple[str, str, str], str] = {}
    for chunk in bulk.lookup_chunks(list({a.holder.index: None for a in to_check}), postgres=postgres):
        query = (
            select(*_HELD_COLUMNS)
            .join(Certificate, col(Certificate.holder_id) == col(Holder.id))
            .where(
                bulk.one_of(col(Holder.id_index), chunk, postgres=postgres),
                col(Certificate.status).in_(LIVE),
                col(Certificate.issuer_id) == issuer_id,
            )
        )
        held.update({(index, code, level): number for index, code, level, number in await session.execute(query)})
    kept: list[Accepted] = []
    for accepted in screening.accepted:
        award = accepted.award
        number = held.get((accepted.holder.index, award.catalogue_code, award.level))
        if number is None:
            kept.append(accepted)
            continue
        field_name = "holder.id_number"
        if replacing is not None:
            field_name = "catalogue_code" if award.catalogue_code != replacing.catalogue_code else "level"
        message = _(
            "this body already issued this holder a live certificate for this entry and level: {number}",
            number=numbering.group_canonical(number),
        )
        screening.refusals.append(Refusal(accepted.row, field_name, message, Refused.duplicate))
    screening.accepted = kept
