"""A token narrowed to ``clients:write`` cannot become more than it is: no admin client is made through the API, and
another admin client is neither taken over nor locked out there. A disabled client's tokens stay dead once it is
enabled again, and an access token is held to one audience, its kind's lifetime and its client's body as the database
has it."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.config import Settings
from tests.checks import assert_problem
from tests.factories import bearer, certificate_body, create_client, create_issuer, issued_certificate, token_for
from tests.integration.auth_support import (
    ISSUER_CODE,
    World,
    assert_token_refused,
    forge,
    make_world,
    unverified_claims,
)

REASON = {"reason": "the secret was pasted into a ticket"}
CHINESE = {"Accept-Language": "zh-CN"}


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient) -> World:
    return await make_world(app, client)


async def narrowed_admin(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str]:
    """An admin client's id and a token of it narrowed to ``clients:write``."""
    admin_id, admin_secret = await create_client(app, role=Role.admin)
    return admin_id, await token_for(client, admin_id, admin_secret, scope="clients:write")


async def client_ids(client: httpx.AsyncClient, token: str) -> list[str]:
    response = await client.get("/v1/clients", headers=bearer(token))
    assert response.status_code == 200, response.text
    return [listed["client_id"] for listed in response.json()["data"]]


# --- clients:write is not a way to every admin scope ---------------------------------------------------------------


async def test_a_clients_write_token_cannot_make_an_admin_client(app: FastAPI, client: httpx.AsyncClient) -> None:
    _admin_id, narrow = await narrowed_admin(app, client)
    before = await client_ids(client, narrow)
    body = {"role": "admin", "name": "minted by a clients:write token"}
    english = assert_problem(await client.post("/v1/clients", json=body, headers=bearer(narrow)), 422, field="role")
    assert "registry clients create" in english["errors"][0]["message"]
    chinese = await client.post("/v1/clients", json=body, headers={**bearer(narrow), **CHINESE})
    assert_problem(chinese, 422, field="role", message="管理员客户端只能在服务器本机创建")
    assert await client_ids(client, narrow) == before
    partner = {"role": "partner", "name": "天津市人社局", "region": "TJ"}
    created = await client.post("/v1/clients", json=partner, headers=bearer(narrow))
    assert created.status_code == 201, created.text  # the other roles are still made through the API


async def test_an_admin_cannot_take_over_another_admin_client_by_rotating_its_secret(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    own_id, narrow = await narrowed_admin(app, client)
    other_id, other_secret = await create_client(app, role=Role.admin)
    refused = await client.post(f"/v1/clients/{other_id}/rotate-secret", headers=bearer(narrow))
    problem = assert_problem(refused, 403)
    assert "registry clients create" in problem["detail"]
    assert "client_secret" not in refused.text
    await token_for(client, other_id, other_secret)  # the other admin's secret is untouched
    # Nor its own: a new secret would open the scopes its token was narrowed from (test_attack_authz: a token of
    # every scope of the client still rotates it).
    own = await client.post(f"/v1/clients/{own_id}/rotate-secret", headers=bearer(narrow))
    assert "fewer scopes than its client" in assert_problem(own, 403)["detail"]


async def test_an_admin_cannot_disable_or_enable_another_admin_client(app: FastAPI, client: httpx.AsyncClient) -> None:
    _own_id, narrow = await narrowed_admin(app, client)
    other_id, other_secret = await create_client(app, role=Role.admin)
    for action in ("disable", "enable"):
        response = await client.post(f"/v1/clients/{other_id}/{action}", json=REASON, headers=bearer(narrow))
        assert_problem(response, 403)
    chinese = await client.post(f"/v1/clients/{other_id}/disable", json=REASON, headers={**bearer(narrow), **CHINESE})
    assert "另一个管理员客户端" in assert_problem(chinese, 403)["detail"]
    other = await token_for(client, other_id, other_secret)
    assert (await client.get("/v1/clients", headers=bearer(other))).status_code == 200


# --- a disabled client's tokens do not come back ------------------------------------------------------------------


async def test_a_token_from_before_a_disable_stays_refused_once_the_client_is_enabled_again(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    issuer_id, issuer_secret = world.issuer_client_id, world.issuer_client_secret
    leaked = await token_for(client, issuer_id, issuer_secret)
    assert (await client.get("/v1/certificates", headers=bearer(leaked))).status_code == 200
    admin = bearer(world.admin)
    assert (await client.post(f"/v1/clients/{issuer_id}/disable", json=REASON, headers=admin)).status_code == 200
    rotated = await client.post(f"/v1/clients/{issuer_id}/rotate-secret", headers=admin)
    assert (await client.post(f"/v1/clients/{issuer_id}/enable", json=REASON, headers=admin)).status_code == 200

    problem = await assert_token_refused(app, client, leaked)
    assert "before its client was disabled" in problem["detail"]
    fresh = await token_for(client, issuer_id, rotated.json()["client_secret"])  # within the same second, often
    assert (await client.get("/v1/certificates", headers=bearer(fresh))).status_code == 200


async def test_with_no_grace_period_a_rotation_ends_the_tokens_the_old_secret_opened(
    no_grace: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = no_grace
    world = await make_world(app, client)
    rotated = await client.post(f"/v1/clients/{world.issuer_client_id}/rotate-secret", headers=bearer(world.admin))
    assert rotated.status_code == 200, rotated.text
    await assert_token_refused(app, client, world.issuer)
    fresh = await token_for(client, world.issuer_client_id, rotated.json()["client_secret"])
    assert (await client.get("/v1/certificates", headers=bearer(fresh))).status_code == 200


# --- access tokens hold to what the registry issues ----------------------------------------------------------------


async def test_an_access_token_naming_several_audiences_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    audience = unverified_claims(world.issuer)["aud"]
    forged = await forge(app, world.issuer, aud=[audience, "https://elsewhere.example"])
    problem = await assert_token_refused(app, client, forged)
    assert "one audience" in problem["detail"]


async def test_an_access_token_living_longer_than_the_configured_ttl_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    now = int(time.time())
    forged = await forge(app, world.issuer, iat=now, nbf=now, exp=now + settings.access_token_ttl_seconds + 60)
    problem = await assert_token_refused(app, client, forged)
    assert "lives longer" in problem["detail"]


async def test_a_holder_token_living_longer_than_fifteen_minutes_is_refused(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    body = certificate_body()
    certificate = await issued_certificate(client, world.issuer, holder=body["holder"])
    sign_in = {k: body["holder"][k] for k in ("id_type", "id_number")} | {"claim_code": certificate["claim_code"]}
    session = await client.post("/v1/holder/sessions", json=sign_in)
    assert session.status_code == 201, session.text
    holder = session.json()["access_token"]
    assert (await client.get("/v1/holder/certificates", headers=bearer(holder))).status_code == 200
    now = int(time.time())
    forged = await forge(app, holder, header={"typ": "holder+jwt"}, iat=now, nbf=now, exp=now + 3600)
    problem = assert_problem(await client.get("/v1/holder/certificates", headers=bearer(forged)), 401)
    assert "lives longer" in problem["detail"]


async def test_a_token_naming_another_body_acts_for_its_clients_own_body(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    await create_issuer(client, world.admin, code="BJ-OTHER-BODY")
    forged = await forge(app, world.issuer, issuer_code="BJ-OTHER-BODY")
    own = await client.get("/v1/certificates", params={"issuer_code": ISSUER_CODE}, headers=bearer(forged))
    assert own.status_code == 200, own.text
    other = await client.get("/v1/certificates", params={"issuer_code": "BJ-OTHER-BODY"}, headers=bearer(forged))
    assert_problem(other, 403)
