"""Keeping the recognition rules: create, revise, retire (never an edit in place), list, and read them back.

A revision in force at once (or replacing a version that never took effect) retires the old version at once. One dated
ahead leaves the old version live and deciding until the revision's first day (``matching.gives_way``); the next write
for those regions then retires it. So the cases a rule decides are never left without a rule in between, and a
revision that has not begun can still be withdrawn (retired: the old version decides on) or moved (revised).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk, clock
from registry.audit import service as audit
from registry.audit.service import Actor
from registry.catalogue.models import CatalogueEntry, CertType
from registry.db import MAX_ROW_ID, utcnow
from registry.errors import FieldError, IllegalTransition, InvalidInput, NotFound, OverlappingRule, said_masked
from registry.i18n import _
from registry.recognition import matching, references
from registry.recognition.models import RecognitionRule
from registry.recognition.schemas import (
    BasisPublic,
    EquivalentPublic,
    LocalizedText,
    RuleCreate,
    RulePage,
    RulePublic,
    RuleStatus,
)

WRITERS_LOCK = 0x72756C65  # "rule": the PostgreSQL advisory lock every rule writer takes first


def status_of(rule: RecognitionRule, today: date, successors: Mapping[int, RecognitionRule]) -> RuleStatus:
    if rule.retired_at is not None:
        return RuleStatus.retired
    if matching.gives_way(rule, successors, today):
        return RuleStatus.superseded
    if today < rule.effective_from:
        return RuleStatus.scheduled
    if rule.effective_until is not None and rule.effective_until < today:
        return RuleStatus.lapsed
    return RuleStatus.in_force


def equivalent_of(rule: RecognitionRule, names: dict[str, CatalogueEntry]) -> EquivalentPublic | None:
    if not (rule.equivalent_cert_type or rule.equivalent_catalogue_code or rule.equivalent_level):
        return None
    entry = names.get(rule.equivalent_catalogue_code or "")
    return EquivalentPublic(
        cert_type=CertType(rule.equivalent_cert_type or rule.cert_type),
        series_code=rule.equivalent_series_code or (entry.series_code if entry else None),
        catalogue_code=rule.equivalent_catalogue_code,
        name_zh=entry.name_zh if entry else None,
        name_en=entry.name_en if entry else None,
        level=rule.equivalent_level,
    )


def to_public(
    rule: RecognitionRule,
    names: dict[str, CatalogueEntry],
    successors: Mapping[int, RecognitionRule],
    today: date,
) -> RulePublic:
    assert rule.id is not None
    conditions = (
        LocalizedText(zh=rule.conditions_zh or "", en=rule.conditions_en or "")
        if rule.conditions_zh or rule.conditions_en
        else None
    )
    return RulePublic(
        id=rule.id,
        kind=rule.kind,
        status=status_of(rule, today, successors),
        from_region=rule.from_region,
        to_region=rule.to_region,
        cert_type=CertType(rule.cert_type),
        catalogue_codes=rule.catalogue_codes,
        series_code=rule.series_code,
        levels=rule.levels,
        decision=rule.decision,
        equivalent=equivalent_of(rule, names),
        conditions=conditions,
        basis=BasisPublic(code=rule.basis_code, title=rule.basis_title),
        effective_from=rule.effective_from,
        effective_until=rule.effective_until,
        supersedes=rule.supersedes,
        superseded_by=rule.superseded_by,
        created_at=rule.created_at,
        created_by=rule.created_by,
        retired_at=rule.retired_at,
        retired_reason=rule.retired_reason,
    )


async def entry_names(session: AsyncSession, rules: Sequence[RecognitionRule]) -> dict[str, CatalogueEntry]:
    codes = {rule.equivalent_catalogue_code for rule in rules if rule.equivalent_catalogue_code}
    if not codes:
        return {}
    found = await session.execute(select(CatalogueEntry).where(col(CatalogueEntry.code).in_(codes)))
    return {entry.code: entry for entry in found.scalars()}


async def publish(session: AsyncSession, rules: Sequence[RecognitionRule]) -> list[RulePublic]:
    """Rules as the API shows them: entry names, and whether a revision has taken over."""
    names, today = await entry_names(session, rules), clock.today()
    wanted = {rule.superseded_by for rule in rules if rule.retired_at is None and rule.superseded_by is not None}
    successors: dict[int, RecognitionRule] = {}
    if wanted:
        found = await session.execute(select(RecognitionRule).where(col(RecognitionRule.id).in_(wanted)))
        successors = {rule.id: rule for rule in found.scalars() if rule.id is not None}
    return [to_public(rule, names, successors, today) for rule in rules]


def _row(body: RuleCreate, actor: Actor, supersedes: int | None) -> RecognitionRule:
    equivalent = body.equivalent
    return RecognitionRule(
        kind=body.kind,
        from_region=body.from_region,
        to_region=body.to_region,
        cert_type=body.cert_type,
        catalogue_codes=sorted(set(body.catalogue_codes)),
        series_code=body.series_code,
        levels=sorted(set(body.levels)),
        decision=body.decision,
        equivalent_cert_type=equivalent.cert_type if equivalent else None,
        equivalent_series_code=equivalent.series_code if equivalent else None,
        equivalent_catalogue_code=equivalent.catalogue_code if equivalent else None,
        equivalent_level=equivalent.level if equivalent else None,
        conditions_zh=body.conditions_zh,
        conditions_en=body.conditions_en,
        basis_code=body.basis.code,
        basis_title=body.basis.title,
        effective_from=body.effective_from,
        effective_until=body.effective_until,
        supersedes=supersedes,
        created_by=actor.id,
    )


async def _live(session: AsyncSession, *, from_region: str, to_region: str) -> list[RecognitionRule]:
    query = select(RecognitionRule).where(
        col(RecognitionRule.retired_at).is_(None),
        col(RecognitionRule.from_region) == from_region,
        col(RecognitionRule.to_region) == to_region,
    )
    return list((await session.execute(query)).scalars())


async def _lock(session: AsyncSession) -> None:
    """One rule writer at a time (PostgreSQL): two tying rules written together must not both land. Taken before any
    rule row is locked, by every writer, so writers queue here rather than deadlock on rows."""
    if bulk.is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITERS_LOCK})


async def _settle(session: AsyncSession, actor: Actor, live: list[RecognitionRule]) -> list[RecognitionRule]:
    """Retire the versions whose revision has taken effect (they gave way that day and never decide again); the
    rest of ``live`` stays."""
    by_id = {rule.id: rule for rule in live if rule.id is not None}
    today = clock.today()
    over = [rule for rule in live if rule.retired_at is None and matching.gives_way(rule, by_id, today)]
    for rule in over:
        successor = by_id[rule.superseded_by or 0]
        # It stopped deciding when its successor began: on that day, or when the successor was made if that was later
        # (a revision dated back).
        began = max(datetime.combine(successor.effective_from, time(), clock.CHINA_STANDARD_TIME), successor.created_at)
        day = began.astimezone(clock.CHINA_STANDARD_TIME).date().isoformat()
        reason = f"revised: superseded by rule {successor.id} from {day}"
        # Filed now, by whoever writes: the record says who made the revision and when the version stopped deciding.
        ended = {"retired_by": successor.created_by, "retired_at": began.isoformat()}
        await _retire(session, actor, rule, reason, at=began, by=successor.created_by, details=ended)
    return [rule for rule in live if rule.retired_at is None]


def _chain(rule: RecognitionRule, live: Sequence[RecognitionRule]) -> set[int | None]:
    """``rule`` and the live versions it is to replace when it begins (its predecessors not yet retired)."""
    chain: set[int | None] = {rule.id}
    while more := {other.id for other in live if other.superseded_by in chain and other.id not in chain}:
        chain |= more
    return chain


def _superseded(rule: RecognitionRule) -> IllegalTransition:
    successor = rule.superseded_by
    return IllegalTransition(
        _("rule {rule} was superseded by rule {successor}; revise that one", rule=rule.id, successor=successor)
    )


def _check_question(old: RecognitionRule, body: RuleCreate) -> None:
    """A revision answers the same question (the cases it may cover, the regions, the kind): anything else is a new
    rule, and the old one is retired on its own."""
    kept = {"kind": old.kind, "from_region": old.from_region, "to_region": old.to_region, "cert_type": old.cert_type}
    errors = [
        FieldError(field, _("a revision keeps the rule's {field}; retire it and create a new rule", field=field))
        for field, value in kept.items()
        if str(getattr(body, field)) != value
    ]
    if errors:
        raise InvalidInput.fields(errors)


def _check_revision(old: RecognitionRule, live: Sequence[RecognitionRule]) -> None:
    if old.retired_at is not None:  # it gave way to a revision that has begun (``_settle``)
        raise _superseded(old)
    pending = next((rule for rule in live if rule.id == old.superseded_by), None)
    if pending is not None:
        raise IllegalTransition(
            _(
                "rule {rule} already has a revision, rule {successor}, taking effect on {day}; "
                "revise or retire that one",
                rule=old.id,
                successor=pending.id,
                day=pending.effective_from.isoformat(),
            )
        )


async def create(
    session: AsyncSession, *, actor: Actor, body: RuleCreate, replacing: RecognitionRule | None = None
) -> RulePublic:
    """A new rule, or (``replacing``) a new version of one (see the module's docstring for when the old one ends)."""
    await references.check(session, body)
    await _lock(session)
    live = await _settle(session, actor, await _live(session, from_region=body.from_region, to_region=body.to_region))
    if replacing is not None:
        _check_revision(replacing, live)
    rule = _row(body, actor, supersedes=replacing.id if replacing else None)
    replaced = _chain(replacing, live) if replacing is not None else set()
    clashes = matching.ties(rule, [other for other in live if other.id not in replaced])
    if clashes:
        ids = ", ".join(str(other.id) for other in clashes)
        raise OverlappingRule(
            _(
                "rule(s) {ids} already decide some of these cases with the same precedence; "
                "revise or retire them first",
                ids=ids,
            ),
            errors=[FieldError("catalogue_codes", _("ties with rule {rule}", rule=other.id)) for other in clashes],
        )
    session.add(rule)
    await session.flush()
    waiting = await _hand_over(session, actor, replacing, rule, live) if replacing is not None else []
    await audit.append(
        session,
        actor=actor,
        action="recognition.rule_revised" if replacing else "recognition.rule_created",
        object_type="recognition_rule",
        object_id=str(rule.id),
        purpose="recognition rule maintenance",
        details={"supersedes": rule.supersedes, "decision": rule.decision, "from": rule.from_region}
        | ({"replaces_when_it_begins": waiting} if waiting else {}),
    )
    return (await publish(session, [rule]))[0]


async def _hand_over(
    session: AsyncSession, actor: Actor, old: RecognitionRule, new: RecognitionRule, live: list[RecognitionRule]
) -> list[int]:
    """``new`` replaces ``old``. A version that never took effect is replaced at once, and the versions it was to
    replace (still deciding) wait for ``new`` instead; one in force stays until ``new`` begins. Returns the ids of the
    versions left waiting for ``new``."""
    today = clock.today()
    old.superseded_by = new.id
    if today < old.effective_from or new.effective_from <= today:
        await _retire(session, actor, old, f"revised: superseded by rule {new.id}")
        for rule in live:
            if rule.superseded_by == old.id and rule.retired_at is None:
                rule.superseded_by = new.id
    await _settle(session, actor, [*live, new])
    return [rule.id for rule in live if rule.superseded_by == new.id and rule.retired_at is None and rule.id]


async def _retire(
    session: AsyncSession,
    actor: Actor,
    rule: RecognitionRule,
    reason: str,
    *,
    at: datetime | None = None,
    by: str | None = None,
    details: Mapping[str, object] | None = None,
) -> None:
    """Retire ``rule`` (``at``/``by``: when and by whom it ended, if not now and by ``actor``), with its audit
    record."""
    rule.retired_at = at or utcnow()
    rule.retired_by = by or actor.id
    rule.retired_reason = reason
    await session.flush()
    await audit.append(
        session,
        actor=actor,
        action="recognition.rule_retired",
        object_type="recognition_rule",
        object_id=str(rule.id),
        purpose="recognition rule maintenance",
        details={"reason": reason, **(details or {})},
    )


async def _stored(session: AsyncSession, rule_id: int, *, for_update: bool = False) -> RecognitionRule | None:
    if not 1 <= rule_id <= MAX_ROW_ID:
        return None
    return await session.get(RecognitionRule, rule_id, with_for_update=for_update)


async def get_live(session: AsyncSession, rule_id: int) -> RecognitionRule:
    rule = await _stored(session, rule_id, for_update=True)
    if rule is None:
        raise NotFound(_("no recognition rule {rule}", rule=said_masked(rule_id)))
    if rule.retired_at is not None:
        raise IllegalTransition(
            _(
                "rule {rule} was retired on {day}; rules are never revived",
                rule=rule_id,
                day=rule.retired_at.astimezone(clock.CHINA_STANDARD_TIME).date().isoformat(),
            )
        )
    return rule


async def revise(session: AsyncSession, *, actor: Actor, rule_id: int, body: RuleCreate) -> RulePublic:
    await _lock(session)
    old = await get_live(session, rule_id)
    _check_question(old, body)
    return await create(session, actor=actor, body=body, replacing=old)


async def retire(session: AsyncSession, *, actor: Actor, rule_id: int, reason: str) -> RulePublic:
    await _lock(session)
    rule = await get_live(session, rule_id)
    # Versions that gave way to this one are retired first: withdrawing a revision that has begun revives nothing.
    live = await _settle(session, actor, await _live(session, from_region=rule.from_region, to_region=rule.to_region))
    if rule.retired_at is not None:
        raise _superseded(rule)
    # A revision withdrawn before it began: the versions waiting for it decide on, and may be revised anew.
    reverted = [other for other in live if other.superseded_by == rule.id and other.retired_at is None]
    for other in reverted:
        other.superseded_by = None
    # A version ended by hand is replaced by nothing: a revision of it still pending begins on its own day, after a gap.
    if any(other.id == rule.superseded_by for other in live):
        rule.superseded_by = None
    await _retire(session, actor, rule, reason, details={"decide_on": [o.id for o in reverted]} if reverted else None)
    return (await publish(session, [rule]))[0]


async def read(session: AsyncSession, rule_id: int) -> RulePublic:
    rule = await _stored(session, rule_id)
    if rule is None:
        raise NotFound(_("no recognition rule {rule}", rule=said_masked(rule_id)))
    return (await publish(session, [rule]))[0]


async def search(
    session: AsyncSession,
    *,
    from_region: str | None,
    to_region: str | None,
    kind: str | None,
    cert_type: str | None,
    include_retired: bool,
    limit: int,
    offset: int,
) -> RulePage:
    query = select(RecognitionRule)
    for column, value in (
        (RecognitionRule.from_region, from_region),
        (RecognitionRule.to_region, to_region),
        (RecognitionRule.kind, kind),
        (RecognitionRule.cert_type, cert_type),
    ):
        if value is not None:
            query = query.where(col(column) == value)
    if not include_retired:
        query = query.where(col(RecognitionRule.retired_at).is_(None))
    count = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rules = list((await session.execute(query.order_by(col(RecognitionRule.id)).limit(limit).offset(offset))).scalars())
    return RulePage(data=await publish(session, rules), count=count)
