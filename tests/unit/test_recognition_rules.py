"""Rule matching and precedence: which rule decides a case, on which days, and which ties are refused."""

from __future__ import annotations

import json
from datetime import date, timedelta
from importlib import resources
from typing import Any

import pytest

from registry.recognition import matching
from registry.recognition.models import RecognitionRule
from registry.recognition.schemas import RuleCreate

DAY = date(2026, 12, 2)


def rule(rule_id: int, **fields: Any) -> RecognitionRule:
    base: dict[str, Any] = {
        "id": rule_id,
        "kind": "recognition",
        "from_region": "BJ",
        "to_region": "TJ",
        "cert_type": "title",
        "catalogue_codes": [],
        "series_code": None,
        "levels": [],
        "decision": "recognised",
        "basis_code": "DOC",
        "basis_title": "doc",
        "effective_from": date(2026, 1, 1),
        "created_by": "test",
    }
    base.update(fields)
    return RecognitionRule(**base)


def case(**fields: Any) -> matching.Case:
    base: dict[str, Any] = {
        "from_region": "BJ",
        "to_region": "TJ",
        "cert_type": "title",
        "catalogue_code": "ENG-EAI",
        "series_code": "ENG",
        "level": "intermediate",
    }
    base.update(fields)
    return matching.Case(**base)


WHOLE_TYPE = rule(1, decision="not_recognised")
SERIES = rule(2, series_code="ENG")
ENTRY = rule(3, catalogue_codes=["ENG-EAI"], decision="conditional")
ENTRY_LEVEL = rule(4, catalogue_codes=["ENG-EAI"], levels=["senior"], decision="not_recognised")


def test_an_entry_rule_beats_a_series_rule_which_beats_a_whole_type_rule() -> None:
    rules = [WHOLE_TYPE, SERIES, ENTRY]
    assert matching.deciding_rule(rules, case(), DAY) is ENTRY
    assert matching.deciding_rule(rules, case(catalogue_code="ENG-AI"), DAY) is SERIES
    assert matching.deciding_rule(rules, case(catalogue_code="HEALTH-NURSING", series_code="HEALTH"), DAY) is WHOLE_TYPE


def test_a_rule_naming_levels_beats_one_for_every_level_only_at_those_levels() -> None:
    rules = [ENTRY, ENTRY_LEVEL]
    assert matching.deciding_rule(rules, case(level="senior"), DAY) is ENTRY_LEVEL
    assert matching.deciding_rule(rules, case(level="intermediate"), DAY) is ENTRY


def test_rules_decide_only_their_own_direction_and_type() -> None:
    assert matching.deciding_rule([SERIES], case(to_region="HE"), DAY) is None
    assert matching.deciding_rule([SERIES], case(from_region="TJ", to_region="BJ"), DAY) is None
    assert matching.deciding_rule([SERIES], case(cert_type="skill"), DAY) is None


def test_a_rule_is_in_force_from_its_first_day_to_its_last_day_inclusive() -> None:
    window = rule(5, series_code="ENG", effective_from=DAY, effective_until=DAY + timedelta(days=30))
    assert matching.deciding_rule([window], case(), DAY - timedelta(days=1)) is None
    assert matching.deciding_rule([window], case(), DAY) is window
    assert matching.deciding_rule([window], case(), DAY + timedelta(days=30)) is window
    assert matching.deciding_rule([window], case(), DAY + timedelta(days=31)) is None


def test_a_retired_rule_decides_nothing() -> None:
    retired = rule(6, series_code="ENG", retired_at=DAY)
    assert matching.deciding_rule([retired, WHOLE_TYPE], case(), DAY) is WHOLE_TYPE


def test_bridges_are_not_recognition_and_the_most_specific_bridge_per_ladder_applies() -> None:
    skill = case(cert_type="skill", catalogue_code="SK-6-31-01-03", series_code=None, level="level_2")
    broad = rule(7, kind="bridge", cert_type="skill", levels=["level_2"], equivalent_cert_type="title")
    narrow = rule(
        8,
        kind="bridge",
        cert_type="skill",
        catalogue_codes=["SK-6-31-01-03"],
        levels=["level_2"],
        equivalent_cert_type="title",
        equivalent_level="associate_senior",
    )
    assert matching.deciding_rule([broad, narrow], skill, DAY) is None
    assert matching.bridges([broad], skill, DAY) == [broad]
    assert matching.bridges([broad, narrow], skill, DAY) == [narrow]
    assert matching.bridges([broad], case(cert_type="skill", level="level_3", series_code=None), DAY) == []


def test_a_version_gives_way_wholly_on_the_day_its_live_revision_begins() -> None:
    later = DAY + timedelta(days=10)
    old = rule(11, series_code="ENG", superseded_by=12)
    narrower = rule(12, series_code="ENG", levels=["senior"], effective_from=later, supersedes=11)
    assert matching.deciding_rule([old, narrower], case(), later - timedelta(days=1)) is old
    # From its first day the revision alone speaks for the old version, even for the cases it no longer covers.
    assert matching.deciding_rule([old, narrower, WHOLE_TYPE], case(), later) is WHOLE_TYPE
    assert matching.deciding_rule([old, narrower], case(level="senior"), later) is narrower
    # A successor that is not among the live rules (retired before it began) does not end the old version.
    assert matching.deciding_rule([old], case(), later) is old
    withdrawn = rule(12, series_code="ENG", effective_from=later, retired_at=DAY)
    assert matching.deciding_rule([old, withdrawn], case(), later) is old


