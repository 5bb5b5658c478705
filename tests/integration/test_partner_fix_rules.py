"""What the rules make a partner agency be told: a bridge is listed only where the deciding bridge rule opens it, and a
recognition rule "at the same level" in another entry is refused where that entry never awards a level it covers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.db import transaction
from registry.recognition import references
from registry.recognition.schemas import RuleCreate
from tests.checks import assert_problem
from tests.factories import (
    admin_token,
    bearer,
    create_client,
    create_issuer,
    issued_certificate,
    issuer_token,
    resident_id,
    token_for,
)
from tests.integration.test_partner_attack_recognition import _ask, _beijing_title

TJ_BASIS = {"code": "TJ-HRSS-2026-TEST", "title": "《天津市职称认定补充规定》"}


def _rule(**fields: Any) -> dict[str, Any]:
    return {
        "from_region": "BJ",
        "to_region": "TJ",
        "cert_type": "title",
        "basis": TJ_BASIS,
        "effective_from": "2026-01-01",
        **fields,
    }


# --- D1: bridges ------------------------------------------------------------------------------------------------------


async def test_a_closing_bridge_broader_than_an_opening_one_leaves_the_bridge_open(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The most specific bridge decides a ladder: a type-wide "not recognised" does not close what the seed's
    engineering-series bridge (中级 -> 技师) opens."""
    admin = await admin_token(app, client)
    cert = await _beijing_title(app, client, admin, code="BJ-AI-MID", catalogue_code="ENG-AI", level="intermediate")
    closed = _rule(
        kind="bridge",
        levels=["intermediate"],
        decision="not_recognised",
        equivalent={"cert_type": "skill", "level": "level_2"},
    )
    created = await client.post("/v1/recognition/rules", json=closed, headers=bearer(admin))
    assert created.status_code == 201, created.text
    partner = bearer(await token_for(client, *await create_client(app, role=Role.partner, region="TJ")))

    answer = await _ask(client, partner, cert)

    assert [(bridge["equivalent"]["cert_type"], bridge["equivalent"]["level"]) for bridge in answer["bridges"]] == [
        ("skill", "level_2")
    ]
    assert answer["bridges"][0]["rule_id"] != created.json()["id"]


async def test_a_closing_bridge_more_specific_than_the_seed_bridge_lists_no_bridge(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    cert = await _beijing_title(app, client, admin, code="BJ-AI-MID", catalogue_code="ENG-AI", level="intermediate")
    partner = bearer(await token_for(client, *await create_client(app, role=Role.partner, region="TJ")))
    before = await _ask(client, partner, cert)
    closed = _rule(
        kind="bridge",
        catalogue_codes=["ENG-AI"],
        decision="not_recognised",
        equivalent={"cert_type": "skill", "level": "level_2"},
    )
    created = await client.post("/v1/recognition/rules", json=closed, headers=bearer(admin))
    assert created.status_code == 201, created.text

    after = await _ask(client, partner, cert)

    assert [bridge["equivalent"]["level"] for bridge in before["bridges"]] == ["level_2"]  # the seed's, opened
    assert after["bridges"] == []
    assert (after["result"], after["decision"]) == ("valid", "recognised")  # recognition itself is another rule's


# --- D5: "the same level" in another entry ---------------------------------------------------------------------------

SAME_LEVEL_AS_AI = _rule(
    catalogue_codes=["ENG-AUTOMATION"],  # awards 员级 (clerk) to 正高级
    decision="conditional",
    equivalent={"catalogue_code": "ENG-AI"},  # awards 助理级 (assistant) to 正高级 only
    conditions_zh="按人工智能专业同级认定。",
    conditions_en="Counted as artificial intelligence at the same level.",
)


@pytest.mark.parametrize(("lang", "said"), [("en", "ENG-AI does not award clerk"), ("zh", "ENG-AI 不颁发")])
async def test_a_same_level_rule_into_an_entry_that_lacks_a_covered_level_is_refused_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, lang: str, said: str
) -> None:
    admin = await admin_token(app, client)

    response = await client.post(
        "/v1/recognition/rules", json=SAME_LEVEL_AS_AI, headers={**bearer(admin), "Accept-Language": lang}
    )

    assert_problem(response, 422, field="equivalent.level", message=said)
    listed = await client.get(
        "/v1/recognition/rules", params={"from_region": "BJ", "to_region": "TJ", "limit": 500}, headers=bearer(admin)
    )
    assert "ENG-AUTOMATION" not in listed.text  # nothing written


