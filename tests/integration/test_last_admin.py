"""The registry never loses its last admin client over the API: an admin client manages only itself there, so the last
enabled one disabling itself is refused (409), even when two admins disable themselves at the same moment. On the
server's machine (``registry clients disable``) the operator still may: it is where an admin client is made again."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.audit import service as audit
from registry.auth.scopes import Role
from registry.clients import service as clients
from registry.db import transaction
from tests.checks import assert_problem
from tests.factories import bearer, create_client, token_for

REASON = {"reason": "leaving the bureau"}
CHINESE = {"Accept-Language": "zh-CN"}
LAST_ADMIN = "https://talent-registry.example/problems/last-admin-client"


async def admin(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str]:
    """An admin client's id and a token of it."""
    admin_id, admin_secret = await create_client(app, role=Role.admin)
    return admin_id, await token_for(client, admin_id, admin_secret)


async def is_active(app: FastAPI, client_id: str) -> bool:
    async with transaction(app.state.sessions) as session:
        return (await clients.get(session, client_id)).active


async def test_the_last_enabled_admin_client_cannot_disable_itself(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin_id, token = await admin(app, client)

    refused = await client.post(f"/v1/clients/{admin_id}/disable", json=REASON, headers=bearer(token))

    problem = assert_problem(refused, 409)
    assert problem["type"] == LAST_ADMIN
    assert "last enabled admin client" in problem["detail"]
    assert "registry clients create --role admin" in problem["detail"]
    chinese = await client.post(f"/v1/clients/{admin_id}/disable", json=REASON, headers={**bearer(token), **CHINESE})
    said = assert_problem(chinese, 409)
    assert said["title"] == "不能通过 API 停用最后一个启用的管理员客户端"
    assert "最后一个启用的管理员客户端" in said["detail"]
    assert await is_active(app, admin_id)
    assert (await client.get("/v1/clients", headers=bearer(token))).status_code == 200  # its token still works


async def test_an_admin_client_disables_itself_while_another_stays_enabled(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    first_id, first = await admin(app, client)
    second_id, second = await admin(app, client)

    disabled = await client.post(f"/v1/clients/{first_id}/disable", json=REASON, headers=bearer(first))
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False

    refused = await client.post(f"/v1/clients/{second_id}/disable", json=REASON, headers=bearer(second))
    assert assert_problem(refused, 409)["type"] == LAST_ADMIN
    assert await is_active(app, second_id)


async def test_a_disabled_admin_client_does_not_count_as_the_one_left(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin_id, token = await admin(app, client)
    other_id, _other_secret = await create_client(app, role=Role.admin)
    async with transaction(app.state.sessions) as session:
        await clients.set_active(session, caller=clients.SERVER_MACHINE, client_id=other_id, active=False, reason="x")

    refused = await client.post(f"/v1/clients/{admin_id}/disable", json=REASON, headers=bearer(token))

    assert assert_problem(refused, 409)["type"] == LAST_ADMIN
    assert await is_active(app, admin_id)


async def test_the_last_admin_still_disables_other_clients(app: FastAPI, client: httpx.AsyncClient) -> None:
    _admin_id, token = await admin(app, client)
    partner_id, _secret = await create_client(app, role=Role.partner, region="TJ")

    disabled = await client.post(f"/v1/clients/{partner_id}/disable", json=REASON, headers=bearer(token))

    assert disabled.status_code == 200, disabled.text
    assert not await is_active(app, partner_id)


async def test_the_server_machine_may_still_disable_the_last_admin_client(app: FastAPI) -> None:
    admin_id, _secret = await create_client(app, role=Role.admin)
    async with transaction(app.state.sessions) as session:
        changed = await clients.set_active(
            session, caller=clients.SERVER_MACHINE, client_id=admin_id, active=False, reason="operator's decision"
        )
    assert changed.active is False
    assert not await is_active(app, admin_id)


async def test_two_admins_disabling_themselves_at_once_leave_one_enabled(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_id, first = await admin(app, client)
    second_id, second = await admin(app, client)
    # Each disable, once it has decided, waits (a while) for the other to have decided too before it records: without
    # a lock on the admin clients both would decide "another admin is left" and both would commit.
    arrived = 0
    both = asyncio.Event()
    append = audit.append

    async def append_when_both_decided(*args: Any, **kwargs: Any) -> Any:
        nonlocal arrived
        if kwargs.get("action") == "client.disabled":
            arrived += 1
            if arrived == 2:
                both.set()
            # Timing out: the other is waiting for this one's lock, and decides once this one is done.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(both.wait(), timeout=1.5)
        return await append(*args, **kwargs)

    monkeypatch.setattr(audit, "append", append_when_both_decided)

    answers = await asyncio.gather(
        client.post(f"/v1/clients/{first_id}/disable", json=REASON, headers=bearer(first)),
        client.post(f"/v1/clients/{second_id}/disable", json=REASON, headers=bearer(second)),
    )

    assert sorted(answer.status_code for answer in answers) == [200, 409], [answer.text for answer in answers]
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert assert_problem(refused, 409)["type"] == LAST_ADMIN
    assert [await is_active(app, first_id), await is_active(app, second_id)].count(True) == 1


async def test_the_last_admin_rotating_its_secret_with_no_grace_keeps_its_access(
    no_grace: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """A rotation ends the old secret and its tokens at once, but answers the new secret to the admin that asked: the
    registry still has an admin over the API."""
    app, client = no_grace
    admin_id, token = await admin(app, client)

    rotated = await client.post(f"/v1/clients/{admin_id}/rotate-secret", headers=bearer(token))

    assert rotated.status_code == 200, rotated.text
    fresh = await token_for(client, admin_id, rotated.json()["client_secret"])
    assert (await client.get("/v1/clients", headers=bearer(fresh))).status_code == 200
    assert await is_active(app, admin_id)
