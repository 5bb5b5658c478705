"""A body's filing (备案) and the catalogue entries it names must meet in time: a filing may not claim to authorise
awards under an entry only for days the entry does not exist. The one rule (``catalogue.not_fileable``, through
``issuers.service.check_filings``) is applied wherever a filing is made — registering a body, amending its filing —
and a refusal is 422 naming the field, in the reader's language, with nothing written.

What is refused: an entry that ended before the filing's first day; one that begins after the filing's last day (a
filing with a ``valid_until`` before the entry's first day, back-dated or not: before, a back-dated one was taken);
one that begins after the filing's first day, or — for a filing registered back-dated — after the day it is recorded.
What is not: an entry that ends while the filing runs on (an amendment is open-ended), and an entry that began after a
back-dated filing's first day but by the day it is recorded and by its last day.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.checks import assert_problem, leaves_no_trace
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer, create_issuer, issuer_body

FILED = date(2027, 3, 10)  # the registry's day when the bureau files
REFUSED = {
    "en": "the filed scope names catalogue entries not in force for it",
    "zh": "备案范围包含在备案期间未生效的目录条目",
}

# (the filing's days, the entry it names, what the refusal says in English and in Chinese)
REGISTRATIONS = {
    "back-dated, ending before the entry begins": (
        ("2025-01-01", "2026-05-31"),
        "ENG-OPENED",
        "ENG-OPENED comes into force on 2026-06-01, after 2026-05-31, the last day of this filing (from 2025-01-01)",
        "目录条目 ENG-OPENED 自 2026-06-01 起生效，晚于本备案（自 2025-01-01 起）的最后一日 2026-05-31",
    ),
    "scheduled, ending before the entry begins": (
        ("2027-04-01", "2027-05-31"),
        "ENG-LATER",
        "ENG-LATER comes into force on 2027-06-01, after 2027-05-31, the last day of this filing (from 2027-04-01)",
        "目录条目 ENG-LATER 自 2027-06-01 起生效，晚于本备案（自 2027-04-01 起）的最后一日 2027-05-31",
    ),
    "starting after the entry ended": (
        ("2027-04-01", "2028-12-31"),
        "ENG-ENDED",
        "ENG-ENDED was in force from 2020-01-01 to 2027-03-31: it ended before 2027-04-01",
        "目录条目 ENG-ENDED 的有效期为 2020-01-01 至 2027-03-31：在本备案的首日 2027-04-01 之前已经终止",
    ),
    "scheduled, starting before the entry begins": (
        ("2027-04-01", None),
        "ENG-LATER",
        "ENG-LATER comes into force on 2027-06-01, after 2027-04-01, the first day of this filing",
        "目录条目 ENG-LATER 自 2027-06-01 起生效，晚于本备案的首日 2027-04-01",
    ),
    "back-dated, the entry beginning after today": (
        ("2025-01-01", "2028-12-31"),
        "ENG-LATER",
        "ENG-LATER comes into force on 2027-06-01, after 2025-01-01, the first day of this filing",
        "目录条目 ENG-LATER 自 2027-06-01 起生效，晚于本备案的首日 2025-01-01",
    ),
}

# (the amendment's first day, the entry it names, the refusal in English and in Chinese)
AMENDMENTS = {
    "from after the entry ended": (
        "2027-04-01",
        "ENG-ENDED",
        "ENG-ENDED was in force from 2020-01-01 to 2027-03-31: it ended before 2027-04-01",
        "目录条目 ENG-ENDED 的有效期为 2020-01-01 至 2027-03-31：在本备案的首日 2027-04-01 之前已经终止",
    ),
    "from before the entry begins": (
        "2027-05-31",
        "ENG-LATER",
        "ENG-LATER comes into force on 2027-06-01, after 2027-05-31, the first day of this filing",
        "目录条目 ENG-LATER 自 2027-06-01 起生效，晚于本备案的首日 2027-05-31",
    ),
}


def _entry(code: str, effective_from: str, effective_until: str | None = None) -> dict[str, Any]:
    return {
        "code": code,
        "cert_type": "title",
        "series_zh": "工程技术",
        "name_zh": "具身智能系统",
        "name_en": "Embodied AI systems",
        "levels": ["intermediate", "associate_senior", "senior"],
        "effective_from": effective_from,
        "effective_until": effective_until,
    }


async def _catalogue(app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock) -> str:
    """ENG-OPENED (from 2026-06-01), ENG-ENDED (2020-01-01 to 2027-03-31) and ENG-LATER (from 2027-06-01) in the
    catalogue, the registry's day FILED (2027-03-10); an admin token."""
    admin = await admin_token(app, client)
    for body in (
        _entry("ENG-OPENED", "2026-06-01"),
        _entry("ENG-ENDED", "2020-01-01", "2027-03-31"),
        _entry("ENG-LATER", "2027-06-01"),
    ):
        created = await client.post("/v1/catalogue", json=body, headers=bearer(admin))
        assert created.status_code == 201, created.text
    registry_clock.set_today(FILED)
    return admin


def _registration(days: tuple[str, str | None], code: str) -> dict[str, Any]:
    """A body filed for ENG-AI from 2020 on, and for ``code`` over ``days``: the second filing is at fault."""
    body = issuer_body()
    second = issuer_body(catalogue_codes=(code,), valid_from=days[0], valid_until=days[1])["scopes"][0]
    body["scopes"].append(second)
    return body


