"""``POST /v1/clients/{id}/rotate-secret`` over the API: an ordinary rotation keeps the old secret for its grace, and
``{"grace": false}`` ends a leaked secret and every token it opened at once, as ``registry clients rotate-secret
--no-grace`` does on the server's machine (tests/integration/test_operator_fix_leaked_secret.py)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from registry.auth.scopes import Role
from tests.factories import bearer, create_client, token_for


async def _opens_a_token(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await client.post("/oauth/token", data=form)


async def test_rotation_without_a_body_keeps_the_old_secret_for_its_grace(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await token_for(client, *await create_client(app, role=Role.admin))
    client_id, secret = await create_client(app, role=Role.partner, region="TJ")

    rotated = await client.post(f"/v1/clients/{client_id}/rotate-secret", headers=bearer(admin))

    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["previous_secret_valid_until"] is not None
    assert (await _opens_a_token(client, client_id, secret)).status_code == 200


async def test_grace_false_ends_the_leaked_secret_and_its_tokens_at_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await token_for(client, *await create_client(app, role=Role.admin))
    leaked_id, leaked_secret = await create_client(app, role=Role.partner, region="HE")
    opened_with_the_leak = await token_for(client, leaked_id, leaked_secret)

    rotated = await client.post(f"/v1/clients/{leaked_id}/rotate-secret", json={"grace": False}, headers=bearer(admin))

    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["previous_secret_valid_until"] is None
    refused = await _opens_a_token(client, leaked_id, leaked_secret)
    assert refused.status_code == 401, refused.text
    assert (await client.get("/v1/recognition/rules", headers=bearer(opened_with_the_leak))).status_code == 401
    assert (await _opens_a_token(client, leaked_id, rotated.json()["client_secret"])).status_code == 200
    audit = await client.get(
        "/v1/audit", params={"action": "client.secret_rotated", "object_id": leaked_id}, headers=bearer(admin)
    )
    (record,) = audit.json()["data"]
    assert record["details"]["previous_secret_ended_at_once"] == "no grace asked"


async def test_a_bad_rotation_body_is_refused_naming_the_field_and_rotates_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await token_for(client, *await create_client(app, role=Role.admin))
    client_id, secret = await create_client(app, role=Role.partner, region="TJ")

    for body, field in (({"grace": "maybe"}, "grace"), ({"grace": False, "keep": 1}, "keep")):
        refused = await client.post(
            f"/v1/clients/{client_id}/rotate-secret",
            json=body,
            headers={**bearer(admin), "Accept-Language": "zh-CN"},
        )
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert any(field in str(error.get("field", error)) for error in refused.json()["errors"]), refused.text
    assert (await _opens_a_token(client, client_id, secret)).status_code == 200
