"""A peer's answer is passed on (and, for recognition, signed by this node) only when it holds together: a "valid" runs
to today at least, and a decision is one this node's own judge could give. The honest answers next to each lie are
still passed on as they are."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from registry import clock
from registry.auth.scopes import Role
from registry.config import Settings
from tests.factories import bearer, create_client, token_for
from tests.integration.federation_support import HOLDER, Tianjin, fake_verification, tianjin_with_fake_beijing
from tests.integration.test_partner_attack_peers import BRIDGE, _answers


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    async with tianjin_with_fake_beijing(settings) as node:
        yield node


async def _ask(tianjin: Tianjin) -> dict[str, Any]:
    partner = bearer(await token_for(tianjin.http, *await create_client(tianjin.app, role=Role.partner, region="TJ")))
    params = {"holder_name": HOLDER, "purpose": "hiring"}
    response = await tianjin.http.get(f"/v1/recognition/{tianjin.peer.number}", params=params, headers=partner)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


# --- D3: a "valid" runs to today -------------------------------------------------------------------------------------


async def test_a_peer_valid_on_the_certificates_last_day_is_passed_on_as_valid(tianjin: Tianjin) -> None:
    today = clock.today().isoformat()
    tianjin.peer.recognition_answer = _answers(certificate={"valid_until": today})

    answer = await _ask(tianjin)

    assert (answer["result"], answer["decision"], answer["certificate"]["valid_until"]) == (
        "valid",
        "recognised",
        today,
    )


async def test_a_peer_verification_valid_on_the_last_day_is_valid(tianjin: Tianjin) -> None:
    today = clock.today().isoformat()

    def valid_today(question: dict[str, Any]) -> Any:
        body = {**fake_verification(question["number"]), "result": "valid", "reason": None}
        body["certificate"] = {**body["certificate"], "valid_until": today}
        return {"status": 200, "body": body}

    tianjin.peer.verify_answer = valid_today

    response = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": HOLDER})

    assert response.status_code == 200, response.text
    assert (response.json()["result"], response.json()["answered_by"]) == ("valid", "BJ")


# --- D4: a decision that holds together ------------------------------------------------------------------------------

HONEST = {
    "recognised by its rule": {},
    "conditional by its rule": {"decision": "conditional", "conditions": {"zh": "须复核", "en": "to be reviewed"}},
    "not recognised by its rule": {"decision": "not_recognised"},
    "not recognised by no rule": {
        "decision": "not_recognised",
        "rule_id": None,
        "basis": [],
        "decision_reason": "no_rule",
    },
    "recognised, opening a bridge": {"bridges": [BRIDGE]},
}


@pytest.mark.parametrize("change", HONEST.values(), ids=HONEST.keys())
async def test_a_peer_decision_that_holds_together_is_passed_on_and_signed(
    tianjin: Tianjin, change: dict[str, Any]
) -> None:
    tianjin.peer.recognition_answer = _answers(**change)

    answer = await _ask(tianjin)

    expected = {"rule_id": 1, "decision": "recognised", "decision_reason": None, "bridges": [], **change}
    assert {key: answer[key] for key in expected} == expected
    assert (answer["result"], answer["answered_by"]) == ("valid", "BJ")
    assert answer["signature"]


CONTRADICTIONS = {
    "conditional with no English conditions": {"decision": "conditional", "conditions": {"zh": "须复核", "en": ""}},
    "recognised by a rule with no basis": {"basis": []},
    "not recognised by no rule, saying no why": {"decision": "not_recognised", "rule_id": None, "basis": []},
    "no rule, yet an equivalent": {
        "decision": "not_recognised",
        "rule_id": None,
        "basis": [],
        "decision_reason": "no_rule",
        "equivalent": BRIDGE["equivalent"],
    },
    "revoked, yet judged by a rule": {
        "result": "revoked",
        "reason": "fraud",
        "decision": "not_recognised",
        "decision_reason": "revoked",
    },
}


@pytest.mark.parametrize("change", CONTRADICTIONS.values(), ids=CONTRADICTIONS.keys())
async def test_a_peer_decision_that_does_not_hold_together_is_not_trusted(
    tianjin: Tianjin, change: dict[str, Any]
) -> None:
    tianjin.peer.recognition_answer = _answers(**change)

    answer = await _ask(tianjin)

    assert (answer["result"], answer["decision"], answer["decision_reason"]) == (
        "unknown",
        "not_recognised",
        "peer_answer_not_trusted",
    ), answer
    assert (answer["rule_id"], answer["bridges"], answer["certificate"]) == (None, [], None)
