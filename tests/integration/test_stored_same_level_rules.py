"""A "same level" recognition rule stored before such rules were refused (one counting 自动化, 员级 to 正高级, as
人工智能, which awards 助理级 up): a partner asking about a level 人工智能 never awards is told not recognised, saying
why, and never that the certificate counts as a title that is not awarded; at a level it does award the rule still
decides; and `registry rules check` names the rule until it is revised or retired."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.config import Settings
from registry.db import transaction
from registry.recognition.models import RecognitionRule
from tests.factories import admin_token, bearer, create_client, token_for
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.test_partner_attack_recognition import _ask, _beijing_title


async def _stored_as_before_the_check(app: FastAPI) -> int:
    """The rule as a version before the check kept it: written straight to the table, no API in the way."""
    rule = RecognitionRule(
        kind="recognition",
        from_region="BJ",
        to_region="TJ",
        cert_type="title",
        catalogue_codes=["ENG-AUTOMATION"],  # awards 员级 (clerk) to 正高级
        levels=[],  # every level
        decision="conditional",
        equivalent_catalogue_code="ENG-AI",  # awards 助理级 (assistant) to 正高级 only; no level: "the same"
        conditions_zh="按人工智能专业同级认定。",
        conditions_en="Counted as artificial intelligence at the same level.",
        basis_code="TJ-HRSS-2026-OLD",
        basis_title="《天津市职称认定补充规定》",
        effective_from=date(2026, 1, 1),
        created_by="admin",
    )
    async with transaction(app.state.sessions) as session:
        session.add(rule)
        await session.flush()
        assert rule.id is not None
        return rule.id


async def _partner(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await token_for(client, *await create_client(app, role=Role.partner, region="TJ")))


async def test_a_level_the_equivalent_entry_never_awards_is_answered_not_recognised_saying_why(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    clerk = await _beijing_title(
        app, client, admin, code="BJ-AUTO-CLERK", catalogue_code="ENG-AUTOMATION", level="clerk"
    )
    await _stored_as_before_the_check(app)

    answer: dict[str, Any] = await _ask(client, await _partner(app, client), clerk)

    assert (answer["result"], answer["decision"]) == ("valid", "not_recognised")
    assert answer["decision_reason"] == "equivalent_not_awarded"
    assert (answer["rule_id"], answer["equivalent"], answer["conditions"], answer["basis"]) == (None, None, None, [])
    assert answer["certificate"]["level"] == "clerk"
    assert answer["signature"]


async def test_a_level_the_equivalent_entry_awards_is_still_decided_by_the_stored_rule(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    middle = await _beijing_title(
        app, client, admin, code="BJ-AUTO-MID", catalogue_code="ENG-AUTOMATION", level="intermediate"
    )
    stored = await _stored_as_before_the_check(app)

    answer: dict[str, Any] = await _ask(client, await _partner(app, client), middle)

    assert (answer["decision"], answer["rule_id"]) == ("conditional", stored)
    assert (answer["equivalent"]["catalogue_code"], answer["equivalent"]["level"]) == ("ENG-AI", None)


async def test_a_bulk_question_gets_the_same_answer_for_the_level_never_awarded(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    clerk = await _beijing_title(
        app, client, admin, code="BJ-AUTO-CLERK", catalogue_code="ENG-AUTOMATION", level="clerk"
    )
    await _stored_as_before_the_check(app)
    body = {"purpose": "hiring", "items": [{"number": clerk["number"], "holder_name": clerk["holder"]["name"]}]}

    response = await client.post("/v1/recognition/queries", json=body, headers=await _partner(app, client))

    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert (result["answer"]["decision"], result["answer"]["decision_reason"]) == (
        "not_recognised",
        "equivalent_not_awarded",
    )


async def test_rules_check_names_the_stored_rule_until_it_is_retired(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    env = {**registry_env(settings.database_url), "LC_ALL": "C"}
    code, out, err = await run_registry("rules", "check", env=env)
    assert code == 0, (out, err)  # the seed rules pass every check
    assert " 0 fail the checks a new rule gets" in out, out
    stored = await _stored_as_before_the_check(app)

    code, out, err = await run_registry("rules", "check", env=env)

    assert code == 1, (out, err)
    assert f"rule {stored} (BJ to TJ, title): equivalent.level: ENG-AI does not award clerk" in out, out
    assert f"rule {stored}: a case at a level ENG-AI does not award is answered not recognised" in out, out
    assert " 1 fail the checks a new rule gets" in out, out
    code, out, err = await run_registry("rules", "check", env={**env, "LC_ALL": "zh_CN.UTF-8"})
    assert code == 1, (out, err)
    assert f"规则 {stored}（BJ 至 TJ，" in out, out
    assert "ENG-AI 不颁发" in out, out

    admin = await admin_token(app, client)
    retired = await client.post(
        f"/v1/recognition/rules/{stored}/retire", json={"reason": "revised by hand"}, headers=bearer(admin)
    )
    assert retired.status_code == 200, retired.text
    code, out, err = await run_registry("rules", "check", env=env)
    assert code == 0, (out, err)
    assert " 0 fail the checks a new rule gets" in out, out
