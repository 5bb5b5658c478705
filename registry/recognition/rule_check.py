"""Stored recognition rules against the checks a new rule gets (``registry rules check``): a rule kept before a check
was added is found and named, so that an operator can revise or retire it.

The one such rule that could mislead a partner — "the same level" in an entry that never awards a level the rule covers
(refused since, registry.recognition.references) — decides no case at those levels meanwhile: the partner is told not
recognised, ``equivalent_not_awarded`` (``matching.answers_at``). Rules that can decide no case again (retired,
lapsed, or given way to a revision) are not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import clock
from registry.errors import FieldError, InvalidInput, field_errors
from registry.i18n import _, word
from registry.recognition import matching, references
from registry.recognition.models import RecognitionRule
from registry.recognition.rules import status_of
from registry.recognition.schemas import RuleCreate, RuleStatus

MAY_DECIDE = frozenset({RuleStatus.in_force, RuleStatus.scheduled})


@dataclass(frozen=True)
class FailingRule:
    """A stored rule that a new rule like it would be refused for, and each reason (as the API's 422 names them)."""

    rule: RecognitionRule
    errors: Sequence[FieldError]

    def describe(self) -> list[str]:
        rule = self.rule
        said: list[str] = [
            _(
                "rule {rule} ({from_region} to {to_region}, {cert_type}): {field}: {message}",
                rule=rule.id,
                from_region=rule.from_region,
                to_region=rule.to_region,
                cert_type=word(rule.cert_type),
                field=error.field,
                message=error.message,
            )
            for error in self.errors
        ]
        if matching.counts_at_the_same_level(rule) and any(e.field == "equivalent.level" for e in self.errors):
            said.append(
                _(
                    "rule {rule}: a case at a level {code} does not award is answered not recognised "
                    "(equivalent_not_awarded) until the rule is revised or retired",
                    rule=rule.id,
                    code=rule.equivalent_catalogue_code,
                )
            )
        return said


@dataclass(frozen=True)
class RuleCheck:
    checked: int  # rules that may still decide a case: in force or scheduled
    failing: list[FailingRule]


def as_created(rule: RecognitionRule) -> RuleCreate:
    """The body that would create ``rule`` today: judged by the same model and checks as a new rule (ValidationError
    when the model itself refuses it)."""
    parts = {
        "cert_type": rule.equivalent_cert_type,
        "series_code": rule.equivalent_series_code,
        "catalogue_code": rule.equivalent_catalogue_code,
        "level": rule.equivalent_level,
    }
    return RuleCreate.model_validate(
        {
            "kind": rule.kind,
            "from_region": rule.from_region,
            "to_region": rule.to_region,
            "cert_type": rule.cert_type,
            "catalogue_codes": list(rule.catalogue_codes),
            "series_code": rule.series_code,
            "levels": list(rule.levels),
            "decision": rule.decision,
            "equivalent": parts if any(value is not None for value in parts.values()) else None,
            "conditions_zh": rule.conditions_zh,
            "conditions_en": rule.conditions_en,
            "basis": {"code": rule.basis_code, "title": rule.basis_title},
            "effective_from": rule.effective_from,
            "effective_until": rule.effective_until,
        }
    )


async def _problems(session: AsyncSession, rule: RecognitionRule) -> list[FieldError]:
    try:
        body = as_created(rule)
    except ValidationError as exc:
        return field_errors(exc.errors())
    try:
        await references.check(session, body)
    except InvalidInput as refused:
        return list(refused.errors)
    return []


async def check_stored(session: AsyncSession) -> RuleCheck:
    """Every stored rule that may still decide a case, judged as a new rule would be. Writes nothing."""
    query = select(RecognitionRule).where(col(RecognitionRule.retired_at).is_(None)).order_by(col(RecognitionRule.id))
    live = list((await session.execute(query)).scalars())
    by_id = {rule.id: rule for rule in live if rule.id is not None}
    today = clock.today()
    deciding = [rule for rule in live if status_of(rule, today, by_id) in MAY_DECIDE]
    failing: list[FailingRule] = []
    for rule in deciding:
        if problems := await _problems(session, rule):
            failing.append(FailingRule(rule=rule, errors=problems))
    return RuleCheck(checked=len(deciding), failing=failing)