def test_a_bridge_gives_way_to_its_revision_the_same_way() -> None:
    skill = case(cert_type="skill", catalogue_code="SK-6-31-01-03", series_code=None, level="level_2")
    later = DAY + timedelta(days=3)
    fields: dict[str, Any] = {"kind": "bridge", "cert_type": "skill", "equivalent_cert_type": "title"}
    old = rule(13, levels=["level_2"], equivalent_level="intermediate", superseded_by=14, **fields)
    new = rule(14, levels=["level_2"], equivalent_level="associate_senior", effective_from=later, **fields)
    assert matching.bridges([old, new], skill, DAY) == [old]
    assert matching.bridges([old, new], skill, later) == [new]


@pytest.mark.parametrize(
    ("existing", "new", "tie"),
    [
        (SERIES, rule(10, series_code="ENG"), True),
        (SERIES, rule(10, series_code="HEALTH"), False),
        (SERIES, rule(10, catalogue_codes=["ENG-AI"]), False),  # more specific: precedence decides, no tie
        (ENTRY, rule(10, catalogue_codes=["ENG-BCI", "ENG-EAI"]), True),
        (ENTRY, rule(10, catalogue_codes=["ENG-BCI"]), False),
        (ENTRY_LEVEL, rule(10, catalogue_codes=["ENG-EAI"], levels=["senior", "intermediate"]), True),
        (ENTRY_LEVEL, rule(10, catalogue_codes=["ENG-EAI"], levels=["intermediate"]), False),
        (WHOLE_TYPE, rule(10), True),
        (WHOLE_TYPE, rule(10, to_region="HE"), False),
        (WHOLE_TYPE, rule(10, kind="bridge", equivalent_cert_type="skill"), False),
        (rule(9, effective_until=date(2026, 6, 30)), rule(10, effective_from=date(2026, 7, 1)), False),
        (rule(9, effective_until=date(2026, 7, 1)), rule(10, effective_from=date(2026, 7, 1)), True),
        (rule(9, retired_at=DAY), rule(10), False),
    ],
)
def test_a_tie_is_the_same_precedence_for_a_shared_case_on_a_shared_day(
    existing: RecognitionRule, new: RecognitionRule, tie: bool
) -> None:
    assert (matching.ties(new, [existing]) == [existing]) is tie


def _seed() -> tuple[dict[str, Any], dict[str, Any]]:
    def load(package: str, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(resources.files(package).joinpath("data", name).read_text("utf-8"))
        return data

    return load("registry.recognition", "rules-2026-12.json"), load("registry.catalogue", "catalogue-2026-11.json")


def test_the_seed_rules_are_valid_rules_without_ties_and_name_only_what_the_catalogue_has() -> None:
    rules, catalogue = _seed()
    entries = {entry["code"]: entry for entry in catalogue["entries"]}
    series = {item["code"] for item in catalogue["series"]}
    ladders = {(level["cert_type"], level["code"]) for level in catalogue["levels"]}
    titles = {doc["code"]: doc["title_zh"] for doc in rules["basis_documents"]}
    rows: list[RecognitionRule] = []
    for index, item in enumerate(rules["rules"]):
        body = RuleCreate.model_validate(
            {**item, "basis": {"code": item["basis"], "title": titles[item["basis"]]}}
        )  # the same checks as POST /v1/recognition/rules
        equivalent = body.equivalent
        assert all(code in entries for code in body.catalogue_codes)
        assert body.series_code is None or body.series_code in series
        assert all((body.cert_type.value, level) in ladders for level in body.levels)
        if equivalent is not None and equivalent.catalogue_code is not None:
            assert equivalent.catalogue_code in entries
        if equivalent is not None and equivalent.level is not None:
            assert ((equivalent.cert_type or body.cert_type).value, equivalent.level) in ladders
        new = rule(
            index,
            **{key: item[key] for key in ("kind", "from_region", "to_region", "cert_type", "levels")},
            catalogue_codes=item["catalogue_codes"],
            series_code=item["series_code"],
            equivalent_cert_type=(item["equivalent"] or {}).get("cert_type"),
        )
        assert matching.ties(new, rows) == [], item
        rows.append(new)


def test_the_seed_covers_what_the_arrangement_promises() -> None:
    rules, _ = _seed()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in rules["rules"]:
        by_kind.setdefault(item["kind"], []).append(item)
    pairs = {(a, b) for a in ("BJ", "TJ", "HE") for b in ("BJ", "TJ", "HE") if a != b}
    skill = {(r["from_region"], r["to_region"]) for r in by_kind["recognition"] if r["cert_type"] == "skill"}
    engineering = {(r["from_region"], r["to_region"]) for r in by_kind["recognition"] if r["series_code"] == "ENG"}
    assert skill == pairs
    assert engineering == pairs
    conditional = {
        (r["to_region"], r["catalogue_codes"][0]) for r in by_kind["recognition"] if r["decision"] == "conditional"
    }
    assert conditional == {(region, code) for region in ("TJ", "HE") for code in ("ENG-EAI", "ENG-BCI")}
    bridge_pairs = {(r["from_region"], r["to_region"], r["cert_type"]) for r in by_kind["bridge"]}
    assert bridge_pairs == {(a, b, t) for a, b in pairs for t in ("skill", "title")}
