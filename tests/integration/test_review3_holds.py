"""Review of what holds its caller (review 3): issuance held its client's row until it committed
(tests/integration/test_review2_lifecycle.py), but a status change, a recognition answer's re-check and an admin's
writes read the caller with a plain SELECT, so on PostgreSQL a disable committed beside them and they committed after
it. Now each holds the row; and the requests that manage clients lock every admin's row first, in one order, so two
admins at once take turns — a deadlock there would be a 503 at best, never the 200 and 409 asked for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlmodel import col

from registry.auth import client_secrets
from registry.auth.models import ApiClient
from registry.auth.scopes import Role
from registry.catalogue import service as catalogue
from registry.certificates import lifecycle
from registry.clients import service as clients
from registry.db import transaction
from registry.issuers import service as issuers
from registry.keys import service as keys
from registry.recognition import queries, rules
from tests.checks import assert_problem
from tests.factories import (
    admin_token,
    bearer,
    create_client,
    create_issuer,
    issued_certificate,
    issuer_body,
    row_count,
    token_for,
)
from tests.integration.holds_support import BODY, Ending, disable, disabled_on_the_server, issuer_world, race, rotate
from tests.integration.lifecycle_support import act, set_up
from tests.integration.test_bad_inputs import catalogue_entry
from tests.integration.test_recognition import rule_body

_NOW = {"revoke": "revoked", "suspend": "suspended", "reinstate": "valid"}


async def _result(client: httpx.AsyncClient, certificate: dict[str, Any]) -> str:
    response = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert response.status_code == 200, response.text
    result: str = response.json()["result"]
    return result


@pytest.mark.parametrize(
    ("action", "ending"),
    [("revoke", disable), ("suspend", disable), ("reinstate", disable), ("revoke", rotate)],
    ids=["revoke-disable", "suspend-disable", "reinstate-disable", "revoke-rotate-no-grace"],
)
async def test_a_status_change_in_flight_holds_its_body_against_a_disable_or_rotation(
    app: FastAPI,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    action: str,
    ending: Callable[[httpx.AsyncClient, str, str], Ending],
) -> None:
    """Found: the body's client was read without a hold, so on PostgreSQL a disable (or a rotation with no grace)
    sent while the revocation was in its transaction committed at once, and the revocation committed after it: a
    status change by a client already locked out. Expected: the disable waits for the change to commit (the check
    came first); the client's token is refused after it."""
    admin, client_id, token = await issuer_world(app, client)
    certificate = await issued_certificate(client, token)
    number = certificate["number"]
    if action == "reinstate":
        assert (await act(client, token, number, "suspend")).status_code == 200
    ended = ending(client, admin, client_id)
    changing = await race(monkeypatch, lifecycle, "change_status", lambda: act(client, token, number, action), ended)
    assert changing.ended.status_code == 200, changing.ended.text
    assert changing.answer.status_code == 200, changing.answer.text
    assert changing.ended_before_commit is False, "the body's access ended while its status change was being made"
    assert await _result(client, certificate) == _NOW[action]
    assert_problem(await act(client, token, number, "revoke"), 401, slug="unauthenticated")


