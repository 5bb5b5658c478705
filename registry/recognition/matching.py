"""Which rule decides a case: coverage, date windows and precedence. Pure functions over rule rows.

Precedence, most specific first (documented in the README, "Mutual recognition and federation"):

1. scope: a rule listing catalogue entries beats a rule for a whole title series, which beats a rule for the whole
   certificate type;
2. then levels: a rule listing levels beats one for every level.

Two rules of the same kind, regions and certificate type with the same precedence that could both decide one case on
one day are a tie; ties are refused when the second rule is created (409), so a case never has two answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from registry.recognition.models import RecognitionRule, RuleKind

_ENTRIES, _SERIES, _TYPE = 2, 1, 0


@dataclass(frozen=True, slots=True)
class Case:
    """A certificate as the rules see it."""

    from_region: str
    to_region: str
    cert_type: str
    catalogue_code: str
    series_code: str | None
    level: str


def precedence(rule: RecognitionRule) -> tuple[int, int]:
    scope = _ENTRIES if rule.catalogue_codes else _SERIES if rule.series_code else _TYPE
    return scope, 1 if rule.levels else 0


def covers(rule: RecognitionRule, case: Case) -> bool:
    if (rule.from_region, rule.to_region, rule.cert_type) != (case.from_region, case.to_region, case.cert_type):
        return False
    if rule.levels and case.level not in rule.levels:
        return False
    if rule.catalogue_codes:
        return case.catalogue_code in rule.catalogue_codes
    return rule.series_code is None or rule.series_code == case.series_code


def _windows_meet(a: RecognitionRule, b: RecognitionRule) -> bool:
    a_until, b_until = a.effective_until or date.max, b.effective_until or date.max
    return a.effective_from <= b_until and b.effective_from <= a_until


def _scopes_meet(a: RecognitionRule, b: RecognitionRule) -> bool:
    if a.levels and b.levels and not set(a.levels) & set(b.levels):
        return False
    if a.catalogue_codes:  # same precedence: b lists entries too
        return bool(set(a.catalogue_codes) & set(b.catalogue_codes))
    return a.series_code == b.series_code


def target_ladder(rule: RecognitionRule) -> str:
    """The ladder a rule leads to: the one its equivalent names, else its own (an equivalent naming the rule's own
    type leads where one naming none does)."""
    return rule.equivalent_cert_type or rule.cert_type


def ties(new: RecognitionRule, existing: Iterable[RecognitionRule]) -> list[RecognitionRule]:
    """The live rules that ``new`` would tie with: same kind, regions and type (and, for a bridge, target ladder),
    same precedence, overlapping cases and overlapping date windows."""

    def question(rule: RecognitionRule) -> tuple[str, ...]:
        # A case has one recognition answer, whatever it says the certificate is equivalent to; a bridge, one per
        # ladder it leads to.
        ladder = target_ladder(rule) if rule.kind == RuleKind.bridge else ""
        return (rule.kind, rule.from_region, rule.to_region, rule.cert_type, ladder)

    def same_question(rule: RecognitionRule) -> bool:
        return question(rule) == question(new)

    return [
        rule
        for rule in existing
        if rule.retired_at is None
        and same_question(rule)
        and precedence(rule) == precedence(new)
        and _scopes_meet(new, rule)
        and _windows_meet(new, rule)
    ]


def deciding_rule(rules: Iterable[RecognitionRule], case: Case, day: date) -> RecognitionRule | None:
    """The recognition rule in force on ``day`` that decides the case, or None when no rule covers it."""
    candidates = [r for r in rules if r.kind == RuleKind.recognition and r.in_force_on(day) and covers(r, case)]
    return max(candidates, key=precedence, default=None)


def bridges(rules: Iterable[RecognitionRule], case: Case, day: date) -> list[RecognitionRule]:
    """The bridge rules in force on ``day`` for the case: the most specific one per target ladder."""
    best: dict[str, RecognitionRule] = {}
    for rule in rules:
        if rule.kind != RuleKind.bridge or not rule.in_force_on(day) or not covers(rule, case):
            continue
        current = best.get(target_ladder(rule))
        if current is None or precedence(rule) > precedence(current):
            best[target_ladder(rule)] = rule
    return [best[key] for key in sorted(best)]
