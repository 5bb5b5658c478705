"""Every path a recognition question's stated purpose travels gets the masked form of an identity number typed into
it: the agency's answer (200, not refused), the audit log, the purpose signed into each answer, the holder's "who
looked" list, the question passed to a peer node, and a question received from one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.certificates import numbering
from registry.config import Settings
from registry.recognition.queries import RECOGNITION_PATH
from tests.factories import admin_token, bearer, create_client, resident_id, token_for
from tests.integration.federation_support import (
    HOLDER,
    Tianjin,
    beijing_service_token,
    fake_recognition,
    tianjin_with_fake_beijing,
)
from tests.integration.holder_support import HOLDER_NAME, signed_in_holder


def _full_width(identity: str) -> str:
    return identity.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))


def _masked(identity: str) -> str:
    return identity[:2] + "*" * 14 + identity[-2:]


async def _audited_purposes(app: FastAPI, http: httpx.AsyncClient) -> tuple[list[str], str]:
    admin = bearer(await admin_token(app, http))
    audit = await http.get("/v1/audit", params={"action": "recognition.query", "limit": 500}, headers=admin)
    assert audit.status_code == 200, audit.text
    return [record["purpose"] for record in audit.json()["data"]], audit.text


async def test_a_partner_typing_an_identity_number_into_the_purpose_is_answered_and_nothing_keeps_it_in_clear(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    identity = holder.id_number
    partner = bearer(await token_for(client, *await create_client(app, role=Role.partner, region="HE")))
    number = holder.certificate["number"]
    purpose_text = f"核验持证人{_full_width(identity)}的职称"
    said = f"other: 核验持证人{_masked(identity)}的职称"

    params = {"holder_name": HOLDER_NAME, "purpose": "other", "purpose_text": purpose_text}
    single = await client.get(f"/v1/recognition/{number}", params=params, headers=partner)
    item = {"number": number, "holder_name": HOLDER_NAME}
    body = {"purpose": "other", "purpose_text": purpose_text, "items": [item]}
    bulk = await client.post("/v1/recognition/queries", json=body, headers=partner)

    # Masked, not refused: the agency gets its answer.
    assert single.status_code == 200, single.text
    assert bulk.status_code == 200, bulk.text
    answers = [single.json(), bulk.json()["results"][0]["answer"]]
    assert [answer["decision"] for answer in answers] == ["conditional", "conditional"]
    for answer in answers:
        signed = jwt.decode(answer["signature"], options={"verify_signature": False})
        assert signed["purpose"] == said
    purposes, audit_text = await _audited_purposes(app, client)
    assert purposes == [said, said]
    await app.state.visits.flush()
    looked = await client.get("/v1/holder/verifications", headers=holder.headers)
    assert looked.status_code == 200, looked.text
    assert [visit["purpose"] for visit in looked.json()] == [said, said]
    for text in (audit_text, looked.text, single.text, bulk.text):
        assert identity not in text
        assert _full_width(identity) not in text


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    async with tianjin_with_fake_beijing(settings) as node:
        yield node


async def test_the_purpose_passed_to_a_peer_node_holds_no_identity_number_in_clear(tianjin: Tianjin) -> None:
    asked: list[dict[str, Any]] = []

    def honest(question: dict[str, Any]) -> Any:
        asked.append(question)
        return [
            {"index": index, "status": 200, "answer": fake_recognition(item["number"], question["to_region"])}
            for index, item in enumerate(question["items"])
        ]

    tianjin.peer.recognition_answer = honest
    identity = resident_id()
    partner = bearer(await token_for(tianjin.http, *await create_client(tianjin.app, role=Role.partner, region="TJ")))
    params = {"holder_name": HOLDER, "purpose": "other", "purpose_text": f"核验{identity}"}

    response = await tianjin.http.get(f"/v1/recognition/{tianjin.peer.number}", params=params, headers=partner)

    assert response.status_code == 200, response.text
    assert response.json()["answered_by"] == "BJ"
    assert [question["purpose_text"] for question in asked] == [f"核验{_masked(identity)}"]
    purposes, audit_text = await _audited_purposes(tianjin.app, tianjin.http)
    assert purposes == [f"other: 核验{_masked(identity)}"]
    assert identity not in audit_text


async def test_a_purpose_received_from_a_peer_node_is_audited_masked(tianjin: Tianjin) -> None:
    identity = resident_id()
    number = numbering.new_number(region="TJ", cert_type="title", year=2026)
    question = {
        "to_region": "BJ",
        "purpose": "other",
        "purpose_text": f"北京市人才中心核验持证人{_full_width(identity)}",
        "items": [{"number": number, "holder_name": HOLDER}],
        "nonce": "n" * 16,
    }
    token = beijing_service_token(tianjin.peer.node_key)

    response = await tianjin.http.post(RECOGNITION_PATH, json=question, headers=bearer(token))

    assert response.status_code == 200, response.text
    statement = jwt.decode(response.json()["statement"], options={"verify_signature": False})
    assert [item["status"] for item in statement["answer"]] == [404]  # no such Tianjin certificate: still audited
    purposes, audit_text = await _audited_purposes(tianjin.app, tianjin.http)
    assert purposes == [f"other: 北京市人才中心核验持证人{_masked(identity)}"]
    assert identity not in audit_text
    assert _full_width(identity) not in json.dumps(purposes, ensure_ascii=False)