async def test_the_bureaus_hold_in_flight_holds_the_admin_against_its_disable_on_the_server(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bureau's hold (an admin's suspension) while `registry clients disable` locks that admin client out."""
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    holding = await race(
        monkeypatch,
        lifecycle,
        "change_status",
        lambda: act(client, world.admin, number, "suspend"),
        disabled_on_the_server(app, world.admin_client_id),
    )
    assert holding.ended.active is False
    assert holding.answer.status_code == 200, holding.answer.text
    assert holding.ended_before_commit is False, "the admin was disabled while its hold was being made"
    assert await _result(client, certificate) == "suspended"
    assert_problem(await act(client, world.admin, number, "revoke"), 401, slug="unauthenticated")


async def _recognition_queries(client: httpx.AsyncClient, admin: str) -> int:
    response = await client.get("/v1/audit", params={"action": "recognition.query"}, headers=bearer(admin))
    assert response.status_code == 200, response.text
    return len(response.json()["data"])


async def test_a_recognition_answer_in_flight_holds_the_partner_against_its_disable(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found: the partner was checked again before its answer's audit records with a plain SELECT, so a disable sent
    meanwhile committed first and the answer (signed for that partner) was recorded and given after it. Expected: the
    disable waits for the records to commit; the partner's token is refused after it."""
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    partner_id, secret = await create_client(app, role=Role.partner, region="TJ")
    partner = bearer(await token_for(client, partner_id, secret))
    params = {"holder_name": "张三", "purpose": "hiring"}

    async def ask() -> httpx.Response:
        return await client.get(f"/v1/recognition/{number}", params=params, headers=partner)

    answering = await race(monkeypatch, queries, "record", ask, disable(client, world.admin, partner_id))
    assert answering.ended.status_code == 200, answering.ended.text
    assert answering.answer.status_code == 200, answering.answer.text
    assert answering.answer.json()["number"] == number
    assert answering.ended_before_commit is False, "the partner was disabled while its answer was being recorded"
    assert await _recognition_queries(client, world.admin) == 1
    assert_problem(await ask(), 401, slug="unauthenticated")


@dataclass(frozen=True)
class AdminWrite:
    module: object
    step: str  # the service function the route calls once its caller is checked
    path: str
    body: Callable[[], dict[str, Any]]
    table: str


_ADMIN_WRITES = {
    "catalogue": AdminWrite(catalogue, "add_entry", "/v1/catalogue", catalogue_entry, "catalogue_entries"),
    "issuers": AdminWrite(issuers, "create", "/v1/issuers", lambda: issuer_body("BJ-NEW-COMMITTEE"), "issuers"),
    "clients": AdminWrite(
        clients, "create", "/v1/clients", lambda: {"role": "partner", "name": "天津", "region": "TJ"}, "api_clients"
    ),
    "recognition-rules": AdminWrite(rules, "create", "/v1/recognition/rules", rule_body, "recognition_rules"),
}


def _post(
    client: httpx.AsyncClient, write: AdminWrite, admin: str
) -> Callable[[], Coroutine[Any, Any, httpx.Response]]:
    async def post() -> httpx.Response:
        return await client.post(write.path, json=write.body(), headers=bearer(admin))

    return post


