"""A Tianjin or Hebei agency asking one node whether Beijing certificates count in its region: wrong answers found.

Each test is a defect found by asking through the HTTP API only, as a partner agency would (the rules an admin keeps
are set up through the API too). What the agency is told must be true: a bridge the rules close is not reported as
opened, a certificate is never said to count as a title that does not exist, and a question's stated purpose does not
put an identity number in clear into the audit log.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from registry.auth.scopes import Role
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


async def _partner(app: FastAPI, http: httpx.AsyncClient, region: str) -> dict[str, str]:
    return bearer(await token_for(http, *await create_client(app, role=Role.partner, region=region)))


async def _beijing_title(
    app: FastAPI, http: httpx.AsyncClient, admin: str, *, code: str, catalogue_code: str, level: str
) -> dict[str, Any]:
    """A Beijing evaluation body filed for one entry at one level, and a certificate it issued; with its holder."""
    await create_issuer(http, admin, code=code, catalogue_codes=(catalogue_code,), levels=(level,))
    token = await issuer_token(app, http, code)
    holder = {"name": "王工程", "id_type": "resident_id", "id_number": resident_id()}
    made = await issued_certificate(http, token, holder=holder, catalogue_code=catalogue_code, level=level)
    return {**made, "holder": holder}


async def _ask(http: httpx.AsyncClient, partner: dict[str, str], cert: dict[str, Any], **params: str) -> Any:
    query = {"holder_name": cert["holder"]["name"], "purpose": "title_evaluation", **params}
    response = await http.get(f"/v1/recognition/{cert['number']}", params=query, headers=partner)
    assert response.status_code == 200, response.text
    return response.json()


# --- a bridge the rules close is reported as one the certificate opens -----------------------------------------------


async def test_a_bridge_rule_that_does_not_recognise_is_not_reported_as_a_bridge_the_certificate_opens(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    cert = await _beijing_title(
        app, client, admin, code="BJ-AI-MID-COMMITTEE", catalogue_code="ENG-AI", level="intermediate"
    )
    # Tianjin's bureau decides that a Beijing 中级 人工智能 title does NOT open its 技师 (level_2) skill evaluation: a
    # bridge rule naming the entry, more specific than the seed's series-wide 中级 -> 技师 bridge, says not_recognised.
    closed = {
        "kind": "bridge",
        "from_region": "BJ",
        "to_region": "TJ",
        "cert_type": "title",
        "catalogue_codes": ["ENG-AI"],
        "levels": ["intermediate"],
        "decision": "not_recognised",
        "equivalent": {"cert_type": "skill", "level": "level_2"},
        "basis": {"code": "TJ-HRSS-2026-BRIDGE-AI", "title": "《天津市关于人工智能专业贯通评价的补充规定》"},
        "effective_from": "2026-01-01",
    }
    created = await client.post("/v1/recognition/rules", json=closed, headers=bearer(admin))
    assert created.status_code == 201, created.text
    partner = await _partner(app, client, "TJ")

    answer = await _ask(client, partner, cert)

    assert (answer["result"], answer["decision"]) == ("valid", "recognised")
    # "the bridges it opens" (README): a bridge listed here with no decision reads as opened. The closing rule must
    # either be left out or say that it does not recognise.
    opened = [
        bridge
        for bridge in answer["bridges"]
        if bridge["equivalent"]["cert_type"] == "skill" and bridge.get("decision") != "not_recognised"
    ]
    assert opened == [], f"a bridge the rules close is reported as opened: {opened}"


# --- "counted as the same level" in an entry that has no such level ---------------------------------------------------


async def test_a_certificate_is_never_said_to_count_as_a_level_its_equivalent_entry_does_not_award(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    # 自动化 awards 员级 (clerk); 人工智能 does not (assistant to senior only).
    cert = await _beijing_title(
        app, client, admin, code="BJ-AUTO-COMMITTEE", catalogue_code="ENG-AUTOMATION", level="clerk"
    )
    rule = {
        "from_region": "BJ",
        "to_region": "TJ",
        "cert_type": "title",
        "catalogue_codes": ["ENG-AUTOMATION"],
        "decision": "conditional",
        "equivalent": {"catalogue_code": "ENG-AI"},  # no level: "the same level" (README)
        "conditions_zh": "按人工智能专业同级认定。",
        "conditions_en": "Counted as artificial intelligence at the same level.",
        "basis": {"code": "TJ-HRSS-2026-AUTO", "title": "《天津市自动化专业职称认定办法》"},
        "effective_from": "2026-01-01",
    }
    created = await client.post("/v1/recognition/rules", json=rule, headers=bearer(admin))
    # Refusing the rule (422: its equivalent does not award every level it covers) is one fix; the answer below is
    # what the agency must never be told either way.
    assert created.status_code in (201, 422), created.text
    partner = await _partner(app, client, "TJ")

    answer = await _ask(client, partner, cert)

    equivalent = answer["equivalent"] or {}
    counted_as = (equivalent.get("catalogue_code"), equivalent.get("level") or answer["certificate"]["level"])
    assert counted_as != ("ENG-AI", "clerk"), f"counted as 人工智能 员级, which is never awarded: {equivalent}"


# --- an identity number typed into the stated purpose is kept in clear -------------------------------------------


async def test_an_identity_number_in_the_stated_purpose_never_reaches_the_audit_log_in_clear(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    cert = await _beijing_title(app, client, admin, code="BJ-AI-SENIOR", catalogue_code="ENG-AI", level="senior")
    partner = await _partner(app, client, "HE")
    identity = cert["holder"]["id_number"]
    full_width = identity.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    purposes = [f"核验持证人{identity}的职称", f"核验持证人{full_width}的职称"]  # as an agency's clerk might type it

    for purpose_text in purposes:
        params = {"holder_name": cert["holder"]["name"], "purpose": "other", "purpose_text": purpose_text}
        single = await client.get(f"/v1/recognition/{cert['number']}", params=params, headers=partner)
        item = {"number": cert["number"], "holder_name": cert["holder"]["name"]}
        bulk_body = {"purpose": "other", "purpose_text": purpose_text, "items": [item, item]}
        bulk = await client.post("/v1/recognition/queries", json=bulk_body, headers=partner)
        for response in (single, bulk):
            if response.status_code == 422:  # refusing such a purpose, naming the field, is one fix
                assert_problem(response, 422, field="purpose_text", secret=identity)
            else:
                assert response.status_code == 200, response.text

    audit = await client.get("/v1/audit", params={"action": "recognition.query", "limit": 500}, headers=bearer(admin))
    assert audit.status_code == 200, audit.text
    assert identity not in audit.text, "GET /v1/audit holds a clear identity number (API.md: never)"
    assert full_width not in audit.text, "GET /v1/audit holds a clear (full-width) identity number"
