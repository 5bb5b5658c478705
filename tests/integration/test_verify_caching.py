"""Verification answers are cacheable (DESIGN: a CDN absorbs scan storms): a short max-age and a weak ETag that
changes exactly when the answer does, its checked_at included."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from api.app import create_app, dispose
from api.routes import verify
from registry.config import Settings
from registry.verification import verifier
from tests.factories import bearer, issued_certificate, ready_issuer


async def _certificate(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    issuer = await ready_issuer(app, client)
    return issuer, await issued_certificate(client, issuer)


async def test_a_verification_answer_may_be_cached_briefly_and_revalidated(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, certificate = await _certificate(app, client)
    first = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "public, max-age=30, s-maxage=29"
    tag = first.headers["ETag"]
    assert tag.startswith('W/"')

    # A 304 lets a cache keep the body it holds: only for the very same answer, checked_at included.
    checked = datetime.fromisoformat(first.json()["checked_at"])
    monkeypatch.setattr(verifier, "utcnow", lambda: checked)
    not_modified = await client.get(f"/v1/verify/{certificate['qr_token']}", headers={"If-None-Match": tag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == tag
    listed = await client.get(
        f"/v1/verify/{certificate['qr_token']}", headers={"If-None-Match": f'"other", {tag.removeprefix("W/")}'}
    )
    assert listed.status_code == 304
    stale = await client.get(f"/v1/verify/{certificate['qr_token']}", headers={"If-None-Match": 'W/"0000"'})
    assert stale.status_code == 200
    assert stale.json()["result"] == "valid"


async def test_an_answer_checked_again_is_never_not_modified(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The tag covers checked_at: a cache revalidating an expired answer gets the new one, with the time it was
    checked, not a 304 that would let it go on serving the old checked_at (of any age) as a fresh answer."""
    _, certificate = await _certificate(app, client)
    first = await client.get(f"/v1/verify/{certificate['qr_token']}")
    again = await client.get(f"/v1/verify/{certificate['qr_token']}", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200
    assert {**again.json(), "checked_at": None} == {**first.json(), "checked_at": None}
    assert again.json()["checked_at"] > first.json()["checked_at"]
    assert again.headers["ETag"] != first.headers["ETag"]


async def test_the_etag_changes_when_the_certificate_is_revoked(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer, certificate = await _certificate(app, client)
    tag = (await client.get(f"/v1/verify/{certificate['qr_token']}")).headers["ETag"]
    revoked = await client.post(
        f"/v1/certificates/{certificate['number']}/revoke",
        json={"reason": "found to be forged", "reason_code": "fraud"},
        headers=bearer(issuer),
    )
    assert revoked.status_code == 200, revoked.text
    answer = await client.get(f"/v1/verify/{certificate['qr_token']}", headers={"If-None-Match": tag})
    assert answer.status_code == 200
    assert answer.json()["result"] == "revoked"
    assert answer.headers["ETag"] != tag


async def test_verification_by_number_and_misses_are_not_cached(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, certificate = await _certificate(app, client)
    by_number = await client.post("/v1/verify", json={"number": certificate["number"], "holder_name": "张三"})
    assert by_number.status_code == 200
    assert by_number.headers["Cache-Control"] == "no-store"
    assert "ETag" not in by_number.headers
    missing = await client.get("/v1/verify/" + "A" * 24)
    assert missing.status_code == 404
    assert missing.headers["Cache-Control"] == "no-store"  # no cache may keep a miss, with or without heuristics
    assert "ETag" not in missing.headers
    assert missing.json()["status"] == 404


async def test_max_age_zero_turns_caching_off(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"verify_max_age_seconds": 0}))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://registry.test"
        ) as client:
            _, certificate = await _certificate(app, client)
            answer = await client.get(f"/v1/verify/{certificate['qr_token']}")
            assert answer.status_code == 200
            assert answer.headers["Cache-Control"] == "no-store"
            assert "ETag" not in answer.headers
    finally:
        await dispose(app)


async def test_the_scan_route_answers_exactly_as_the_same_endpoint_on_a_plain_route(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ScanRoute skips FastAPI's per-request parameter handling for speed (see api/routes/verify.py); it must not
    change a single answer. The same endpoint is mounted on an ordinary route and both are asked the same things."""
    scan = next(r for r in verify.router.routes if isinstance(r, APIRoute) and r.path == "/v1/verify/{token}")
    assert isinstance(scan, verify.ScanRoute)
    plain = APIRouter()
    plain.add_api_route("/plain-verify/{token}", verify.verify_token, methods=["GET"])
    app.include_router(plain)
    _, certificate = await _certificate(app, client)
    token = certificate["qr_token"]
    first = await client.get(f"/v1/verify/{token}")
    tag = first.headers["ETag"]
    # One checked_at for every answer, so that both routes' tags (which cover it) can be compared, and a 304 is seen.
    checked = datetime.fromisoformat(first.json()["checked_at"])
    monkeypatch.setattr(verifier, "utcnow", lambda: checked)
    for path, headers in [
        (token, {}),
        (token, {"If-None-Match": tag}),
        (token, {"If-None-Match": 'W/"0000"'}),
        ("x" * 24, {}),
        ("short", {}),
        ("%E4%B8%AD" * 8, {}),
    ]:
        fast = await client.get(f"/v1/verify/{path}", headers=headers)
        slow = await client.get(f"/plain-verify/{path}", headers=headers)
        if headers.get("If-None-Match") == tag:
            assert fast.status_code == 304, path
        assert (fast.status_code, _comparable(fast)) == (slow.status_code, _comparable(slow)), path
        for name in ("content-type", "cache-control", "etag"):
            assert fast.headers.get(name) == slow.headers.get(name), (path, name)


def _comparable(response: httpx.Response) -> object:
    if not response.content:
        return None
    body = response.json()
    return {key: value for key, value in body.items() if key not in ("checked_at", "instance")}
