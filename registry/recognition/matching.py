"""Which rule decides a case: coverage, date windows and precedence. Pure functions over rule rows.

Precedence, most specific first (documented in the README, "Mutual recognition and federation"):

1. scope: a rule listing catalogue entries beats a rule for a whole title series, which beats a rule for the whole
   certificate type;
2. then levels: a rule listing levels beats one for every level.

Two rules of the same kind, regions and certificate type with the same precedence that could both decide one case on
one day are a tie; ties are refused when the second rule is created (409), so a case never has two answers.

A revision dated ahead does not end its predecessor at once: the old version stays live, pointing at its successor
(``superseded_by``), and gives way wholly on the day the successor takes effect (``gives_way``), so the cases it
decided are never left without a rule in between.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from registry.recognition.models import Decision, RecognitionRule, RuleKind

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


def counts_at_the_same_level(rule: RecognitionRule) -> bool:
    """A recognition rule counting what it covers as another catalogue entry "at the same level": it names the entry
    and no level, so it can say what a case counts as only at a level that entry awards."""
    return (
        rule.kind == RuleKind.recognition
        and rule.equivalent_catalogue_code is not None
        and rule.equivalent_level is None
    )


def answers_at(rule: RecognitionRule, level: str, awarded: Collection[str] | None) -> bool:
    """Whether ``rule`` can say what a case at ``level`` counts as. Not a same-level rule whose entry (which awards
    ``awarded``; None: no such entry in the catalogue) never awards that level: such a rule is refused since
    (registry.recognition.references), but one kept before may still be stored, and its answer would name a title
    that is never awarded. The case is answered not recognised instead (``EQUIVALENT_NOT_AWARDED``), and
    ``registry rules check`` names the rule."""
    return not counts_at_the_same_level(rule) or (awarded is not None and level in awarded)


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


def gives_way(rule: RecognitionRule, live: Mapping[int, RecognitionRule], day: date) -> bool:
    """Whether a live successor of ``rule`` (among ``live``, by id) has taken effect by ``day``."""
    successor = live.get(rule.superseded_by) if rule.superseded_by is not None else None
    return successor is not None and successor.retired_at is None and successor.effective_from <= day


def _deciding(rules: Iterable[RecognitionRule], kind: RuleKind, case: Case, day: date) -> list[RecognitionRule]:
    """The rules of ``kind`` that decide the case on ``day``: covering it, in force, not given way to a revision."""
    rules = list(rules)
    live = {rule.id: rule for rule in rules if rule.id is not None and rule.retired_at is None}
    return [
        rule
        for rule in rules
        if rule.kind == kind and rule.in_force_on(day) and covers(rule, case) and not gives_way(rule, live, day)
    ]


def deciding_rule(rules: Iterable[RecognitionRule], case: Case, day: date) -> RecognitionRule | None:
    """The recognition rule in force on ``day`` that decides the case, or None when no rule covers it. ``rules`` are
    the live rules for the case's regions (a successor outside them is not seen)."""
    return max(_deciding(rules, RuleKind.recognition, case, day), key=precedence, default=None)


def bridges(rules: Iterable[RecognitionRule], case: Case, day: date) -> list[RecognitionRule]:
    """The bridges the case opens on ``day``: per target ladder, the most specific bridge rule in force, unless that
    rule says ``not_recognised`` — then the ladder is closed to the case, whatever a broader bridge says (so a closing
    rule is chosen by precedence first, and only then left out)."""
    best: dict[str, RecognitionRule] = {}
    for rule in _deciding(rules, RuleKind.bridge, case, day):
        current = best.get(target_ladder(rule))
        if current is None or precedence(rule) > precedence(current):
            best[target_ladder(rule)] = rule
    return [best[key] for key in sorted(best) if best[key].decision != Decision.not_recognised]
