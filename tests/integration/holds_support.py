"""What the tests of requests that hold their caller's row share (``api.deps.AuthorizeHeld``): the ways a client's
access ends — a disable or a rotation without grace through the API, a disable on the server's machine — and a race
between such an ending and a request paused in its transaction, past its check of the caller and before it commits.

On PostgreSQL the ending runs beside the paused request: it waits for the request's commit (the caller's row is
held) or the request sees it (401). On SQLite every writer holds the database's write lock from BEGIN IMMEDIATE, so
the ending always waits: the sequential outcome, the same assertions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.clients import service as clients
from registry.clients.schemas import ClientPublic
from registry.db import transaction
from tests.factories import admin_token, bearer, create_client, create_issuer, token_for

BODY = "BJ-AI-COMMITTEE"
Ending = Callable[[], Coroutine[Any, Any, httpx.Response]]
T = TypeVar("T")


async def issuer_world(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str, str]:
    """(admin token, the body's client id, its token)."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin, code=BODY)
    client_id, secret = await create_client(app, role=Role.issuer, issuer_code=BODY)
    return admin, client_id, await token_for(client, client_id, secret)


def disable(client: httpx.AsyncClient, admin: str, client_id: str) -> Ending:
    async def disable() -> httpx.Response:
        return await client.post(f"/v1/clients/{client_id}/disable", json={"reason": "泄露"}, headers=bearer(admin))

    return disable


def rotate(client: httpx.AsyncClient, admin: str, client_id: str) -> Ending:
    async def rotate() -> httpx.Response:
        path = f"/v1/clients/{client_id}/rotate-secret"
        return await client.post(path, json={"grace": False}, headers=bearer(admin))

    return rotate


def disabled_on_the_server(app: FastAPI, client_id: str) -> Callable[[], Coroutine[Any, Any, ClientPublic]]:
    """``registry clients disable CLIENT_ID``: the bureau's way to lock out a leaked admin client."""

    async def disable() -> ClientPublic:
        async with transaction(app.state.sessions) as session:
            return await clients.set_active(
                session, caller=clients.SERVER_MACHINE, client_id=client_id, active=False, reason="泄露"
            )

    return disable


@dataclass
class Race(Generic[T]):
    answer: httpx.Response  # the paused request's
    ended: T  # what the ending returned
    ended_before_commit: bool | None  # None when the paused step did not run to its end


async def race(
    monkeypatch: pytest.MonkeyPatch,
    module: object,
    name: str,
    request: Callable[[], Coroutine[Any, Any, httpx.Response]],
    ending: Callable[[], Coroutine[Any, Any, T]],
) -> Race[T]:
    """``request`` with ``module.name`` (a step its transaction takes once the caller is checked) paused: the ending
    is sent while it waits, and whether the ending had finished is noted once the step has run, before the commit."""
    real = getattr(module, name)
    checked = asyncio.Event()
    ended: dict[str, asyncio.Task[T]] = {}
    seen: dict[str, bool] = {}

    async def paused(*args: Any, **kwargs: Any) -> Any:
        checked.set()  # past the check of the caller, in the transaction that writes
        await asyncio.sleep(0.5)  # the ending is sent now
        outcome = await real(*args, **kwargs)
        await asyncio.sleep(0.3)
        seen["ended_before_commit"] = ended["task"].done()
        return outcome

    monkeypatch.setattr(module, name, paused)
    asking = asyncio.create_task(request())
    await asyncio.wait_for(checked.wait(), 10)
    ended["task"] = asyncio.create_task(ending())
    answer = await asyncio.wait_for(asking, 30)
    done = await asyncio.wait_for(ended["task"], 30)
    return Race(answer=answer, ended=done, ended_before_commit=seen.get("ended_before_commit"))
