"""Revising a recognition rule with a later effective date: the old version decides until the new one begins, a
revision not yet begun can be withdrawn or moved, and one that has begun cannot bring its predecessor back."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.clock import CHINA_STANDARD_TIME
from registry.recognition import rules
from tests.checks import assert_problem
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer
from tests.integration.test_recognition import _ask, _beijing_certificates, partner_token, rule_body

pytestmark = pytest.mark.usefixtures("frozen")


@pytest.fixture
def frozen(registry_clock: RegistryClock) -> None:
    registry_clock.freeze()


class Desk:
    """An admin keeping the BJ -> TJ rule for ENG-EAI (a seed rule of its own), and a Tianjin agency asking about a
    Beijing ENG-EAI certificate. Tokens are fetched per call: the tests move the clock by days."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, clock: RegistryClock, cert: dict[str, Any]) -> None:
        self.app, self.client, self.clock, self.cert = app, client, clock, cert

    async def admin(self) -> dict[str, str]:
        return bearer(await admin_token(self.app, self.client))

    async def decision(self) -> tuple[str, str | None, int | None]:
        number, name = self.cert["number"], self.cert["holder"]["name"]
        partner = bearer(await partner_token(self.app, self.client, "TJ"))
        response = await self.client.get(f"/v1/recognition/{number}", params=_ask(number, name), headers=partner)
        assert response.status_code == 200, response.text
        answer = response.json()
        return answer["decision"], answer.get("decision_reason"), answer.get("rule_id")

    async def rule(self, rule_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/v1/recognition/rules/{rule_id}", headers=await self.admin())
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def seed(self) -> dict[str, Any]:
        listed = await self.client.get("/v1/recognition/rules", params={"limit": 500}, headers=await self.admin())
        rules = [r for r in listed.json()["data"] if r["to_region"] == "TJ" and r["catalogue_codes"] == ["ENG-EAI"]]
        (seed,) = [r for r in rules if not r["levels"]]
        return dict(seed)

    async def revise(self, rule_id: int, in_days: int, **overrides: Any) -> httpx.Response:
        starts = self.clock.today() + timedelta(days=in_days)
        body = rule_body(catalogue_codes=["ENG-EAI"], decision="recognised", equivalent=None, conditions_zh=None)
        body.update(conditions_en=None, effective_from=starts.isoformat(), **overrides)
        return await self.client.post(f"/v1/recognition/rules/{rule_id}/revise", json=body, headers=await self.admin())

    async def audited(self, action: str) -> dict[str, dict[str, Any]]:
        """The audit log's records of ``action`` (one per rule), their details by rule id."""
        params: dict[str, str | int] = {"action": action, "limit": 500}
        response = await self.client.get("/v1/audit", params=params, headers=await self.admin())
        assert response.status_code == 200, response.text
        records = response.json()["data"]
        found = {record["object_id"]: record["details"] for record in records}
        assert len(found) == len(records), records  # one record per rule
        return found

    async def retirements(self) -> dict[str, dict[str, Any]]:
        return await self.audited("recognition.rule_retired")

    async def retire(self, rule_id: int) -> httpx.Response:
        body = {"reason": "撤回修订"}
        return await self.client.post(f"/v1/recognition/rules/{rule_id}/retire", json=body, headers=await self.admin())


@pytest.fixture
async def desk(app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock) -> Desk:
    made = await _beijing_certificates(app, client)
    return Desk(app, client, registry_clock, made["eai"])


async def test_the_old_version_decides_until_a_revision_dated_ahead_begins(desk: Desk) -> None:
    seed = await desk.seed()
    assert await desk.decision() == ("conditional", None, seed["id"])
    revised = await desk.revise(seed["id"], 10)
    assert revised.status_code == 201, revised.text
    new = revised.json()
    assert (new["status"], new["supersedes"]) == ("scheduled", seed["id"])
    old = await desk.rule(seed["id"])
    assert (old["status"], old["superseded_by"], old["retired_at"]) == ("in_force", new["id"], None)
    assert old["effective_until"] == seed["effective_until"]  # the old version's own record is not edited
    assert await desk.decision() == ("conditional", None, seed["id"])  # not no_rule in between
    assert_problem(await desk.revise(seed["id"], 5), 409, slug="illegal-transition")  # revise the pending one
    revision = (await desk.audited("recognition.rule_revised"))[str(new["id"])]
    assert revision["replaces_when_it_begins"] == [seed["id"]]

    desk.clock.advance(timedelta(days=9))
    assert await desk.decision() == ("conditional", None, seed["id"])  # its last day
    desk.clock.advance(timedelta(days=1))
    assert await desk.decision() == ("recognised", None, new["id"])
    assert (await desk.rule(seed["id"]))["status"] == "superseded"
    assert (await desk.rule(new["id"]))["status"] == "in_force"

    # The next write for these regions files the old version as retired, saying by which rule and from when.
    assert_problem(await desk.revise(seed["id"], 1), 409, slug="illegal-transition")
    assert_problem(await desk.retire(seed["id"]), 409, slug="illegal-transition")
    other = rule_body(catalogue_codes=["ENG-EAI"], levels=["senior"], decision="not_recognised", equivalent=None)
    created = await desk.client.post("/v1/recognition/rules", json=other, headers=await desk.admin())
    assert created.status_code == 201, created.text
    old = await desk.rule(seed["id"])
    assert old["status"] == "retired"
    assert old["retired_reason"] == f"revised: superseded by rule {new['id']} from {new['effective_from']}"
    assert old["retired_at"] == f"{desk.clock.today() - timedelta(days=1)}T16:00:00Z"  # its successor's first day began
    filed = (await desk.retirements())[str(seed["id"])]  # filed during another's write: says who and when
    assert filed["reason"] == old["retired_reason"]
    assert (filed["retired_by"], filed["retired_at"]) == (new["created_by"], f"{new['effective_from']}T00:00:00+08:00")
    assert await desk.decision() == ("recognised", None, new["id"])


async def test_a_revision_not_yet_begun_can_be_withdrawn_and_the_old_version_decides_on(desk: Desk) -> None:
    seed = await desk.seed()
    pending = (await desk.revise(seed["id"], 10)).json()
    withdrawn = await desk.retire(pending["id"])
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "retired"
    assert (await desk.retirements())[str(pending["id"])]["decide_on"] == [seed["id"]]
    desk.clock.advance(timedelta(days=30))
    assert await desk.decision() == ("conditional", None, seed["id"])
    old = await desk.rule(seed["id"])
    assert (old["status"], old["superseded_by"]) == ("in_force", None)  # it points at no withdrawn revision
    again = await desk.revise(seed["id"], 3)  # and it can be revised anew
    assert again.status_code == 201, again.text
    assert (await desk.rule(seed["id"]))["superseded_by"] == again.json()["id"]
    desk.clock.advance(timedelta(days=3))
    assert await desk.decision() == ("recognised", None, again.json()["id"])


@pytest.mark.parametrize("moved_to", [4, 20], ids=["brought-forward", "postponed"])
async def test_a_revision_not_yet_begun_can_be_moved_and_the_old_version_waits_for_the_move(
    desk: Desk, moved_to: int
) -> None:
    seed = await desk.seed()
    pending = (await desk.revise(seed["id"], 10)).json()
    moved = await desk.revise(pending["id"], moved_to, decision="not_recognised")  # no tie with the old version
    assert moved.status_code == 201, moved.text
    assert (await desk.rule(pending["id"]))["status"] == "retired"  # it never took effect: replaced at once
    assert str(pending["id"]) in await desk.retirements()
    assert (await desk.rule(seed["id"]))["superseded_by"] == moved.json()["id"]
    desk.clock.advance(timedelta(days=moved_to - 1))
    assert await desk.decision() == ("conditional", None, seed["id"])
    desk.clock.advance(timedelta(days=1))
    assert await desk.decision() == ("not_recognised", None, moved.json()["id"])


async def test_withdrawing_a_revision_that_has_begun_brings_nothing_back(desk: Desk) -> None:
    seed = await desk.seed()
    begun = (await desk.revise(seed["id"], 2)).json()
    desk.clock.advance(timedelta(days=2))
    retired = await desk.retire(begun["id"])
    assert retired.status_code == 200, retired.text
    assert (await desk.rule(seed["id"]))["status"] == "retired"
    _, _, rule_id = await desk.decision()  # the seed's series-wide rule decides now, not the entry rule's versions
    assert rule_id not in {seed["id"], begun["id"]}


async def test_a_revision_in_force_at_once_retires_the_old_version_at_once(desk: Desk) -> None:
    seed = await desk.seed()
    now = await desk.revise(seed["id"], 0)
    assert now.status_code == 201, now.text
    old = await desk.rule(seed["id"])
    assert (old["status"], old["superseded_by"]) == ("retired", now.json()["id"])
    assert (await desk.retirements())[str(seed["id"])]["reason"] == f"revised: superseded by rule {now.json()['id']}"
    assert await desk.decision() == ("recognised", None, now.json()["id"])


async def test_a_pending_revision_moved_into_the_past_ends_the_old_version_today_not_back_then(desk: Desk) -> None:
    seed = await desk.seed()
    pending = (await desk.revise(seed["id"], 10)).json()
    moved = await desk.revise(pending["id"], -30)
    assert moved.status_code == 201, moved.text
    old = await desk.rule(seed["id"])  # it decided every day up to this one
    made = datetime.fromisoformat(moved.json()["created_at"]).astimezone(CHINA_STANDARD_TIME).date()
    assert old["retired_reason"] == f"revised: superseded by rule {moved.json()['id']} from {made}"
    assert old["retired_at"] == moved.json()["created_at"]
    # Nothing waits for the moved revision: the version it replaces was filed as retired in the same request.
    assert "replaces_when_it_begins" not in (await desk.audited("recognition.rule_revised"))[str(moved.json()["id"])]
    assert await desk.decision() == ("recognised", None, moved.json()["id"])


async def test_a_version_retired_by_hand_names_no_successor_and_its_pending_revision_begins_on_its_day(
    desk: Desk,
) -> None:
    seed = await desk.seed()
    pending = (await desk.revise(seed["id"], 5)).json()
    assert (await desk.retire(seed["id"])).status_code == 200
    old = await desk.rule(seed["id"])
    assert (old["status"], old["superseded_by"]) == ("retired", None)  # nothing took over from it
    _, _, rule_id = await desk.decision()
    assert rule_id not in {seed["id"], pending["id"]}  # the series-wide seed rule, until the revision begins
    desk.clock.advance(timedelta(days=5))
    assert await desk.decision() == ("recognised", None, pending["id"])


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("from_region", {"from_region": "HE"}),
        ("to_region", {"to_region": "HE"}),
        ("kind", {"kind": "bridge", "equivalent": {"cert_type": "skill"}}),
        ("cert_type", {"cert_type": "skill"}),
    ],
)
async def test_a_revision_keeps_the_question_it_answers_and_a_refused_one_writes_nothing(
    desk: Desk, field: str, change: dict[str, Any]
) -> None:
    seed = await desk.seed()
    refused = await desk.revise(seed["id"], 10, **change)
    assert_problem(refused, 422)
    assert field in {error["field"] for error in refused.json()["errors"]}
    assert await desk.rule(seed["id"]) == seed
    listed = await desk.client.get(
        "/v1/recognition/rules", params={"include_retired": "true", "limit": 1}, headers=await desk.admin()
    )
    assert listed.json()["count"] == 172


