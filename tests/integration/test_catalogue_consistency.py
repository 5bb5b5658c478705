"""What the catalogue, the recognition rules and the bodies' filings name must fit together: a rule names levels its
entries award, a filing names entries in force for it, and no entry, rule or filing is dated before the PRC's title
system began (1949-10-01). Each is refused through the API, naming the field; the shipped data files keep the same
rules."""

from __future__ import annotations

import json
from datetime import date, timedelta
from importlib import resources
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.catalogue.schemas import FIRST_DAY, CatalogueEntryCreate
from registry.db import transaction
from registry.recognition import references
from registry.recognition.schemas import RuleCreate
from tests.checks import assert_problem, leaves_no_trace
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer, create_issuer, issuer_body

ROBOT_LEVELS = "assistant, intermediate, associate_senior, senior"  # ENG-ROBOT awards no 员级 (clerk)
FILED = date(2027, 3, 10)  # the registry's day when the bureau files
EFFECTIVE = date(2027, 4, 1)  # an amendment's first day


def _rule(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from_region": "BJ",
        "to_region": "TJ",
        "cert_type": "title",
        "catalogue_codes": ["ENG-ROBOT"],
        "levels": ["senior"],
        "decision": "recognised",
        "basis": {"code": "BJ-HRSS-2026-ROBOT", "title": "《北京市机器人专业职称评价试行办法》"},
        "effective_from": "2026-01-01",
    }
    return body | overrides


def _entry(code: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "cert_type": "title",
        "series_zh": "工程技术",
        "name_zh": "具身智能系统",
        "name_en": "Embodied AI systems",
        "levels": ["intermediate", "associate_senior", "senior"],
        "effective_from": "2026-12-01",
    }
    return body | overrides


async def _rule_count(client: httpx.AsyncClient, admin: str) -> int:
    listed = await client.get("/v1/recognition/rules", params={"include_retired": "true"}, headers=bearer(admin))
    count: int = listed.json()["count"]
    return count


# --- a rule names levels its entries award -------------------------------------------------------------------------