@pytest.mark.parametrize(
    "change",
    [
        {"levels": ["assistant", "intermediate", "associate_senior", "senior"]},  # only what 人工智能 awards
        {"equivalent": {"catalogue_code": "ENG-AI", "level": "assistant"}},  # a level named: not "the same"
    ],
    ids=["levels it awards", "level named"],
)
async def test_a_same_level_rule_within_what_the_entry_awards_is_kept(
    app: FastAPI, client: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    admin = await admin_token(app, client)

    response = await client.post("/v1/recognition/rules", json={**SAME_LEVEL_AS_AI, **change}, headers=bearer(admin))

    assert response.status_code == 201, response.text


async def test_a_series_wide_same_level_rule_is_checked_against_every_level_the_series_awards(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    rule = {**SAME_LEVEL_AS_AI, "catalogue_codes": [], "series_code": "ENG", "to_region": "HE", "from_region": "TJ"}

    response = await client.post("/v1/recognition/rules", json=rule, headers=bearer(admin))

    assert_problem(response, 422, field="equivalent.level", message="clerk")


async def test_an_agency_is_told_the_same_level_where_the_entry_awards_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin, code="BJ-AUTO", catalogue_codes=("ENG-AUTOMATION",), levels=("intermediate",))
    holder = {"name": "王工程", "id_type": "resident_id", "id_number": resident_id()}
    token = await issuer_token(app, client, "BJ-AUTO")
    made = await issued_certificate(client, token, holder=holder, catalogue_code="ENG-AUTOMATION", level="intermediate")
    rule = {**SAME_LEVEL_AS_AI, "levels": ["intermediate"]}
    assert (await client.post("/v1/recognition/rules", json=rule, headers=bearer(admin))).status_code == 201
    partner = bearer(await token_for(client, *await create_client(app, role=Role.partner, region="TJ")))

    answer = await _ask(client, partner, {**made, "holder": holder})

    assert answer["decision"] == "conditional"
    assert (answer["equivalent"]["catalogue_code"], answer["equivalent"]["level"]) == ("ENG-AI", None)
    assert answer["certificate"]["level"] == "intermediate"  # counted as 人工智能 中级, which is awarded


def _as_created(rule: dict[str, Any]) -> RuleCreate:
    """A stored rule (as GET /v1/recognition/rules shows it) as the body that would create it."""
    equivalent = rule["equivalent"]
    fields = ("cert_type", "series_code", "catalogue_code", "level")
    conditions = rule["conditions"] or {}
    return RuleCreate.model_validate(
        {
            **{key: rule[key] for key in ("kind", "from_region", "to_region", "cert_type", "decision")},
            **{key: rule[key] for key in ("catalogue_codes", "series_code", "levels", "basis")},
            "equivalent": {key: equivalent[key] for key in fields} if equivalent else None,
            "conditions_zh": conditions.get("zh"),
            "conditions_en": conditions.get("en"),
            "effective_from": rule["effective_from"],
            "effective_until": rule["effective_until"],
        }
    )


async def test_every_seed_rule_passes_the_checks_a_new_rule_gets(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    listed = await client.get("/v1/recognition/rules", params={"limit": 500}, headers=bearer(admin))
    assert listed.status_code == 200, listed.text
    seeds = listed.json()["data"]
    assert listed.json()["count"] == len(seeds)
    same_level = [rule for rule in seeds if rule["equivalent"] and rule["equivalent"]["level"] is None]
    assert {rule["catalogue_codes"][0] for rule in same_level} == {"ENG-EAI", "ENG-BCI"}  # counted as 人工智能

    async with transaction(app.state.sessions) as session:
        for rule in seeds:
            await references.check(session, _as_created(rule))  # raises InvalidInput naming the field otherwise
