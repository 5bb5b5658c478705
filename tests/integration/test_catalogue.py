"""The catalogue as shipped and as extended by the bureau."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.checks import assert_problem
from tests.factories import admin_token, bearer


async def test_shipped_catalogue_covers_series_specialities_and_occupations(client: httpx.AsyncClient) -> None:
    titles = (await client.get("/v1/catalogue", params={"cert_type": "title", "limit": 500})).json()
    skills = (await client.get("/v1/catalogue", params={"cert_type": "skill", "limit": 500})).json()
    assert titles["count"] >= 60
    assert len({entry["series_zh"] for entry in titles["data"]}) >= 25
    assert skills["count"] >= 40
    by_name = {(e["series_code"], e["name_zh"]): e for e in titles["data"]}
    for speciality in ("人工智能", "集成电路", "具身智能", "脑机接口"):
        assert ("ENG", speciality) in by_name, speciality
    embodied = by_name[("ENG", "具身智能")]
    assert embodied["name_en"] == "Embodied intelligence"
    assert embodied["basis"]
    assert embodied["effective_from"]
    assert [level["name_zh"] for level in embodied["levels"]][-1] == "正高级"
    for entry in skills["data"]:
        assert entry["occupation_code"] is not None
        assert len(entry["occupation_code"]) == 10


async def test_levels_have_chinese_and_english_names_in_order(client: httpx.AsyncClient) -> None:
    levels = (await client.get("/v1/catalogue/levels")).json()
    assert [lv["code"] for lv in levels["title"]] == [
        "clerk",
        "assistant",
        "intermediate",
        "associate_senior",
        "senior",
    ]
    assert [lv["name_zh"] for lv in levels["title"]] == ["员级", "助理级", "中级", "副高级", "正高级"]
    assert [lv["code"] for lv in levels["skill"]] == [
        "apprentice",
        "level_5",
        "level_4",
        "level_3",
        "level_2",
        "level_1",
        "principal",
        "chief",
    ]
    assert all(lv["name_en"] for lv in levels["skill"])


async def test_search_finds_by_chinese_name_and_by_occupation_code(client: httpx.AsyncClient) -> None:
    found = (await client.get("/v1/catalogue", params={"q": "脑机"})).json()
    assert [entry["code"] for entry in found["data"]] == ["ENG-BCI"]
    trainer = (await client.get("/v1/catalogue", params={"q": "4-04-05-05"})).json()
    assert trainer["data"][0]["name_zh"] == "人工智能训练师"
    assert trainer["data"][0]["cert_type"] == "skill"


async def test_bureau_adds_a_new_speciality_without_a_release(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    body = {
        "code": "ENG-QC",
        "cert_type": "title",
        "series_zh": "工程技术",
        "series_en": "Engineering",
        "name_zh": "量子计算",
        "name_en": "Quantum computing",
        "levels": ["senior", "intermediate", "associate_senior"],
        "effective_from": "2026-12-01",
        "basis": "京人社发〔2026〕示例号",
    }
    created = await client.post("/v1/catalogue", json=body, headers=bearer(admin))
    assert created.status_code == 201, created.text
    assert [lv["code"] for lv in created.json()["levels"]] == ["intermediate", "associate_senior", "senior"]
    assert created.json()["series_code"] == "ENG"
    found = (await client.get("/v1/catalogue", params={"q": "量子"})).json()
    assert found["data"][0]["code"] == "ENG-QC"


async def test_catalogue_writes_need_an_admin_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/catalogue", json={})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def _title_entry(**changes: str) -> dict[str, Any]:
    """A title entry's body as the bureau sends it, one senior level, with ``changes``."""
    body: dict[str, Any] = {
        "code": "ENG-NEW",
        "cert_type": "title",
        "series_zh": "工程技术",
        "name_zh": "具身智能系统",
        "name_en": "Embodied AI systems",
        "levels": ["senior"],
        "effective_from": "2026-12-01",
    }
    return body | changes


async def test_a_catalogue_name_the_e_certificate_cannot_print_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    body = _title_entry(code="ENG-BCI2", name_zh="脑机接口🧠", name_en="Brain-computer interface")
    refused = await client.post("/v1/catalogue", json=body, headers=bearer(admin))
    assert_problem(refused, 422, field="name_zh", message="cannot be printed on the e-certificate")
    assert (await client.get("/v1/catalogue", params={"q": "脑机接口🧠"})).json()["data"] == []


async def test_a_title_entry_in_no_known_series_is_refused_naming_the_series(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Accepted without its series before, its certificates fell outside every rule written for that series."""
    admin = await admin_token(app, client)
    body = _title_entry(code="ENG-SG232", series_zh="工程技术系列")  # a near miss of 工程技术
    refused = await client.post("/v1/catalogue", json=body, headers=bearer(admin) | {"Accept-Language": "zh"})
    problem = assert_problem(refused, 422, field="series_zh", message="不是职称系列")
    assert "工程技术" in problem["errors"][0]["message"]
    assert (await client.get("/v1/catalogue", params={"q": "ENG-SG232"})).json()["data"] == []


async def test_search_finds_percent_and_underscore_as_typed_not_as_wildcards(client: httpx.AsyncClient) -> None:
    every = (await client.get("/v1/catalogue", params={"limit": 1})).json()["count"]
    assert every > 100
    for typed in ("%", "_", "a%", "%%"):
        found = (await client.get("/v1/catalogue", params={"q": typed})).json()
        assert found["count"] == 0, (typed, found["count"])