async def test_a_rule_naming_a_level_its_entry_does_not_award_is_refused_listing_the_entrys_levels(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    before = await _rule_count(client, admin)
    refused = client.post("/v1/recognition/rules", json=_rule(levels=["senior", "clerk"]), headers=bearer(admin))
    problem = assert_problem(await leaves_no_trace(app, refused), 422, field="levels[1]", message=ROBOT_LEVELS)
    assert [error["field"] for error in problem["errors"]] == ["levels[1]"]
    assert "ENG-ROBOT" in problem["errors"][0]["message"]
    in_chinese = await client.post(
        "/v1/recognition/rules", json=_rule(levels=["clerk"]), headers=bearer(admin) | {"Accept-Language": "zh"}
    )
    assert_problem(in_chinese, 422, field="levels[0]", message="均不颁发 clerk 等级")
    assert await _rule_count(client, admin) == before
    accepted = await client.post("/v1/recognition/rules", json=_rule(), headers=bearer(admin))
    assert accepted.status_code == 201, accepted.text


async def test_a_level_one_of_several_entries_awards_is_accepted(app: FastAPI, client: httpx.AsyncClient) -> None:
    """ENG-ROBOT awards no clerk but ENG-AUTOMATION does: the rule decides ENG-AUTOMATION's clerks."""
    admin = await admin_token(app, client)
    body = _rule(catalogue_codes=["ENG-ROBOT", "ENG-AUTOMATION"], levels=["clerk"], to_region="HE")
    created = await client.post("/v1/recognition/rules", json=body, headers=bearer(admin))
    assert created.status_code == 201, created.text


async def test_a_series_rule_naming_a_level_the_series_does_not_award_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    body = _rule(catalogue_codes=[], series_code="HEI", levels=["clerk"], to_region="HE")
    refused = client.post("/v1/recognition/rules", json=body, headers=bearer(admin))
    assert_problem(await leaves_no_trace(app, refused), 422, field="levels[0]", message="series HEI")


async def test_an_equivalent_level_its_entry_does_not_award_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    body = _rule(equivalent={"catalogue_code": "ENG-AI", "level": "clerk"})
    refused = client.post("/v1/recognition/rules", json=body, headers=bearer(admin))
    assert_problem(await leaves_no_trace(app, refused), 422, field="equivalent.level", message="ENG-AI")


async def test_a_revision_naming_a_level_its_entry_does_not_award_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    created = await client.post("/v1/recognition/rules", json=_rule(), headers=bearer(admin))
    assert created.status_code == 201, created.text
    revised = client.post(
        f"/v1/recognition/rules/{created.json()['id']}/revise", json=_rule(levels=["clerk"]), headers=bearer(admin)
    )
    assert_problem(await leaves_no_trace(app, revised), 422, field="levels[0]", message=ROBOT_LEVELS)


# --- no day before the PRC's title system ---------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["0202-01-01", "1949-09-30"])
async def test_a_catalogue_entry_dated_before_1949_10_01_is_refused(
    app: FastAPI, client: httpx.AsyncClient, day: str
) -> None:
    admin = await admin_token(app, client)
    refused = client.post("/v1/catalogue", json=_entry("ENG-TYPO", effective_from=day), headers=bearer(admin))
    assert_problem(await leaves_no_trace(app, refused), 422, field="effective_from", message="1949-10-01")
    ending = _entry("ENG-TYPO", effective_from="0202-01-01", effective_until=day)
    assert_problem(await client.post("/v1/catalogue", json=ending, headers=bearer(admin)), 422, field="effective_until")
    first_day = _entry("ENG-TYPO", effective_from=FIRST_DAY.isoformat())
    assert (await client.post("/v1/catalogue", json=first_day, headers=bearer(admin))).status_code == 201


@pytest.mark.parametrize("field", ["effective_from", "effective_until"])
async def test_a_rule_dated_before_1949_10_01_is_refused(app: FastAPI, client: httpx.AsyncClient, field: str) -> None:
    admin = await admin_token(app, client)
    body = _rule(effective_from="0202-01-01") | {field: "0202-01-01"}
    refused = client.post("/v1/recognition/rules", json=body, headers=bearer(admin) | {"Accept-Language": "zh"})
    assert_problem(await leaves_no_trace(app, refused), 422, field=field, message="不得早于 1949-10-01")


@pytest.mark.parametrize("field", ["valid_from", "valid_until"])
async def test_a_filing_dated_before_1949_10_01_is_refused(app: FastAPI, client: httpx.AsyncClient, field: str) -> None:
    admin = await admin_token(app, client)
    body = issuer_body(valid_from="0202-01-01")
    body["scopes"][0][field] = "0202-01-01"
    refused = client.post("/v1/issuers", json=body, headers=bearer(admin))
    assert_problem(await leaves_no_trace(app, refused), 422, field=f"scopes.0.{field}", message="1949-10-01")


# --- a filing names entries in force for it --------------------------------------------------------------------------


async def _entries(app: FastAPI, client: httpx.AsyncClient) -> str:
    """ENG-ENDED (2020-01-01 to 2027-03-31) and ENG-LATER (from 2027-06-01) in the catalogue; an admin token."""
    admin = await admin_token(app, client)
    for body in (
        _entry("ENG-ENDED", effective_from="2020-01-01", effective_until="2027-03-31"),
        _entry("ENG-LATER", effective_from="2027-06-01"),
    ):
        created = await client.post("/v1/catalogue", json=body, headers=bearer(admin))
        assert created.status_code == 201, created.text
    return admin


async def test_registering_a_filing_of_an_ended_entry_is_refused_with_its_validity(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin = await _entries(app, client)
    registry_clock.set_today(FILED)
    body = issuer_body(catalogue_codes=("ENG-AI", "ENG-ENDED"), valid_from="2027-04-01")
    refused = client.post("/v1/issuers", json=body, headers=bearer(admin))
    problem = assert_problem(await leaves_no_trace(app, refused), 422, field="scopes.0.catalogue_codes")
    assert "ENG-ENDED was in force from 2020-01-01 to 2027-03-31" in problem["errors"][0]["message"], problem
    # Ending on the filing's first day, it is still in force that day.
    accepted = issuer_body(catalogue_codes=("ENG-AI", "ENG-ENDED"), valid_from="2027-03-31")
    assert (await client.post("/v1/issuers", json=accepted, headers=bearer(admin))).status_code == 201


async def test_registering_a_filing_of_an_entry_not_yet_in_force_is_refused_with_its_validity(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin = await _entries(app, client)
    registry_clock.set_today(FILED)
    body = issuer_body(catalogue_codes=("ENG-LATER",), valid_from=FILED.isoformat())
    refused = client.post("/v1/issuers", json=body, headers=bearer(admin) | {"Accept-Language": "zh"})
    problem = assert_problem(await leaves_no_trace(app, refused), 422, field="scopes.0.catalogue_codes")
    assert "ENG-LATER 自 2027-06-01 起生效" in problem["errors"][0]["message"], problem
    bounded = _entry("ENG-BOUNDED", effective_from="2027-06-01", effective_until="2029-12-31")
    assert (await client.post("/v1/catalogue", json=bounded, headers=bearer(admin))).status_code == 201
    refused = client.post(
        "/v1/issuers",
        json=issuer_body(catalogue_codes=("ENG-BOUNDED",), valid_from=FILED.isoformat()),
        headers=bearer(admin),
    )
    problem = assert_problem(await leaves_no_trace(app, refused), 422, field="scopes.0.catalogue_codes")
    assert "ENG-BOUNDED is in force from 2027-06-01 to 2029-12-31" in problem["errors"][0]["message"], problem
    # A filing from the entry's first day names it.
    accepted = issuer_body(catalogue_codes=("ENG-LATER",), valid_from="2027-06-01")
    assert (await client.post("/v1/issuers", json=accepted, headers=bearer(admin))).status_code == 201


@pytest.mark.parametrize(
    ("code", "effective", "refused_because"),
    [
        ("ENG-ENDED", EFFECTIVE, "ENG-ENDED was in force from 2020-01-01 to 2027-03-31"),
        ("ENG-LATER", date(2027, 5, 31), "ENG-LATER comes into force on 2027-06-01"),
    ],
)
async def test_an_amendment_of_an_entry_not_in_force_on_its_first_day_is_refused(
    app: FastAPI,
    client: httpx.AsyncClient,
    registry_clock: RegistryClock,
    code: str,
    effective: date,
    refused_because: str,
) -> None:
    admin = await _entries(app, client)
    await create_issuer(client, admin)
    registry_clock.set_today(FILED)
    body = {
        "cert_type": "title",
        "catalogue_codes": ["ENG-AI", code],
        "levels": ["senior"],
        "effective_from": effective.isoformat(),
        "basis": "京人社备〔2027〕3号",
    }
    refused = client.post("/v1/issuers/BJ-AI-COMMITTEE/scopes", json=body, headers=bearer(admin))
    problem = assert_problem(await leaves_no_trace(app, refused), 422, field="catalogue_codes")
    assert refused_because in problem["errors"][0]["message"], problem


@pytest.mark.parametrize(("code", "effective"), [("ENG-ENDED", "2027-03-31"), ("ENG-LATER", "2027-06-01")])
async def test_an_amendment_on_an_entrys_last_or_first_day_is_accepted(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock, code: str, effective: str
) -> None:
    """An entry ending on the amendment's first day is in force that day; one beginning in the future may be filed
    from its first day on, though it is not in force today."""
    admin = await _entries(app, client)
    await create_issuer(client, admin)
    registry_clock.set_today(FILED - timedelta(days=20))
    body = {
        "cert_type": "title",
        "catalogue_codes": [code],
        "levels": ["senior"],
        "effective_from": effective,
        "basis": "京人社备〔2027〕3号",
    }
    amended = await client.post("/v1/issuers/BJ-AI-COMMITTEE/scopes", json=body, headers=bearer(admin))
    assert amended.status_code == 201, amended.text


# --- the shipped data files keep the same rules ------------------------------------------------------------------


def _data(package: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files(package).joinpath("data", name).read_text(encoding="utf-8"))
    return data


def test_the_shipped_catalogue_is_dated_within_the_prcs_title_system() -> None:
    shipped = _data("registry.catalogue", "catalogue-2026-11.json")
    series = {s["code"]: s for s in shipped["series"]}
    for entry in shipped["entries"]:
        in_series = series.get(entry.get("series", ""))
        CatalogueEntryCreate.model_validate(
            {
                "code": entry["code"],
                "cert_type": entry["cert_type"],
                "series_zh": in_series["name_zh"] if in_series else None,
                "name_zh": entry["name_zh"],
                "name_en": entry["name_en"],
                "occupation_code": entry.get("occupation_code"),
                "levels": entry["levels"],
                "effective_from": entry["effective_from"],
                "effective_until": entry.get("effective_until"),
            }
        )


async def test_every_shipped_rule_names_what_the_shipped_catalogue_awards(app: FastAPI) -> None:
    shipped = _data("registry.recognition", "rules-2026-12.json")
    titles = {document["code"]: document["title_zh"] for document in shipped["basis_documents"]}
    async with transaction(app.state.sessions) as session:
        for rule in shipped["rules"]:
            basis = {"code": rule["basis"], "title": titles[rule["basis"]]}
            await references.check(session, RuleCreate.model_validate(rule | {"basis": basis}))
