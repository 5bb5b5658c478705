"""A holder has at most one live certificate of a body for an entry and level: a second is refused, naming the first,
whichever way it is asked for; a correction replaces the original and is not a second."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.certificates import numbering
from registry.db import transaction
from tests.checks import assert_problem, leaves_no_trace
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_issuer,
    issued_certificate,
    issuer_token,
    ready_issuer,
    resident_id,
)


def _holder(name: str = "周九") -> dict[str, str]:
    return {"name": name, "id_type": "resident_id", "id_number": resident_id(birth="19850909")}


async def test_a_second_single_issuance_for_the_same_holder_entry_and_level_is_refused_naming_the_first(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    holder = _holder()
    first = await issued_certificate(client, issuer, holder=holder)
    again = await leaves_no_trace(
        app, client.post("/v1/certificates", json=certificate_body(holder=holder), headers=bearer(issuer))
    )
    problem = assert_problem(
        again, 409, slug="duplicate-certificate", field="holder.id_number", secret=holder["id_number"]
    )
    assert numbering.format_number(first["number"]) in problem["errors"][0]["message"]
    # Another evaluation batch or another name spelling does not make it another certificate.
    renamed = {**holder, "name": "周 九"}
    other_round = certificate_body(holder=renamed, evaluation_batch="2026-BJ-AI-02")
    assert_problem(await client.post("/v1/certificates", json=other_round, headers=bearer(issuer)), 409)


async def test_a_suspended_certificate_still_counts_a_revoked_one_does_not(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    holder = _holder()
    first = await issued_certificate(client, issuer, holder=holder)
    path = f"/v1/certificates/{first['number']}"
    assert (await client.post(f"{path}/suspend", json={"reason": "复核"}, headers=bearer(issuer))).status_code == 200
    assert_problem(
        await client.post("/v1/certificates", json=certificate_body(holder=holder), headers=bearer(issuer)), 409
    )
    assert (await client.post(f"{path}/revoke", json={"reason": "撤销"}, headers=bearer(issuer))).status_code == 200
    reissued = await issued_certificate(client, issuer, holder=holder)
    assert reissued["number"] != first["number"]


async def test_another_level_or_another_body_is_not_a_duplicate(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    await create_issuer(client, admin, code="BJ-SECOND-BODY")
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    second_body = await issuer_token(app, client, "BJ-SECOND-BODY")
    holder = _holder()
    await issued_certificate(client, issuer, holder=holder, level="intermediate")
    await issued_certificate(client, issuer, holder=holder, level="associate_senior")
    # Each body sees only its own certificates: the second body may not learn what the first awarded.
    await issued_certificate(client, second_body, holder=holder, level="intermediate")


async def test_a_batch_refuses_the_same_duplicate_with_the_single_requests_words(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    holder = _holder()
    first = await issued_certificate(client, issuer, holder=holder)
    single = await client.post("/v1/certificates", json=certificate_body(holder=holder), headers=bearer(issuer))
    rows = [certificate_body(holder=_holder("吴十")), certificate_body(holder=holder)]
    batch = await client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "dup"}
    )
    errors = assert_problem(batch, 422, slug="batch-rejected")["errors"]
    assert errors == [{"row": 2, "field": "holder.id_number", "message": single.json()["errors"][0]["message"]}]
    assert numbering.format_number(first["number"]) in errors[0]["message"]


async def test_a_correction_is_not_a_duplicate_of_what_it_corrects(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    holder = _holder()
    first = await issued_certificate(client, issuer, holder=holder, level="senior")
    corrected = await client.post(
        f"/v1/certificates/{first['number']}/correct",
        json={"reason": "姓名有误", "holder_name": "周玖"},
        headers=bearer(issuer),
    )
    assert corrected.status_code == 201, corrected.text
    successor: dict[str, Any] = corrected.json()
    assert (successor["level"], successor["holder"]["name"], successor["supersedes"]) == (
        "senior",
        "周玖",
        first["number"],
    )
    assert successor["holder"]["id_masked"] == first["holder"]["id_masked"]


async def test_a_correction_onto_a_level_the_holder_already_holds_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    holder = _holder()
    senior = await issued_certificate(client, issuer, holder=holder, level="senior")
    intermediate = await issued_certificate(client, issuer, holder=holder, level="intermediate")
    clash = await leaves_no_trace(
        app,
        client.post(
            f"/v1/certificates/{intermediate['number']}/correct",
            json={"reason": "等级有误", "level": "senior"},
            headers=bearer(issuer),
        ),
    )
    problem = assert_problem(clash, 409, field="level")  # the field the correction changes
    assert numbering.format_number(senior["number"]) in problem["errors"][0]["message"]


async def test_a_correction_cannot_remove_a_required_field(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    certificate = await issued_certificate(client, issuer)
    for field in ("awarded_on", "level", "catalogue_code", "holder_name"):
        response = await leaves_no_trace(
            app,
            client.post(
                f"/v1/certificates/{certificate['number']}/correct",
                json={"reason": "x", field: None},
                headers=bearer(issuer),
            ),
        )
        assert_problem(response, 422, field=field, message="cannot be removed")


async def test_twelve_requests_at_once_for_the_same_award_issue_exactly_one(
    app: FastAPI, client: httpx.AsyncClient, backend: str
) -> None:
    issuer = await ready_issuer(app, client)
    holder = _holder()
    body = certificate_body(holder=holder)
    answers = await asyncio.gather(
        *(
            client.post("/v1/certificates", json=body, headers={**bearer(issuer), "Idempotency-Key": f"single-{i}"})
            for i in range(6)
        ),
        *(
            client.post(
                "/v1/certificate-batches",
                json={"certificates": [certificate_body(holder=_holder(f"旁{i}")), body]},
                headers={**bearer(issuer), "Idempotency-Key": f"batch-{i}"},
            )
            for i in range(6)
        ),
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes.count(201) == 1, codes  # one request won, single or batch; every other one was refused
    assert set(codes) <= {201, 409, 422}, codes
    async with transaction(app.state.sessions) as session:
        live = await session.execute(text("SELECT count(*) FROM certificates WHERE status = 'active'"))
        count = live.scalar_one()
    assert count in (1, 2), count  # the winner's certificate, and its neighbour row if the winner was a batch


async def test_a_retried_correction_with_its_idempotency_key_gets_the_first_successor_again(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    original = await issued_certificate(client, issuer)
    path = f"/v1/certificates/{original['number']}/correct"
    body = {"reason": "等级有误", "level": "senior"}
    headers = {**bearer(issuer), "Idempotency-Key": "fix-level-1"}
    first = await client.post(path, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(path, json=body, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = await client.post(path, json={**body, "level": "intermediate"}, headers=headers)
    assert_problem(other, 422, slug="idempotency-key-reused")
    async with transaction(app.state.sessions) as session:
        successors = await session.execute(
            text("SELECT count(*) FROM certificates WHERE supersedes = :n"), {"n": original["number"]}
        )
        assert successors.scalar_one() == 1
    without_key = await client.post(path, json=body, headers=bearer(issuer))
    assert_problem(without_key, 409)  # the original is superseded: a second correction is not a retry


async def _advisory_locks_held(app: FastAPI) -> int:
    async with transaction(app.state.sessions) as session:
        held = await session.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"))
        return int(held.scalar_one())


async def test_the_same_key_sent_while_the_first_request_is_still_running_is_409_and_issues_once(
    app: FastAPI, client: httpx.AsyncClient, backend: str
) -> None:
    """A client that times out and retries at once, with the same Idempotency-Key, while its first request is still
    being processed: the retry is told 409 (retry shortly), the first one finishes with 201, one certificate exists,
    and a retry after that gets the first answer again."""
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers: a second request waits for the first instead of overlapping it")
    issuer = await ready_issuer(app, client)
    body = certificate_body(holder=_holder("吴十二"))
    headers = {**bearer(issuer), "Idempotency-Key": "retry-while-running"}
    async with app.state.engine.begin() as blocker:
        # Hold the first request inside its transaction: it takes the key's lock, then waits on the certificates table.
        await blocker.execute(text("LOCK TABLE certificates IN ACCESS EXCLUSIVE MODE"))
        first = asyncio.create_task(client.post("/v1/certificates", json=body, headers=headers))
        for _attempt in range(200):
            if await _advisory_locks_held(app):
                break
            await asyncio.sleep(0.025)
        else:
            pytest.fail("the first request never took its Idempotency-Key lock")
        try:  # bounded: a retry that waited for the first request instead of being refused would wait forever here
            second = await asyncio.wait_for(client.post("/v1/certificates", json=body, headers=headers), timeout=30)
        except TimeoutError:
            first.cancel()
            pytest.fail("the retry waited for the first request instead of being told 409")
        assert not first.done()
    assert_problem(second, 409, slug="idempotency-key-in-flight")
    assert second.headers.get("retry-after") is not None or "retry" in second.json()["detail"]
    answered = await asyncio.wait_for(first, timeout=30)
    assert answered.status_code == 201, answered.text

    again = await client.post("/v1/certificates", json=body, headers=headers)
    assert again.status_code == 201
    assert again.json()["number"] == answered.json()["number"]
    async with transaction(app.state.sessions) as session:
        issued = await session.execute(
            text("SELECT count(*) FROM certificates WHERE evaluation_batch = :batch"),
            {"batch": body["evaluation_batch"]},
        )
    assert issued.scalar_one() == 1
