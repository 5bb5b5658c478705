"""The rules at their exact edges, as the people they protect meet them: the first and last day of a body's filing
(备案), a certificate's last valid day and the day after, all on the Beijing calendar.

Dates are relative to the registry's clock (``registry_clock``), never to the day the suite runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from registry import clock
from registry.db import transaction
from tests.checks import assert_problem
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer, certificate_body, create_issuer, issuer_token, resident_id


async def _body_filed(app: FastAPI, client: httpx.AsyncClient, *, first: date, last: date | None) -> str:
    """An evaluation body whose one filing runs from ``first`` to ``last`` (inclusive); its issuer token."""
    admin = await admin_token(app, client)
    await create_issuer(
        client, admin, valid_from=first.isoformat(), valid_until=last.isoformat() if last is not None else None
    )
    return await issuer_token(app, client, "BJ-AI-COMMITTEE")


async def _issue(client: httpx.AsyncClient, token: str, **overrides: object) -> httpx.Response:
    holder = {"name": "郑十三", "id_type": "resident_id", "id_number": resident_id(birth="19800101")}
    return await client.post(
        "/v1/certificates", json=certificate_body(holder=holder, **overrides), headers=bearer(token)
    )


async def _scan(client: httpx.AsyncClient, issued: httpx.Response) -> dict[str, object]:
    answer = await client.get(f"/v1/verify/{issued.json()['qr_token']}")
    assert answer.status_code == 200
    body: dict[str, object] = answer.json()
    return body


async def test_a_body_may_award_on_the_first_day_of_its_filing_and_an_employer_sees_it_valid(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    registry_clock.freeze()  # the filing ends today: Beijing's midnight must not pass between here and the award
    today = registry_clock.today()
    first = today - timedelta(days=10)
    token = await _body_filed(app, client, first=first, last=today)

    on_first_day = await _issue(client, token, awarded_on=first.isoformat())
    assert on_first_day.status_code == 201, on_first_day.text
    assert (await _scan(client, on_first_day))["result"] == "valid"

    the_day_before = await _issue(client, token, awarded_on=(first - timedelta(days=1)).isoformat())
    assert_problem(the_day_before, 403, field="awarded_on")


async def test_a_body_may_award_on_the_last_day_of_its_filing_and_it_stays_valid_after_the_filing_ends(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    registry_clock.freeze()  # the filing ends today: Beijing's midnight must not pass between here and the award
    today = registry_clock.today()
    token = await _body_filed(app, client, first=today - timedelta(days=30), last=today)

    on_last_day = await _issue(client, token, awarded_on=today.isoformat())
    assert on_last_day.status_code == 201, on_last_day.text
    assert (await _scan(client, on_last_day))["result"] == "valid"

    # The filing has ended; the award was made inside it, so employers keep seeing it valid.
    registry_clock.set_today(today + timedelta(days=1))
    assert (await _scan(client, on_last_day))["result"] == "valid"


async def test_an_employer_scanning_a_certificate_its_body_had_not_filed_for_on_the_award_date_sees_unknown(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    """The filing on record is what counts: when the bureau's record of a body's filing is corrected to start after
    an award (a filing back-dated by mistake), every scan of that certificate says unknown, never valid."""
    today = registry_clock.today()
    token = await _body_filed(app, client, first=today - timedelta(days=30), last=None)
    awarded = today - timedelta(days=5)
    issued = await _issue(client, token, awarded_on=awarded.isoformat())
    assert issued.status_code == 201, issued.text
    assert (await _scan(client, issued))["result"] == "valid"

    async with transaction(app.state.sessions) as session:
        await session.execute(
            text("UPDATE issuer_filed_scopes SET valid_from = :day"), {"day": awarded + timedelta(days=1)}
        )
    # Each process keeps a body's filing for SCOPE_SECONDS (registry/verification/caches.py); let that pass.
    app.state.verifier.caches.scopes.clear()

    scanned = await _scan(client, issued)
    assert scanned["result"] == "unknown"
    assert scanned["reason"] == "issuer_outside_filed_scope"
    by_number = await client.post("/v1/verify", json={"number": issued.json()["number"], "holder_name": "郑十三"})
    assert by_number.json()["result"] == "unknown"


async def test_a_certificate_is_valid_all_of_its_last_day_in_beijing_and_expired_from_the_next(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    today = registry_clock.today()
    token = await _body_filed(app, client, first=today - timedelta(days=400), last=None)
    issued = await _issue(
        client, token, awarded_on=(today - timedelta(days=100)).isoformat(), valid_until=today.isoformat()
    )
    assert issued.status_code == 201, issued.text

    last_day = datetime.combine(today, datetime.min.time(), tzinfo=clock.CHINA_STANDARD_TIME)
    registry_clock.set_now(last_day + timedelta(hours=23, minutes=59, seconds=59))  # 15:59:59 UTC
    assert (await _scan(client, issued))["result"] == "valid"

    registry_clock.set_now(last_day + timedelta(days=1))  # midnight in Beijing, 16:00 UTC the day before
    answer = await _scan(client, issued)
    assert answer["result"] == "expired"
    assert answer["status_changed_on"] == (today + timedelta(days=1)).isoformat()


async def test_a_certificate_valid_until_yesterday_is_expired_today(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    today = registry_clock.today()
    token = await _body_filed(app, client, first=today - timedelta(days=400), last=None)
    issued = await _issue(
        client, token, awarded_on=(today - timedelta(days=100)).isoformat(), valid_until=today.isoformat()
    )
    assert issued.status_code == 201, issued.text

    registry_clock.set_today(today + timedelta(days=1))
    assert (await _scan(client, issued))["result"] == "expired"


def test_the_registry_day_turns_at_midnight_in_beijing_not_in_utc(registry_clock: RegistryClock) -> None:
    registry_clock.set_now(datetime(2026, 12, 2, 15, 59, 59, tzinfo=UTC))
    assert clock.today() == date(2026, 12, 2)
    registry_clock.set_now(datetime(2026, 12, 2, 16, 0, 0, tzinfo=UTC))
    assert clock.today() == date(2026, 12, 3)