async def test_rule_writers_at_once_queue_instead_of_deadlocking(desk: Desk, backend: str) -> None:
    """A retirement locks its rule's row; a creation for the same regions retires versions that gave way. Both take
    the rule writers' lock before any row, so neither waits on the other's row while holding what it needs. Here the
    lock is held from outside while a creation and then a retirement queue for it, and let go."""
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers: nothing overlaps")
    seed = await desk.seed()
    begun = (await desk.revise(seed["id"], 1)).json()
    desk.clock.advance(timedelta(days=1))  # the seed version gave way; no write has filed it yet
    admin = await desk.admin()
    other = rule_body(catalogue_codes=["ENG-EAI"], levels=["senior"], decision="not_recognised", equivalent=None)
    waiting = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    async with desk.app.state.engine.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": rules.WRITERS_LOCK})
        await holder.commit()

        async def queued(count: int) -> None:
            for _attempt in range(500):
                if (await holder.execute(waiting)).scalar_one() == count:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"{count} writer(s) never queued for the lock")

        create = asyncio.create_task(desk.client.post("/v1/recognition/rules", json=other, headers=admin))
        await queued(1)
        body = {"reason": "x"}
        retire = asyncio.create_task(
            desk.client.post(f"/v1/recognition/rules/{seed['id']}/retire", json=body, headers=admin)
        )
        await queued(2)
        await holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": rules.WRITERS_LOCK})
        await holder.commit()
        created, retired = await create, await retire
    assert created.status_code == 201, created.text
    assert_problem(retired, 409, slug="illegal-transition")  # the creation filed the seed version as superseded
    assert (await desk.rule(seed["id"]))["retired_reason"].startswith(f"revised: superseded by rule {begun['id']}")


async def test_two_revisions_of_one_rule_at_once_leave_one(desk: Desk) -> None:
    seed = await desk.seed()
    answers = await asyncio.gather(*(desk.revise(seed["id"], days) for days in (5, 6, 7)))
    assert sorted(answer.status_code for answer in answers) == [201, 409, 409], [a.text for a in answers]
    (winner,) = [answer.json() for answer in answers if answer.status_code == 201]
    assert (await desk.rule(seed["id"]))["superseded_by"] == winner["id"]
    desk.clock.advance(timedelta(days=7))
    assert await desk.decision() == ("recognised", None, winner["id"])