def _amendment(effective_from: str, code: str) -> dict[str, Any]:
    return {
        "cert_type": "title",
        "catalogue_codes": ["ENG-AI", code],
        "levels": ["senior"],
        "effective_from": effective_from,
        "basis": "京人社备〔2027〕3号",
    }


def _assert_refused(response: httpx.Response, *, field: str, lang: str, message: str) -> None:
    problem = assert_problem(response, 422, field=field, message=message)
    assert response.headers["content-language"].startswith(lang)
    assert problem["detail"] == REFUSED[lang], problem
    assert [error["field"] for error in problem["errors"]] == [field], problem


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("case", list(REGISTRATIONS))
async def test_registering_a_filing_that_never_meets_its_entry_is_refused_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock, case: str, lang: str
) -> None:
    admin = await _catalogue(app, client, registry_clock)
    days, code, english, chinese = REGISTRATIONS[case]
    headers = bearer(admin) | {"Accept-Language": lang}
    refused = client.post("/v1/issuers", json=_registration(days, code), headers=headers)
    message = chinese if lang == "zh" else english
    _assert_refused(await leaves_no_trace(app, refused), field="scopes.1.catalogue_codes", lang=lang, message=message)
    assert (await client.get("/v1/issuers/BJ-AI-COMMITTEE")).status_code == 404


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("case", list(AMENDMENTS))
async def test_amending_a_filing_to_an_entry_not_in_force_from_its_first_day_is_refused_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock, case: str, lang: str
) -> None:
    admin = await _catalogue(app, client, registry_clock)
    await create_issuer(client, admin)
    effective_from, code, english, chinese = AMENDMENTS[case]
    headers = bearer(admin) | {"Accept-Language": lang}
    refused = client.post("/v1/issuers/BJ-AI-COMMITTEE/scopes", json=_amendment(effective_from, code), headers=headers)
    message = chinese if lang == "zh" else english
    _assert_refused(await leaves_no_trace(app, refused), field="catalogue_codes", lang=lang, message=message)
    scopes = (await client.get("/v1/issuers/BJ-AI-COMMITTEE")).json()["scopes"]
    assert [(s["valid_from"], s["valid_until"]) for s in scopes] == [("2020-01-01", None)]


@pytest.mark.parametrize(
    ("days", "code"),
    [
        (("2025-01-01", "2026-06-01"), "ENG-OPENED"),  # back-dated, ending on the entry's first day
        (("2025-01-01", "2026-12-31"), "ENG-OPENED"),  # back-dated, the entry begun since and by its last day
        (("2027-03-31", "2028-12-31"), "ENG-ENDED"),  # the entry ends while the filing runs on
        (("2027-06-01", "2027-06-01"), "ENG-LATER"),  # one day, the entry's first
    ],
)
async def test_registering_a_filing_that_meets_its_entry_is_accepted(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock, days: tuple[str, str], code: str
) -> None:
    admin = await _catalogue(app, client, registry_clock)
    registered = await client.post("/v1/issuers", json=_registration(days, code), headers=bearer(admin))
    assert registered.status_code == 201, registered.text
    assert [(s["valid_from"], s["valid_until"]) for s in registered.json()["scopes"]][1] == days


async def test_every_refusal_of_one_registration_is_listed_with_its_field(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    """Two filings at fault, the one ending before its entry begins among them: both are named, nothing is written."""
    admin = await _catalogue(app, client, registry_clock)
    body = _registration(("2025-01-01", "2026-05-31"), "ENG-OPENED")
    body["scopes"].append(issuer_body(catalogue_codes=("ENG-ENDED",), valid_from="2027-04-01")["scopes"][0])
    refused = client.post("/v1/issuers", json=body, headers=bearer(admin) | {"Accept-Language": "zh"})
    problem = assert_problem(await leaves_no_trace(app, refused), 422, field="scopes.1.catalogue_codes")
    fields = [error["field"] for error in problem["errors"]]
    assert fields == ["scopes.1.catalogue_codes", "scopes.2.catalogue_codes"], problem
    assert "最后一日 2026-05-31" in problem["errors"][0]["message"], problem


async def test_an_amendment_closing_a_back_dated_version_leaves_it_meeting_its_entries(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    """The version an amendment closes ends the day before a day after today: it still meets every entry it names
    (ENG-OPENED began before today), so amending never makes a filing the rule would refuse."""
    admin = await _catalogue(app, client, registry_clock)
    await create_issuer(client, admin, catalogue_codes=("ENG-AI", "ENG-OPENED"), valid_from="2025-01-01")
    amended = await client.post(
        "/v1/issuers/BJ-AI-COMMITTEE/scopes", json=_amendment("2027-03-11", "ENG-OPENED"), headers=bearer(admin)
    )
    assert amended.status_code == 201, amended.text
    days = [(s["valid_from"], s["valid_until"]) for s in amended.json()["scopes"]]
    assert days == [("2025-01-01", "2027-03-10"), ("2027-03-11", None)]
    # The closed version, filed anew as it now stands, is accepted by the same rule.
    again = _registration(("2025-01-01", "2027-03-10"), "ENG-OPENED") | {"code": "BJ-AI-AGAIN"}
    again["credit_code"] = issuer_body()["credit_code"]
    assert (await client.post("/v1/issuers", json=again, headers=bearer(admin))).status_code == 201
