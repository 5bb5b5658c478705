"""京津冀 mutual recognition on one node: the rules an admin keeps, and the questions partner agencies ask."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.certificates.numbering import check_char
from registry.errors import InvalidCertificateNumber
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

SEED_RULES = 172


def rule_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from_region": "BJ",
        "to_region": "TJ",
        "cert_type": "title",
        "catalogue_codes": ["ENG-ROBOT"],
        "decision": "conditional",
        "equivalent": {"catalogue_code": "ENG-AUTOMATION"},
        "conditions_zh": "天津尚未设立机器人专业，按自动化专业同级认定。",
        "conditions_en": "Tianjin has no robotics speciality yet: counted as automation at the same level.",
        "basis": {"code": "BJ-HRSS-2026-ROBOT", "title": "《北京市机器人专业职称评价试行办法》"},
        "effective_from": "2026-01-01",
    }
    body.update(overrides)
    return body


async def partner_token(app: FastAPI, http: httpx.AsyncClient, region: str) -> str:
    return await token_for(http, *await create_client(app, role=Role.partner, region=region))


async def test_the_seed_rules_ship_with_the_registry_and_partners_may_read_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    partner = await partner_token(app, client, "TJ")
    response = await client.get("/v1/recognition/rules", params={"limit": 500}, headers=bearer(partner))
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["count"] == SEED_RULES
    conditional = [r for r in page["data"] if r["decision"] == "conditional" and r["to_region"] == "TJ"]
    assert {tuple(r["catalogue_codes"]) for r in conditional} == {("ENG-EAI",), ("ENG-BCI",)}
    assert conditional[0]["equivalent"]["catalogue_code"] == "ENG-AI"
    assert conditional[0]["equivalent"]["name_zh"] == "人工智能"
    assert conditional[0]["conditions"]["zh"]
    assert conditional[0]["conditions"]["en"]
    assert {r["status"] for r in page["data"]} == {"in_force"}
    issuer = await issuer_token(app, client, (await create_issuer(client, await admin_token(app, client)))["code"])
    assert_problem(await client.get("/v1/recognition/rules", headers=bearer(issuer)), 403)
    assert_problem(await client.get("/v1/recognition/rules"), 401)


async def test_an_admin_creates_revises_and_retires_a_rule_and_its_history_stays(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = bearer(await admin_token(app, client))
    created = await client.post("/v1/recognition/rules", json=rule_body(), headers=admin)
    assert created.status_code == 201, created.text
    first = created.json()
    assert first["status"] == "in_force"
    assert first["kind"] == "recognition"
    assert first["supersedes"] is None
    assert first["equivalent"]["name_zh"] == "自动化"

    revised = await client.post(
        f"/v1/recognition/rules/{first['id']}/revise", json=rule_body(decision="recognised"), headers=admin
    )
    assert revised.status_code == 201, revised.text
    second = revised.json()
    assert second["supersedes"] == first["id"]
    assert second["decision"] == "recognised"
    old = (await client.get(f"/v1/recognition/rules/{first['id']}", headers=admin)).json()
    assert old["status"] == "retired"
    assert old["superseded_by"] == second["id"]
    assert old["decision"] == "conditional"

    assert_problem(
        await client.post(f"/v1/recognition/rules/{first['id']}/revise", json=rule_body(), headers=admin), 409
    )
    retired = await client.post(
        f"/v1/recognition/rules/{second['id']}/retire", json={"reason": "superseded by a national rule"}, headers=admin
    )
    assert retired.status_code == 200, retired.text
    assert retired.json()["status"] == "retired"
    assert retired.json()["retired_reason"] == "superseded by a national rule"
    listed = await client.get("/v1/recognition/rules", params={"include_retired": "true", "limit": 500}, headers=admin)
    assert listed.json()["count"] == SEED_RULES + 2
    live = await client.get("/v1/recognition/rules", params={"limit": 500}, headers=admin)
    assert live.json()["count"] == SEED_RULES
    assert_problem(await client.post("/v1/recognition/rules/999999/retire", json={"reason": "x"}, headers=admin), 404)


async def test_a_rule_tying_with_one_in_force_is_refused_and_nothing_is_written(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = bearer(await admin_token(app, client))
    # The seed already decides BJ -> TJ for the whole ENG series: a second series-wide rule ties with it.
    tie = rule_body(catalogue_codes=[], series_code="ENG", decision="not_recognised", equivalent=None)
    assert_problem(await client.post("/v1/recognition/rules", json=tie, headers=admin), 409, slug="overlapping-rule")
    # An entry rule over an entry the seed decides by entry (ENG-EAI) ties too; a more specific one (levels) does not.
    entry = rule_body(catalogue_codes=["ENG-EAI"], decision="recognised", equivalent=None)
    assert_problem(await client.post("/v1/recognition/rules", json=entry, headers=admin), 409)
    # Naming the rule's own ladder as its equivalent changes nothing: it still ties.
    same_ladder = rule_body(catalogue_codes=[], series_code="ENG", decision="not_recognised", conditions_zh=None)
    same_ladder.update(equivalent={"cert_type": "title"}, conditions_en=None)
    assert_problem(await client.post("/v1/recognition/rules", json=same_ladder, headers=admin), 409)
    narrower = {**entry, "levels": ["senior"]}
    assert (await client.post("/v1/recognition/rules", json=narrower, headers=admin)).status_code == 201
    listed = await client.get("/v1/recognition/rules", params={"limit": 500}, headers=admin)
    assert listed.json()["count"] == SEED_RULES + 1


@pytest.mark.parametrize("rule_id", ["0", "2147483648", "3000000000", "99999999999999999999999"])
async def test_a_rule_id_no_rule_can_have_is_not_found(app: FastAPI, client: httpx.AsyncClient, rule_id: str) -> None:
    admin = bearer(await admin_token(app, client))
    assert_problem(await client.get(f"/v1/recognition/rules/{rule_id}", headers=admin), 404)
    retire = await client.post(f"/v1/recognition/rules/{rule_id}/retire", json={"reason": "测试"}, headers=admin)
    assert_problem(retire, 404)
    revise = await client.post(f"/v1/recognition/rules/{rule_id}/revise", json=rule_body(), headers=admin)
    assert_problem(revise, 404)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"equivalent": {"catalogue_code": "ENG-NOPE"}}, "equivalent.catalogue_code"),
        ({"catalogue_codes": ["SK-6-31-01-03"]}, "catalogue_codes[0]"),
        ({"levels": ["level_2"]}, "levels[0]"),
        ({"to_region": "BJ"}, "to_region"),
        ({"to_region": "SH"}, "to_region"),
        ({"decision": "maybe"}, "decision"),
        ({"conditions_en": None}, "conditions_zh"),
        ({"effective_until": "2025-12-31"}, "effective_until"),
        ({"catalogue_codes": [], "series_code": "NOPE"}, "series_code"),
        ({"kind": "bridge"}, "equivalent.cert_type"),
        ({"equivalent": {"cert_type": "skill"}}, "equivalent.cert_type"),
        ({"equivalent": {"level": "chief"}}, "equivalent.level"),
        ({"basis": {"code": "X"}}, "basis.title"),
    ],
)
async def test_a_bad_rule_is_refused_naming_its_field(
    app: FastAPI, client: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    admin = bearer(await admin_token(app, client))
    response = await client.post("/v1/recognition/rules", json=rule_body(**overrides), headers=admin)
    assert_problem(response, 422, field=field)
    listed = await client.get("/v1/recognition/rules", params={"limit": 500, "include_retired": "true"}, headers=admin)
    assert listed.json()["count"] == SEED_RULES


async def _beijing_certificates(app: FastAPI, http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    admin = await admin_token(app, http)
    title = await issuer_token(app, http, (await create_issuer(http, admin))["code"])
    skill_body = {"code": "BJ-SKILL-ORG", "cert_type": "skill", "kind": "evaluation_organisation"}
    skill_issuer = await create_issuer(
        http, admin, catalogue_codes=("SK-6-31-01-03",), levels=("level_3", "level_2"), **skill_body
    )
    skill = await issuer_token(app, http, skill_issuer["code"])
    made: dict[str, dict[str, Any]] = {}
    for key, token, overrides in (
        ("eai", title, {"catalogue_code": "ENG-EAI", "level": "intermediate"}),
        ("ai", title, {"catalogue_code": "ENG-AI", "level": "associate_senior"}),
        ("revoked", title, {"catalogue_code": "ENG-IC", "level": "senior"}),
        ("electrician", skill, {"cert_type": "skill", "catalogue_code": "SK-6-31-01-03", "level": "level_2"}),
    ):
        holder = {"name": f"持证人{key}", "id_type": "resident_id", "id_number": resident_id()}
        made[key] = {**await issued_certificate(http, token, holder=holder, **overrides), "holder": holder}
    revoke = await http.post(
        f"/v1/certificates/{made['revoked']['number']}/revoke", json={"reason": "misconduct"}, headers=bearer(title)
    )
    assert revoke.status_code == 200, revoke.text
    return made


async def test_a_corrected_certificate_is_not_recognised_and_the_answer_names_its_successor(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    title = await issuer_token(app, client, (await create_issuer(client, admin))["code"])
    holder = {"name": "持证人更正", "id_type": "resident_id", "id_number": resident_id()}
    old = await issued_certificate(client, title, holder=holder, catalogue_code="ENG-AI", level="intermediate")
    correction = {"reason": "level was entered wrongly", "level": "associate_senior"}
    corrected = await client.post(f"/v1/certificates/{old['number']}/correct", json=correction, headers=bearer(title))
    assert corrected.status_code == 201, corrected.text
    partner = bearer(await partner_token(app, client, "TJ"))
    for number, result, superseded_by in (
        (old["number"], "superseded", corrected.json()["number"]),
        (corrected.json()["number"], "valid", None),
    ):
        response = await client.get(f"/v1/recognition/{number}", params=_ask(number, holder["name"]), headers=partner)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["result"], answer["superseded_by"]) == (result, superseded_by)
        assert answer["decision"] == ("recognised" if result == "valid" else "not_recognised")


def unused_number(prefix: str) -> str:
    """A well-formed number with this region, type and year that no certificate has (serials are random)."""
    for serial in ("00000000", "00000001"):
        try:
            return prefix + serial + check_char(prefix + serial)
        except InvalidCertificateNumber:
            continue
    raise AssertionError("unreachable: two serials in a row without a check character")


def _ask(number: str, name: str, purpose: str = "hiring") -> dict[str, str]:
    return {"holder_name": name, "purpose": purpose}


async def test_a_tianjin_agency_learns_whether_and_as_what_beijing_certificates_count_in_tianjin(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = await _beijing_certificates(app, client)
    partner = bearer(await partner_token(app, client, "TJ"))

    async def ask(key: str) -> dict[str, Any]:
        cert = made[key]
        response = await client.get(
            f"/v1/recognition/{cert['number']}", params=_ask(cert["number"], cert["holder"]["name"]), headers=partner
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        assert answer["to_region"] == "TJ"
        assert answer["answered_by"] == "BJ"
        assert cert["holder"]["id_number"] not in response.text
        assert answer["certificate"]["holder_id_masked"].count("*") >= 8
        return answer

    eai = await ask("eai")
    assert (eai["result"], eai["decision"]) == ("valid", "conditional")
    assert eai["equivalent"]["catalogue_code"] == "ENG-AI"
    assert eai["conditions"]["zh"]
    assert eai["basis"][0]["code"] == "BJ-HRSS-2025-EAI-BCI"
    ai = await ask("ai")
    assert (ai["decision"], ai["equivalent"], ai["basis"][0]["code"]) == ("recognised", None, "JJJ-TITLE-MR")
    assert [b["equivalent"]["level"] for b in ai["bridges"]] == ["level_1"]  # 副高级 opens 高级技师 evaluation
    revoked = await ask("revoked")
    assert (revoked["result"], revoked["decision"], revoked["decision_reason"]) == (
        "revoked",
        "not_recognised",
        "revoked",
    )
    assert revoked["rule_id"] is None
    electrician = await ask("electrician")
    assert electrician["decision"] == "recognised"
    assert electrician["basis"][0]["code"] == "JJJ-SKILL-MR"
    bridge = electrician["bridges"][0]
    assert bridge["equivalent"] == {
        "cert_type": "title",
        "series_code": "ENG",
        "catalogue_code": None,
        "name_zh": None,
        "name_en": None,
        "level": "intermediate",
    }  # 技师 may apply for a 中级 engineering title in Tianjin


async def test_every_answer_is_signed_by_the_node_with_a_key_in_its_jwks(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = await _beijing_certificates(app, client)
    partner = bearer(await partner_token(app, client, "HE"))
    cert = made["ai"]
    response = await client.get(
        f"/v1/recognition/{cert['number']}", params=_ask(cert["number"], cert["holder"]["name"]), headers=partner
    )
    answer = response.json()
    signature = answer.pop("signature")
    header = jwt.get_unverified_header(signature)
    assert header["typ"] == "recognition-answer+jwt"
    jwks = (await client.get("/.well-known/jwks.json")).json()
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(signature, jwt.PyJWK(key), algorithms=["EdDSA"], options={"verify_aud": False})
    assert claims["answer"] == answer
    assert claims["purpose"] == "hiring"
    assert claims["region"] == "BJ"
    tampered = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, jwt.PyJWK(key), algorithms=["EdDSA"], options={"verify_aud": False})


async def test_a_wrong_name_and_a_missing_number_answer_alike_and_both_are_audited(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = await _beijing_certificates(app, client)
    partner = bearer(await partner_token(app, client, "TJ"))
    number = made["ai"]["number"]
    wrong = await client.get(f"/v1/recognition/{number}", params=_ask(number, "李四"), headers=partner)
    missing_number = unused_number(number[:7])
    missing = await client.get(f"/v1/recognition/{missing_number}", params=_ask(number, "李四"), headers=partner)
    a, b = assert_problem(wrong, 404), assert_problem(missing, 404)
    assert (a["title"], a["detail"]) == (b["title"], b["detail"])
    audit = await client.get(
        "/v1/audit", params={"action": "recognition.query"}, headers=bearer(await admin_token(app, client))
    )
    records = audit.json()["data"]
    assert [r["details"]["status"] for r in records][:1] == [404]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"holder_name": "张三"}, "purpose"),
        ({"holder_name": "张三", "purpose": "curiosity"}, "purpose"),
        ({"holder_name": "张三", "purpose": "other"}, "purpose_text"),
        ({"purpose": "hiring"}, "holder_name"),
    ],
)
async def test_a_question_without_a_stated_purpose_or_name_is_refused(
    app: FastAPI, client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    partner = bearer(await partner_token(app, client, "TJ"))
    response = await client.get(f"/v1/recognition/{unused_number('BJT2026')}", params=params, headers=partner)
    assert_problem(response, 422, field=field)


async def test_numbers_that_cannot_be_asked_about_name_the_number(app: FastAPI, client: httpx.AsyncClient) -> None:
    partner = bearer(await partner_token(app, client, "TJ"))
    malformed = await client.get("/v1/recognition/BJ-T-2026-0000", params=_ask("", "张三"), headers=partner)
    assert_problem(malformed, 422, field="number")
    response = await client.get(f"/v1/recognition/{unused_number('TJT2026')}", params=_ask("", "张三"), headers=partner)
    assert_problem(response, 422, field="number", message="recognition is between regions")


async def test_who_may_ask_for_which_region(app: FastAPI, client: httpx.AsyncClient) -> None:
    made = await _beijing_certificates(app, client)
    cert = made["ai"]
    params = _ask(cert["number"], cert["holder"]["name"])
    partner = bearer(await partner_token(app, client, "TJ"))
    other = await client.get(f"/v1/recognition/{cert['number']}", params={**params, "to_region": "HE"}, headers=partner)
    assert_problem(other, 403)
    admin = bearer(await admin_token(app, client))
    assert_problem(
        await client.get(f"/v1/recognition/{cert['number']}", params=params, headers=admin), 422, field="to_region"
    )
    as_admin = await client.get(
        f"/v1/recognition/{cert['number']}", params={**params, "to_region": "HE"}, headers=admin
    )
    assert as_admin.status_code == 200
    assert as_admin.json()["to_region"] == "HE"
    issuer = bearer(await issuer_token(app, client, "BJ-AI-COMMITTEE"))
    assert_problem(await client.get(f"/v1/recognition/{cert['number']}", params=params, headers=issuer), 403)


async def test_a_bulk_question_is_answered_item_by_item_in_order_and_each_item_is_audited_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = await _beijing_certificates(app, client)
    partner = bearer(await partner_token(app, client, "HE"))
    items: list[Any] = [
        {"number": made["eai"]["number"], "holder_name": made["eai"]["holder"]["name"]},
        {"number": "not a number", "holder_name": "张三"},
        {"number": made["ai"]["number"], "holder_name": "李四"},
        {"number": made["revoked"]["number"], "holder_name": made["revoked"]["holder"]["name"]},
        {"number": made["ai"]["number"]},
        "just a string",
        {"number": made["electrician"]["number"], "holder_name": made["electrician"]["holder"]["name"]},
    ]
    body = {"purpose": "talent_introduction", "items": items}
    response = await client.post("/v1/recognition/queries", json=body, headers=partner)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["count"] == len(items)
    assert answer["to_region"] == "HE"
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == [200, 422, 404, 200, 422, 422, 200]
    assert results[0]["answer"]["decision"] == "conditional"
    assert results[1]["problem"]["errors"][0]["field"] == "items[1].number"
    assert results[3]["answer"]["decision"] == "not_recognised"
    assert results[4]["problem"]["errors"][0]["field"] == "items[4].holder_name"
    assert results[6]["answer"]["decision"] == "recognised"
    assert all(r["answer"]["signature"] for r in results if r["status"] == 200)

    admin = bearer(await admin_token(app, client))
    audit = (await client.get("/v1/audit", params={"action": "recognition.query", "limit": 500}, headers=admin)).json()
    records = audit["data"]
    assert len(records) == len(items)
    assert {r["purpose"] for r in records} == {"talent_introduction"}
    assert [r["details"]["status"] for r in records] == [200, 422, 404, 200, 422, 422, 200]
    assert all(r["details"]["region"] == "HE" for r in records)
    for cert in made.values():
        assert cert["holder"]["id_number"] not in str(audit)


async def test_an_oversized_or_empty_bulk_question_is_refused_whole(app: FastAPI, client: httpx.AsyncClient) -> None:
    partner = bearer(await partner_token(app, client, "TJ"))
    items = [{"number": unused_number("BJT2026"), "holder_name": "张三"}] * 1001
    too_many = await client.post("/v1/recognition/queries", json={"purpose": "hiring", "items": items}, headers=partner)
    assert_problem(too_many, 422, field="items")
    empty = await client.post("/v1/recognition/queries", json={"purpose": "hiring", "items": []}, headers=partner)
    assert_problem(empty, 422, field="items")
    no_purpose = await client.post("/v1/recognition/queries", json={"items": items[:1]}, headers=partner)
    assert_problem(no_purpose, 422, field="purpose")


async def test_paging_far_past_the_end_is_an_empty_page_or_a_named_error(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    partner = bearer(await partner_token(app, client, "TJ"))
    empty = await client.get("/v1/recognition/rules", params={"offset": 1_000_000}, headers=partner)
    assert empty.status_code == 200
    assert empty.json()["data"] == []
    huge = await client.get("/v1/recognition/rules", params={"offset": 36893488147419103231}, headers=partner)
    assert_problem(huge, 422, field="offset")