@pytest.mark.parametrize("kind", list(_ADMIN_WRITES))
async def test_an_admins_write_in_flight_holds_it_against_its_disable_on_the_server(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Found: an admin's writes read their caller without a hold, so `registry clients disable` of a leaked admin
    client committed beside a write of its in flight, which committed after it. Expected: the disable waits."""
    write = _ADMIN_WRITES[kind]
    admin_id, secret = await create_client(app, role=Role.admin)
    admin = await token_for(client, admin_id, secret)
    before = await row_count(app, write.table)
    writing = await race(
        monkeypatch, write.module, write.step, _post(client, write, admin), disabled_on_the_server(app, admin_id)
    )
    assert writing.ended.active is False
    assert writing.answer.status_code == 201, writing.answer.text
    assert writing.ended_before_commit is False, "the admin was disabled while its write was being made"
    assert await row_count(app, write.table) == before + 1
    assert_problem(await client.get("/v1/clients", headers=bearer(admin)), 401, slug="unauthenticated")


async def test_a_clients_write_checks_its_admin_again_once_the_admins_rows_are_locked(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """An admin's request about its own client (a rotation of its secret here) checks its caller once without a
    lock, then locks every admin's row, then checks it again, held. A disable that commits between the two is seen by
    the second check (401, no new secret): the first alone would let the admin rotate after it was disabled."""
    admin_id, secret = await create_client(app, role=Role.admin)
    admin = await token_for(client, admin_id, secret)

    async def rotate_own() -> httpx.Response:
        path = f"/v1/clients/{admin_id}/rotate-secret"
        return await client.post(path, json={"grace": False}, headers=bearer(admin))

    writing = await race(monkeypatch, clients, "lock_admin_clients", rotate_own, disabled_on_the_server(app, admin_id))
    assert writing.ended.active is False
    if backend == "postgresql":  # the disable committed while the request waited for the admins' rows
        assert_problem(writing.answer, 401, slug="unauthenticated")
        assert "client_secret" not in writing.answer.text
        assert (await _token_answer(client, admin_id, secret)).status_code == 401  # the old secret, still its own
        return
    # SQLite: the request holds the write lock from its first check on; the disable waits for it to commit.
    assert writing.answer.status_code == 200, writing.answer.text
    assert writing.ended_before_commit is False
    assert (await _token_answer(client, admin_id, writing.answer.json()["client_secret"])).status_code == 401


async def _enabled_admins(app: FastAPI) -> int:
    query = select(func.count()).where(col(ApiClient.role) == Role.admin, col(ApiClient.active).is_(True))
    async with transaction(app.state.sessions) as session:
        return int((await session.execute(query)).scalar_one())


@pytest.mark.parametrize("whom", ["themselves", "each-other"])
async def test_two_admins_disabling_at_once_take_turns_and_never_deadlock(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, whom: str
) -> None:
    """Two admin clients disabling at the same moment. Each request's caller is held; had each held its own row and
    then asked for every enabled admin's (a disable does), A's and B's would wait on each other: PostgreSQL breaks
    the deadlock by failing one (503). Taking the admins' rows first, in one order, they take turns: one disables
    itself, the other is then the last enabled admin (409); disabling each other is 403 for both, as ever."""
    made = [await create_client(app, role=Role.admin) for _ in range(2)]
    tokens = [await token_for(client, *pair) for pair in made]
    ids = [client_id for client_id, _secret in made]
    targets = ids if whom == "themselves" else ids[::-1]
    real = clients.set_active
    arrived: list[str] = []
    both = asyncio.Event()

    async def meeting(*args: Any, **kwargs: Any) -> Any:
        arrived.append(kwargs["client_id"])
        if len(arrived) == 2:
            both.set()
        with contextlib.suppress(TimeoutError):  # the other one is waiting for its turn: go on alone
            await asyncio.wait_for(both.wait(), 1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(clients, "set_active", meeting)
    answers = await asyncio.gather(
        *(
            client.post(f"/v1/clients/{target}/disable", json={"reason": "轮换"}, headers=bearer(token))
            for target, token in zip(targets, tokens, strict=True)
        )
    )
    statuses = sorted(answer.status_code for answer in answers)
    if whom == "each-other":
        assert statuses == [403, 403], [answer.text for answer in answers]
        assert await _enabled_admins(app) == 2
        return
    assert statuses == [200, 409], [answer.text for answer in answers]
    assert_problem(next(a for a in answers if a.status_code == 409), 409, slug="last-admin-client")
    assert await _enabled_admins(app) == 1


async def _token_answer(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await client.post("/oauth/token", data=form)


@pytest.mark.parametrize("ending", ["rotate-no-grace", "disable-then-enable"])
async def test_a_token_being_issued_holds_its_client_against_a_rotation_or_disable(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    """Found: the token request read its client with a plain SELECT, so on PostgreSQL a rotation without grace (or a
    disable) committed between the secret's check and the token's signing, and the token, dated a second after the
    cut it set (``tokens_not_before``), was good: the old, leaked secret's token outlived the rotation that ended it,
    and the disable once the client was enabled again (disable, rotate, enable). Expected: the ending waits for the
    token request to commit, and its cut then refuses the token (401)."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin, code=BODY)
    client_id, secret = await create_client(app, role=Role.issuer, issuer_code=BODY)
    real = client_secrets.opens
    checked, ended = asyncio.Event(), asyncio.Event()

    def end() -> Coroutine[Any, Any, httpx.Response]:
        if ending == "rotate-no-grace":
            return rotate(client, admin, client_id)()
        return disable(client, admin, client_id)()

    async def ending_task() -> httpx.Response:
        try:
            return await end()
        finally:
            ended.set()

    def opens(*args: Any, **kwargs: Any) -> bool:
        checked.set()  # the secret is checked: the token is signed next, in the same transaction
        return real(*args, **kwargs)

    async def signed_later(*args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(TimeoutError):  # held: the ending waits for this request's commit
            await asyncio.wait_for(ended.wait(), 1.5)
        await asyncio.sleep(1.1)  # the token is dated in a later whole second than an ending that went through
        return await real_key(*args, **kwargs)

    real_key = keys.registry_token_key
    monkeypatch.setattr(client_secrets, "opens", opens)
    monkeypatch.setattr(keys, "registry_token_key", signed_later)
    asking = asyncio.create_task(_token_answer(client, client_id, secret))
    await asyncio.wait_for(checked.wait(), 10)
    stopping = asyncio.create_task(ending_task())
    answer, done = await asyncio.wait_for(asyncio.gather(asking, stopping), 30)
    monkeypatch.setattr(keys, "registry_token_key", real_key)
    assert answer.status_code == 200, answer.text  # the secret was good when it was checked
    assert done.status_code == 200, done.text
    if ending == "disable-then-enable":
        enabled = await client.post(f"/v1/clients/{client_id}/enable", json={"reason": "换新"}, headers=bearer(admin))
        assert enabled.status_code == 200, enabled.text
    refused = await client.get("/v1/certificates", headers=bearer(answer.json()["access_token"]))
    assert_problem(refused, 401, slug="unauthenticated")


async def test_a_disable_waiting_for_a_bodys_status_change_holds_up_no_other_admin(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """Found: every request managing clients locked every admin's row before its own work, so a disable of a body's
    client waiting for that body's request in flight (a revocation here; a batch of 10,000 rows alike) kept every
    admin's row locked for as long: another admin's write (any held request of an admin, its token too) waited for
    the body's request, or gave up at the lock timeout (503). Expected on PostgreSQL: only an admin's own disable or
    rotation takes the admins' rows; a disable of a body's client waits for that body alone, and the other admin's
    write is answered meanwhile."""
    admin, client_id, token = await issuer_world(app, client)
    number = (await issued_certificate(client, token))["number"]
    other_id, other_secret = await create_client(app, role=Role.admin)
    other = await token_for(client, other_id, other_secret)
    held, waiting, written = asyncio.Event(), asyncio.Event(), asyncio.Event()
    seen: dict[str, bool] = {}
    real_change, real_set_active = lifecycle.change_status, clients.set_active

    async def change_status(*args: Any, **kwargs: Any) -> Any:
        held.set()  # the body's row is held until this revocation commits
        with contextlib.suppress(TimeoutError):  # held up behind the body: the write waits for this one
            await asyncio.wait_for(written.wait(), 3)
        seen["written_while_held"] = written.is_set()
        return await real_change(*args, **kwargs)

    async def set_active(*args: Any, **kwargs: Any) -> Any:
        waiting.set()  # the disable's caller is checked and held: it now waits for the body's row
        return await real_set_active(*args, **kwargs)

    async def write() -> httpx.Response:
        with contextlib.suppress(TimeoutError):  # SQLite: the disable waits for the write lock, before set_active
            await asyncio.wait_for(waiting.wait(), 1)
        try:
            return await client.post("/v1/catalogue", json=catalogue_entry(), headers=bearer(other))
        finally:
            written.set()

    monkeypatch.setattr(lifecycle, "change_status", change_status)
    monkeypatch.setattr(clients, "set_active", set_active)
    revoking = asyncio.create_task(act(client, token, number, "revoke"))
    await asyncio.wait_for(held.wait(), 10)
    disabling = asyncio.create_task(disable(client, admin, client_id)())
    answers = await asyncio.wait_for(asyncio.gather(revoking, disabling, write()), 30)
    assert [answer.status_code for answer in answers] == [200, 200, 201], [answer.text for answer in answers]
    # SQLite has one writer at a time: the revocation holds the write lock and every other write waits for it.
    assert seen["written_while_held"] is (backend == "postgresql"), "another admin's write waited for the body"
    assert_problem(await act(client, token, number, "suspend"), 401, slug="unauthenticated")
