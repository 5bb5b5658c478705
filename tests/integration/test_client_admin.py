"""The bureau manages API clients: lists them (never their secrets), disables and enables them, and rotates a secret
while the old one keeps working for a grace period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from registry.auth.scopes import Role
from tests.checks import assert_problem
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer, create_client, create_issuer, token_for
from tests.integration.auth_support import ISSUER_CODE

GRACE = timedelta(seconds=86_400)  # REGISTRY_CLIENT_SECRET_GRACE_SECONDS' default
REASON = {"reason": "contract with the evaluation body ended"}


def token_form(client_id: str, client_secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}


async def make_clients(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, dict[str, tuple[str, str]]]:
    """An admin token and an admin, an issuer and a partner client (id, secret) by role."""
    admin_id, admin_secret = await create_client(app, role=Role.admin)
    admin = await token_for(client, admin_id, admin_secret)
    await create_issuer(client, admin)
    clients = {
        "admin": (admin_id, admin_secret),
        "issuer": await create_client(app, role=Role.issuer, issuer_code=ISSUER_CODE),
        "partner": await create_client(app, role=Role.partner, region="TJ"),
    }
    return admin, clients


async def listed(client: httpx.AsyncClient, admin: str, **query: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/clients", params=query, headers=bearer(admin))
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_the_bureau_lists_every_client_without_a_secret_or_its_hash(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin, clients = await make_clients(app, client)
    response = await client.get("/v1/clients", headers=bearer(admin))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["client_id"] for c in body["data"]] == [clients[r][0] for r in ("admin", "issuer", "partner")]
    assert body["next_cursor"] is None
    issuer = body["data"][1]
    assert issuer["role"] == "issuer"
    assert issuer["issuer_code"] == ISSUER_CODE
    assert issuer["active"] is True
    assert issuer["previous_secret_valid_until"] is None
    assert "certificates:issue" in issuer["scopes"]
    for _client_id, secret in clients.values():
        assert secret not in response.text
    assert "secret_hash" not in response.text
    one = await client.get(f"/v1/clients/{clients['partner'][0]}", headers=bearer(admin))
    assert one.status_code == 200, one.text
    assert one.json() == body["data"][2]


async def test_filters_pick_clients_by_role_body_region_and_state(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin, clients = await make_clients(app, client)
    issuer_id, partner_id = clients["issuer"][0], clients["partner"][0]
    assert [c["client_id"] for c in await listed(client, admin, role="issuer")] == [issuer_id]
    assert [c["client_id"] for c in await listed(client, admin, issuer_code=ISSUER_CODE)] == [issuer_id]
    assert [c["client_id"] for c in await listed(client, admin, region="TJ")] == [partner_id]
    assert await listed(client, admin, active="false") == []
    disabled = await client.post(f"/v1/clients/{partner_id}/disable", json=REASON, headers=bearer(admin))
    assert disabled.status_code == 200, disabled.text
    assert [c["client_id"] for c in await listed(client, admin, active="false")] == [partner_id]
    assert partner_id not in [c["client_id"] for c in await listed(client, admin, active="true")]
    assert await listed(client, admin, role="partner", region="BJ") == []


async def test_pages_follow_each_other_without_gaps_or_repeats(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin, clients = await make_clients(app, client)
    seen: list[str] = []
    cursor: str | None = None
    for _page in range(10):
        query: dict[str, Any] = {"limit": 1} if cursor is None else {"limit": 1, "cursor": cursor}
        response = await client.get("/v1/clients", params=query, headers=bearer(admin))
        assert response.status_code == 200, response.text
        seen += [c["client_id"] for c in response.json()["data"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [clients[r][0] for r in ("admin", "issuer", "partner")]


async def test_bad_list_queries_are_422_naming_the_parameter(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    for query, field in (
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"role": "superuser"}, "role"),
        ({"region": "SH"}, "region"),
        ({"limit": 0}, "limit"),
        ({"issuer_code": "bad code"}, "issuer_code"),
    ):
        response = await client.get("/v1/clients", params=query, headers=bearer(admin))
        assert_problem(response, 422, field=field)


async def test_only_the_bureau_manages_clients(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin, clients = await make_clients(app, client)
    issuer = await token_for(client, *clients["issuer"])
    partner_id = clients["partner"][0]
    for method, path, body in (
        ("GET", "/v1/clients", None),
        ("GET", f"/v1/clients/{partner_id}", None),
        ("POST", f"/v1/clients/{partner_id}/disable", REASON),
        ("POST", f"/v1/clients/{partner_id}/enable", REASON),
        ("POST", f"/v1/clients/{partner_id}/rotate-secret", None),
    ):
        assert_problem(await client.request(method, path, json=body, headers=bearer(issuer)), 403)
        assert_problem(await client.request(method, path, json=body), 401)
    # nothing changed
    assert [c["active"] for c in await listed(client, admin)] == [True, True, True]


async def test_an_unknown_client_is_404(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    assert_problem(await client.get("/v1/clients/trc_nobody", headers=bearer(admin)), 404)
    for action, body in (("disable", REASON), ("enable", REASON), ("rotate-secret", None)):
        response = await client.post(f"/v1/clients/trc_nobody/{action}", json=body, headers=bearer(admin))
        assert_problem(response, 404)


async def test_a_status_change_without_a_reason_is_422_naming_it(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin, clients = await make_clients(app, client)
    path = f"/v1/clients/{clients['issuer'][0]}/disable"
    assert_problem(await client.post(path, json={}, headers=bearer(admin)), 422, field="reason")
    assert_problem(await client.post(path, json={"reason": ""}, headers=bearer(admin)), 422, field="reason")
    extra = {**REASON, "until": "2027-01-01"}
    assert_problem(await client.post(path, json=extra, headers=bearer(admin)), 422, field="until")
    assert [c["active"] for c in await listed(client, admin)] == [True, True, True]


async def test_a_disabled_client_gets_no_token_and_its_tokens_stop_working(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin, clients = await make_clients(app, client)
    issuer_id, issuer_secret = clients["issuer"]
    held = await token_for(client, issuer_id, issuer_secret)
    assert (await client.get("/v1/certificates", headers=bearer(held))).status_code == 200

    disabled = await client.post(f"/v1/clients/{issuer_id}/disable", json=REASON, headers=bearer(admin))
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False

    refused = assert_problem(await client.post("/oauth/token", data=token_form(issuer_id, issuer_secret)), 401)
    wrong = assert_problem(await client.post("/oauth/token", data=token_form(issuer_id, "wrong-secret")), 401)
    assert refused == wrong, "a disabled client must be answered exactly like a wrong secret"
    assert_problem(await client.get("/v1/certificates", headers=bearer(held)), 401)

    again = await client.post(f"/v1/clients/{issuer_id}/disable", json=REASON, headers=bearer(admin))
    assert_problem(again, 409)

    enabled = await client.post(f"/v1/clients/{issuer_id}/enable", json=REASON, headers=bearer(admin))
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["active"] is True
    fresh = await token_for(client, issuer_id, issuer_secret)
    assert (await client.get("/v1/certificates", headers=bearer(fresh))).status_code == 200
    assert_problem(await client.post(f"/v1/clients/{issuer_id}/enable", json=REASON, headers=bearer(admin)), 409)

    audit = await client.get("/v1/audit", params={"action": "client.*"}, headers=bearer(admin))
    changes = [(r["action"], r["object_id"], r["details"].get("reason")) for r in audit.json()["data"]][-2:]
    assert changes == [
        ("client.disabled", issuer_id, REASON["reason"]),
        ("client.enabled", issuer_id, REASON["reason"]),
    ]


async def test_a_rotated_secret_keeps_working_for_the_grace_period_then_not(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    admin, clients = await make_clients(app, client)
    issuer_id, old_secret = clients["issuer"]
    before = datetime.now(UTC)
    rotated = await client.post(f"/v1/clients/{issuer_id}/rotate-secret", headers=bearer(admin))
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    new_secret = body["client_secret"]
    assert body["client_id"] == issuer_id
    assert new_secret != old_secret
    until = datetime.fromisoformat(body["previous_secret_valid_until"])
    assert before + GRACE <= until <= datetime.now(UTC) + GRACE
    shown = await client.get(f"/v1/clients/{issuer_id}", headers=bearer(admin))
    assert new_secret not in shown.text
    assert datetime.fromisoformat(shown.json()["previous_secret_valid_until"]) == until

    await token_for(client, issuer_id, new_secret)
    await token_for(client, issuer_id, old_secret)  # within the grace period

    registry_clock.advance(GRACE + timedelta(seconds=1))
    assert_problem(await client.post("/oauth/token", data=token_form(issuer_id, old_secret)), 401)
    await token_for(client, issuer_id, new_secret)

    audit = await client.get("/v1/audit", params={"action": "client.secret_rotated"}, headers=bearer(admin))
    records = audit.json()["data"]
    assert [r["object_id"] for r in records] == [issuer_id]
    assert new_secret not in audit.text
    assert old_secret not in audit.text


async def test_a_second_rotation_ends_the_first_old_secret_at_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin, clients = await make_clients(app, client)
    issuer_id, first = clients["issuer"]
    path = f"/v1/clients/{issuer_id}/rotate-secret"
    second = (await client.post(path, headers=bearer(admin))).json()["client_secret"]
    third = (await client.post(path, headers=bearer(admin))).json()["client_secret"]
    assert_problem(await client.post("/oauth/token", data=token_form(issuer_id, first)), 401)
    await token_for(client, issuer_id, second)
    await token_for(client, issuer_id, third)


async def test_a_disabled_client_is_refused_even_with_a_secret_in_its_grace_period(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin, clients = await make_clients(app, client)
    issuer_id, old_secret = clients["issuer"]
    new_secret = (await client.post(f"/v1/clients/{issuer_id}/rotate-secret", headers=bearer(admin))).json()
    await client.post(f"/v1/clients/{issuer_id}/disable", json=REASON, headers=bearer(admin))
    for secret in (old_secret, new_secret["client_secret"]):
        assert_problem(await client.post("/oauth/token", data=token_form(issuer_id, secret)), 401)


async def test_with_no_grace_period_the_old_secret_stops_at_once(
    no_grace: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = no_grace
    admin, clients = await make_clients(app, client)
    issuer_id, old_secret = clients["issuer"]
    rotated = await client.post(f"/v1/clients/{issuer_id}/rotate-secret", headers=bearer(admin))
    assert rotated.json()["previous_secret_valid_until"] is None
    assert_problem(await client.post("/oauth/token", data=token_form(issuer_id, old_secret)), 401)
    await token_for(client, issuer_id, rotated.json()["client_secret"])
