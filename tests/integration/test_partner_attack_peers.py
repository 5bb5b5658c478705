"""A Tianjin agency asking through the Tianjin node about Beijing certificates, looking for wrong answers that come
from the federation between regional nodes: a Beijing answer that contradicts itself, or has gone stale, is signed and
passed on by the Tianjin node as its own.

The Tianjin node runs in-process with a fake Beijing peer (``federation_support.FakeBeijing``) that signs its
statements correctly; what it says is what each test makes it say.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from datetime import time as day_time
from typing import Any

import pytest

from registry import clock
from registry.auth.scopes import Role
from registry.config import Settings
from tests.conftest import RegistryClock
from tests.factories import (
    bearer,
    create_client,
    token_for,
)
from tests.integration.federation_support import (
    HOLDER,
    Tianjin,
    fake_recognition,
    fake_verification,
    tianjin_with_fake_beijing,
)

Answer = Callable[[dict[str, Any]], Any]


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    async with tianjin_with_fake_beijing(settings) as node:
        yield node


async def _partner(tianjin: Tianjin) -> dict[str, str]:
    return bearer(await token_for(tianjin.http, *await create_client(tianjin.app, role=Role.partner, region="TJ")))


def _recognised(number: str, to_region: str, *, certificate: dict[str, Any] | None = None, **change: Any) -> Any:
    """Beijing's judgement that a valid certificate is recognised in ``to_region`` under its rule 1, with ``change``."""
    honest = fake_recognition(number, to_region)
    answer = {
        **honest,
        "result": "valid",
        "reason": None,
        "decision": "recognised",
        "decision_reason": None,
        "rule_id": 1,
        "basis": [{"code": "JJJ-TITLE-MR", "title": "《京津冀专业技术人才职称资格互认协议》"}],
        "certificate": {**honest["certificate"], **(certificate or {})},
    }
    return {**answer, **change}


def _answers(**change: Any) -> Answer:
    return lambda question: [
        {"index": index, "status": 200, "answer": _recognised(item["number"], question["to_region"], **change)}
        for index, item in enumerate(question["items"])
    ]


async def _ask(tianjin: Tianjin, partner: dict[str, str]) -> dict[str, Any]:
    params = {"holder_name": HOLDER, "purpose": "hiring"}
    response = await tianjin.http.get(f"/v1/recognition/{tianjin.peer.number}", params=params, headers=partner)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


# --- a "valid" for a certificate whose validity has ended -------------------------------------------------------------


async def test_a_peer_saying_valid_of_a_certificate_that_expired_yesterday_is_not_recognised(tianjin: Tianjin) -> None:
    yesterday = (clock.today() - timedelta(days=1)).isoformat()
    tianjin.peer.recognition_answer = _answers(certificate={"valid_until": yesterday})
    partner = await _partner(tianjin)

    answer = await _ask(tianjin, partner)

    # The certificate's own dates, in the answer, say it ended yesterday (Beijing time): "valid" contradicts them.
    assert answer["certificate"] is None or answer["certificate"]["valid_until"] == yesterday
    assert answer["result"] != "valid", answer
    assert answer["decision"] == "not_recognised", answer


async def test_a_peer_verification_saying_valid_of_a_certificate_that_expired_yesterday_is_not_valid(
    tianjin: Tianjin,
) -> None:
    yesterday = (clock.today() - timedelta(days=1)).isoformat()

    def expired_but_valid(question: dict[str, Any]) -> Any:
        body = {**fake_verification(question["number"]), "result": "valid", "reason": None}
        body["certificate"] = {**body["certificate"], "valid_until": yesterday}
        return {"status": 200, "body": body}

    tianjin.peer.verify_answer = expired_but_valid

    response = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": HOLDER})

    assert response.status_code == 200, response.text
    assert response.json()["result"] != "valid", response.json()


async def test_a_cached_peer_answer_is_not_valid_after_the_certificate_expires_at_beijing_midnight(
    settings: Settings, registry_clock: RegistryClock
) -> None:
    last_day = clock.today()  # the certificate's valid_until: valid all of that Beijing day, expired after it
    async with tianjin_with_fake_beijing(settings, peer_cache_seconds=60) as node:
        partner = await _partner(node)  # a token made on the real clock
        node.peer.recognition_answer = _answers(certificate={"valid_until": last_day.isoformat()})
        registry_clock.set_now(datetime.combine(last_day, day_time(23, 59, 50), clock.CHINA_STANDARD_TIME))
        before = await _ask(node, partner)
        next_day = last_day + timedelta(days=1)
        registry_clock.set_now(datetime.combine(next_day, day_time(0, 0, 10), clock.CHINA_STANDARD_TIME))
        after = await _ask(node, partner)

    assert (before["result"], before["decision"]) == ("valid", "recognised")  # an honest answer, on its last day
    assert len(node.peer.tokens) == 1, "the second answer came from the answer cache, as it may"
    assert after["result"] != "valid", f"20 seconds after Beijing midnight the cache still says: {after['result']}"
    assert after["decision"] == "not_recognised"


# --- a decision that contradicts itself ------------------------------------------------------------------------------

BRIDGE = {
    "rule_id": 148,
    "equivalent": {
        "cert_type": "skill",
        "series_code": None,
        "catalogue_code": None,
        "name_zh": None,
        "name_en": None,
        "level": "level_1",
    },
    "conditions": {
        "zh": "可作为参加天津高级技师评价的资格条件。",
        "en": "Eligible for the level 1 evaluation in Tianjin.",
    },
    "basis": {"code": "RSBF-2020-96", "title": "《关于进一步加强高技能人才与专业技术人才职业发展贯通的实施意见》"},
}
SELF_CONTRADICTIONS = {
    "conditional without conditions": {"decision": "conditional", "conditions": None},
    "recognised by no rule": {"rule_id": None, "basis": [], "decision_reason": "no_rule"},
    "conditional by no rule": {
        "decision": "conditional",
        "rule_id": None,
        "basis": [],
        "conditions": {"zh": "须复核", "en": "to be reviewed"},
    },
    "revoked, yet opening a bridge": {
        "result": "revoked",
        "reason": "fraud",
        "decision": "not_recognised",
        "decision_reason": "revoked",
        "rule_id": None,
        "basis": [],
        "bridges": [BRIDGE],
    },
}


@pytest.mark.parametrize("change", SELF_CONTRADICTIONS.values(), ids=SELF_CONTRADICTIONS.keys())
async def test_a_peer_decision_that_contradicts_itself_is_not_signed_by_this_node(
    tianjin: Tianjin, change: dict[str, Any]
) -> None:
    tianjin.peer.recognition_answer = _answers(**change)
    partner = await _partner(tianjin)

    answer = await _ask(tianjin, partner)

    # This node would never say so itself (a recognised or conditional decision is a rule's, with its basis; a
    # conditional one states its conditions), and it signs what it passes on as its own.
    assert (answer["result"], answer["decision"], answer["decision_reason"]) == (
        "unknown",
        "not_recognised",
        "peer_answer_not_trusted",
    ), answer
