"""What a purpose says with numbers reaches every page as typed — a compact date, money, a telephone number, the
certificate's own number — while an identity number typed beside them is masked: on a share link's public page and
the holder's list, and in a recognition question's audit record and signed answer."""

from __future__ import annotations

import httpx
import jwt
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.certificates import numbering
from tests.factories import admin_token, bearer, create_client, token_for
from tests.integration.holder_support import HOLDER_NAME, signed_in_holder


async def test_a_share_links_purpose_keeps_its_date_money_phone_and_certificate_number_and_masks_the_identity(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    identity = holder.id_number
    number = numbering.format_number(holder.certificate["number"])
    said = f"入职20261205，年薪1,234,567元，联系13812345678，证书{number}"
    body = {"number": holder.certificate["number"], "purpose": "other", "purpose_text": f"{said}，身份证{identity}"}

    created = await client.post("/v1/holder/share-links", json=body, headers=holder.headers)

    assert created.status_code == 201, created.text
    kept = f"{said}，身份证{identity[:2]}{'*' * 14}{identity[-2:]}"
    assert created.json()["purpose_text"] == kept
    shared = await client.get(httpx.URL(created.json()["url"]).path, params={"lang": "en"})
    assert shared.status_code == 200, shared.text
    assert kept in shared.text
    assert identity not in shared.text


async def test_a_recognition_questions_purpose_keeps_its_date_and_masks_the_identity_beside_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    identity = holder.id_number
    partner = bearer(await token_for(client, *await create_client(app, role=Role.partner, region="HE")))
    params = {"holder_name": HOLDER_NAME, "purpose": "other", "purpose_text": f"20261205入职 {identity}"}

    answer = await client.get(f"/v1/recognition/{holder.certificate['number']}", params=params, headers=partner)

    assert answer.status_code == 200, answer.text
    said = f"other: 20261205入职 {identity[:2]}{'*' * 14}{identity[-2:]}"
    assert jwt.decode(answer.json()["signature"], options={"verify_signature": False})["purpose"] == said
    admin = bearer(await admin_token(app, client))
    audit = await client.get("/v1/audit", params={"action": "recognition.query"}, headers=admin)
    assert [record["purpose"] for record in audit.json()["data"]] == [said]
    assert identity not in audit.text
