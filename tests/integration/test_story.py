"""The whole story over HTTP: admin → evaluation body → issuer client → certificate → public verification."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from registry.auth.scopes import Role
from tests.factories import bearer, create_client, credit_code, resident_id, token_for


# Long: one user story end to end, in the order people live it.
async def test_bureau_registers_body_which_issues_and_employer_verifies(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await token_for(client, *await create_client(app, role=Role.admin))

    partner = {"role": "partner", "name": "天津市人社局", "region": "TJ"}
    created = await client.post("/v1/clients", json=partner, headers=bearer(admin))
    assert created.status_code == 201
    assert len(created.json()["client_secret"]) >= 43  # 256 bits, base64url

    body = {
        "code": "BJ-EAI-SENIOR",
        "name": "北京市工程技术系列具身智能专业高级职称评审委员会",
        "credit_code": credit_code(),
        "kind": "title_committee",
        "region": "BJ",
        "scopes": [
            {
                "cert_type": "title",
                "catalogue_codes": ["ENG-EAI", "ENG-BCI"],
                "levels": ["associate_senior", "senior"],
                "valid_from": "2025-01-01",
            }
        ],
    }
    registered = await client.post("/v1/issuers", json=body, headers=bearer(admin))
    assert registered.status_code == 201, registered.text
    assert registered.json()["scopes"][0]["catalogue_codes"] == ["ENG-BCI", "ENG-EAI"]
    assert len(registered.json()["signing_keys"]) == 1

    issuer_client = await client.post(
        "/v1/clients", json={"role": "issuer", "name": "评审办", "issuer_code": "BJ-EAI-SENIOR"}, headers=bearer(admin)
    )
    assert issuer_client.status_code == 201
    issuer = await token_for(client, issuer_client.json()["client_id"], issuer_client.json()["client_secret"])

    id_number = resident_id(birth="19860215")
    issued = await client.post(
        "/v1/certificates",
        json={
            "cert_type": "title",
            "catalogue_code": "ENG-EAI",
            "level": "associate_senior",
            "holder": {"name": "李四", "id_type": "resident_id", "id_number": id_number},
            "awarded_on": "2026-09-30",
            "evaluation_batch": "2026-EAI-01",
        },
        headers=bearer(issuer),
    )
    assert issued.status_code == 201, issued.text
    certificate = issued.json()
    assert certificate["number"].startswith("BJT2026")
    assert certificate["status"] == "active"
    assert certificate["name_zh"] == "具身智能"
    assert certificate["level_name_zh"] == "副高级"
    assert certificate["holder"]["id_masked"] == id_number[:2] + "*" * 14 + id_number[-2:]
    assert certificate["verify_url"] == f"https://registry.test/v/{certificate['qr_token']}"
    assert len(certificate["claim_code"]) == 14
    assert id_number not in issued.text

    by_token = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert by_token.status_code == 200
    answer = by_token.json()
    assert answer["result"] == "valid"
    assert answer["signature_valid"] is True
    assert answer["certificate"]["holder_name"] == "李四"
    assert answer["certificate"]["issuer_code"] == "BJ-EAI-SENIOR"
    assert answer["certificate"]["name_zh"] == "具身智能"
    assert id_number not in by_token.text
    assert "19860215" not in by_token.text
    assert "claim_code" not in by_token.text

    by_number = await client.post(
        "/v1/verify", json={"number": certificate["number_display"].lower(), "holder_name": " 李四 "}
    )
    assert by_number.status_code == 200
    assert by_number.json()["result"] == "valid"
    assert by_number.json()["certificate"]["number"] == certificate["number"]

    own = await client.get(f"/v1/certificates/{certificate['number']}", headers=bearer(issuer))
    assert own.status_code == 200
    assert "claim_code" not in own.json()

    listed = await client.get("/v1/certificates", headers=bearer(issuer))
    assert [c["number"] for c in listed.json()["data"]] == [certificate["number"]]

    jwks = await client.get("/.well-known/jwks.json")
    kids = {key["kid"] for key in jwks.json()["keys"]}
    assert certificate["kid"] in kids
