"""No cache keeps what only its caller should see: an answer whose route says nothing about caching is no-store
(api/caching.py), while the answers a cache may keep still say so themselves. Before, an evaluation body's
certificate list, a certificate (the holder's name) and its history, and a new API client's secret carried no
Cache-Control: nginx, which skips requests with credentials, kept none of them, but any other cache or a browser
was free to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from api.caching import NoStoreByDefault
from registry.auth.scopes import Role
from registry.verification import verifier
from tests.factories import bearer, create_client, issued_certificate, ready_issuer, token_for
from tests.integration.lifecycle_support import set_up


async def test_an_evaluation_bodys_certificates_and_their_history_are_never_stored(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    number = (await issued_certificate(client, issuer))["number"]
    answers = [
        await client.get(path, headers=bearer(issuer))
        for path in ("/v1/certificates", f"/v1/certificates/{number}", f"/v1/certificates/{number}/events")
    ]
    answers.append(await client.head(f"/v1/certificates/{number}", headers=bearer(issuer)))
    answers.append(
        await client.post(f"/v1/certificates/{number}/suspend", json={"reason": "checking"}, headers=bearer(issuer))
    )
    for answer in answers:
        assert answer.status_code == 200, (answer.request.url, answer.text)
        assert answer.headers["cache-control"] == "no-store", answer.request.url


async def test_a_new_clients_secret_and_a_rotated_one_are_never_stored(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    created = await client.post(
        "/v1/clients", json={"role": "partner", "name": "天津市人社局", "region": "TJ"}, headers=bearer(world.admin)
    )
    assert created.status_code == 201, created.text
    assert "client_secret" in created.json()
    rotated = await client.post(f"/v1/clients/{world.issuer_client_id}/rotate-secret", headers=bearer(world.admin))
    assert rotated.status_code == 200, rotated.text
    listed = await client.get("/v1/clients", headers=bearer(world.admin))
    for answer in (created, rotated, listed):
        assert answer.headers["cache-control"] == "no-store", answer.request.url


def _is_the_default(middleware: object) -> bool:
    return middleware is NoStoreByDefault


async def test_the_client_routes_say_no_store_themselves(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Belt and braces: the answers that hold a secret are no-store even without the default."""
    app.user_middleware = [m for m in app.user_middleware if not _is_the_default(m.cls)]  # before the first request
    admin = await token_for(client, *await create_client(app, role=Role.admin))
    created = await client.post(
        "/v1/clients", json={"role": "partner", "name": "天津", "region": "TJ"}, headers=bearer(admin)
    )
    assert created.status_code == 201, created.text
    rotated = await client.post(f"/v1/clients/{created.json()['client_id']}/rotate-secret", headers=bearer(admin))
    assert rotated.status_code == 200, rotated.text
    assert [created.headers.get("cache-control"), rotated.headers.get("cache-control")] == ["no-store", "no-store"]


async def test_refusals_and_health_checks_are_never_stored(app: FastAPI, client: httpx.AsyncClient) -> None:
    answers = [
        await client.get("/v1/certificates"),  # 401, no credentials
        await client.get("/v1/certificates", headers={"Cookie": "session=x"}),
        await client.get("/v1/no-such-thing"),  # 404: heuristically cacheable without Cache-Control
        await client.get("/healthz"),
    ]
    assert [a.status_code for a in answers] == [401, 401, 404, 200]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.request.url


async def test_a_public_verification_keeps_its_own_max_age_and_its_304(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = await ready_issuer(app, client)
    token = (await issued_certificate(client, issuer))["qr_token"]
    seconds = app.state.context.settings.verify_max_age_seconds
    own = f"public, max-age={seconds}, s-maxage={seconds - 1}"
    first = await client.get(f"/v1/verify/{token}")
    checked = datetime.fromisoformat(first.json()["checked_at"])
    monkeypatch.setattr(verifier, "utcnow", lambda: checked)  # the same answer again, so its tag matches
    head = await client.head(f"/v1/verify/{token}")
    again = await client.get(f"/v1/verify/{token}", headers={"If-None-Match": first.headers["etag"]})
    assert [first.status_code, head.status_code, again.status_code] == [200, 200, 304]
    for answer in (first, head, again):
        assert answer.headers.get_list("cache-control") == [own]
        assert answer.headers["etag"] == first.headers["etag"]


async def _answer(headers: list[tuple[bytes, bytes]], status: int = 200) -> list[Message]:
    """What ``NoStoreByDefault`` sends on for an answer with ``headers``, asked with credentials."""

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": "GET", "headers": [(b"authorization", b"Bearer x")]}
    await NoStoreByDefault(route)(scope, receive, send)
    return sent


async def test_an_answer_that_says_how_to_cache_it_is_untouched() -> None:
    for own in (b"private, max-age=86400", b"public, max-age=60"):
        for name in (b"cache-control", b"Cache-Control"):
            start = (await _answer([(b"etag", b'"a"'), (name, own)]))[0]
            assert start["headers"] == [(b"etag", b'"a"'), (name, own)]
    # A 304's headers replace the stored answer's: a no-store there would drop what the cache revalidated.
    assert (await _answer([(b"etag", b'"a"')], status=304))[0]["headers"] == [(b"etag", b'"a"')]
    silent = await _answer([(b"content-type", b"application/json")])
    assert silent[0]["headers"] == [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    assert silent[1] == {"type": "http.response.body", "body": b""}
