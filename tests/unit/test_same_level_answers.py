"""A rule counting what it covers as another entry "at the same level" answers only at the levels that entry awards;
a rule naming its level, or naming no entry, answers at every level it covers."""

from __future__ import annotations

from datetime import date
from typing import Any

from registry.recognition.matching import answers_at, counts_at_the_same_level
from registry.recognition.models import RecognitionRule

AI_LEVELS = ("assistant", "intermediate", "associate_senior", "senior")


def _rule(**fields: Any) -> RecognitionRule:
    defaults: dict[str, Any] = {
        "kind": "recognition",
        "from_region": "BJ",
        "to_region": "TJ",
        "cert_type": "title",
        "catalogue_codes": ["ENG-AUTOMATION"],
        "decision": "recognised",
        "equivalent_catalogue_code": "ENG-AI",
        "basis_code": "B",
        "basis_title": "T",
        "effective_from": date(2026, 1, 1),
        "created_by": "admin",
    }
    return RecognitionRule(**(defaults | fields))


def test_a_same_level_rule_answers_only_at_the_levels_its_entry_awards() -> None:
    rule = _rule()
    assert counts_at_the_same_level(rule)
    assert answers_at(rule, "intermediate", AI_LEVELS)
    assert not answers_at(rule, "clerk", AI_LEVELS)
    assert not answers_at(rule, "intermediate", None)  # its entry is not in the catalogue: nothing to count as


def test_a_rule_naming_its_level_or_no_entry_or_a_bridge_answers_at_every_level() -> None:
    for rule in (
        _rule(equivalent_level="assistant"),
        _rule(equivalent_catalogue_code=None),
        _rule(kind="bridge", equivalent_cert_type="skill"),
    ):
        assert not counts_at_the_same_level(rule)
        assert answers_at(rule, "clerk", AI_LEVELS)
        assert answers_at(rule, "clerk", None)
