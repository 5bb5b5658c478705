"""What the lifecycle tests share: a registry with the bureau and one evaluation body, and short ways to act on and
look at a certificate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from registry.auth.scopes import Role
from tests.factories import bearer, create_client, create_issuer, token_for

CODE = "BJ-AI-COMMITTEE"
OTHER = "BJ-OTHER-COMMITTEE"


@dataclass
class World:
    admin: str
    admin_client_id: str
    issuer: str
    issuer_client_id: str


async def set_up(app: FastAPI, client: httpx.AsyncClient, **issuer_overrides: Any) -> World:
    admin_id, admin_secret = await create_client(app, role=Role.admin)
    admin = await token_for(client, admin_id, admin_secret)
    await create_issuer(client, admin, **issuer_overrides)
    issuer_id, issuer_secret = await create_client(app, role=Role.issuer, issuer_code=CODE)
    issuer = await token_for(client, issuer_id, issuer_secret)
    return World(admin=admin, admin_client_id=admin_id, issuer=issuer, issuer_client_id=issuer_id)


async def verified(client: httpx.AsyncClient, certificate: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def act(
    client: httpx.AsyncClient, token: str, number: str, action: str, reason_code: str | None = "fraud"
) -> httpx.Response:
    body: dict[str, Any] = {"reason": f"test {action}"}
    if action == "revoke" and reason_code is not None:
        body["reason_code"] = reason_code
    return await client.post(f"/v1/certificates/{number}/{action}", json=body, headers=bearer(token))


async def history(client: httpx.AsyncClient, token: str, number: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/certificates/{number}/events", headers=bearer(token))
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    for event in events:
        assert {"event", "reason", "actor", "at"} <= set(event), event
    return events


async def published_keys(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys


def key_named(keys: list[dict[str, Any]], kid: str) -> dict[str, Any]:
    matching = [k for k in keys if k["kid"] == kid]
    assert len(matching) == 1, f"{kid} is in the JWKS {len(matching)} times"
    return matching[0]


async def holder_token(client: httpx.AsyncClient, id_number: str, claim_code: str) -> str:
    body = {"id_type": "resident_id", "id_number": id_number, "claim_code": claim_code}
    response = await client.post("/v1/holder/sessions", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["access_token"]
    return token
