"""Attacks on the registry's authorisation by callers with legitimate, low-privilege access: another evaluation
body, another holder, a client whose access the bureau ends while its request is on its way, and a body undoing the
bureau's hold. Each test is a real request with the status and body the caller gets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.certificates import numbering
from registry.recognition import queries
from tests.checks import assert_problem
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_client,
    create_issuer,
    issued_certificate,
    resident_id,
    row_count,
    token_for,
)

BODY_A = "BJ-AI-COMMITTEE"
BODY_B = "BJ-OTHER-COMMITTEE"


@dataclass(frozen=True, slots=True)
class Bodies:
    admin: str
    a: str  # body A's issuer token
    a_client_id: str
    b: str  # body B's issuer token
    certificate: dict[str, Any]  # issued by body A
    holder: str  # a holder token of someone else (body B's holder)


async def _bodies(app: FastAPI, client: httpx.AsyncClient) -> Bodies:
    admin = await admin_token(app, client)
    await create_issuer(client, admin, code=BODY_A)
    await create_issuer(client, admin, code=BODY_B)
    a_id, a_secret = await create_client(app, role=Role.issuer, issuer_code=BODY_A)
    b_id, b_secret = await create_client(app, role=Role.issuer, issuer_code=BODY_B)
    a, b = await token_for(client, a_id, a_secret), await token_for(client, b_id, b_secret)
    certificate = await issued_certificate(client, a)
    other = {"name": "乙", "id_type": "resident_id", "id_number": resident_id()}
    theirs = await issued_certificate(client, b, holder=other)
    claim = {"id_type": "resident_id", "id_number": other["id_number"], "claim_code": theirs["claim_code"]}
    session = await client.post("/v1/holder/sessions", json=claim)
    assert session.status_code == 201, session.text
    return Bodies(admin, a, a_id, b, certificate, session.json()["access_token"])


def _unissued_number() -> str:
    """A well-formed number (right check character) that names no certificate."""
    return numbering.new_number(region="BJ", cert_type="title", year=2026)


# Every route that takes a certificate number, with a body where it needs one, and bodies the route refuses: another
# body's caller gets the same 404 whatever the body says, never a 422 that shows the number was worth checking. (Text
# that is no JSON at all is refused before any look-up, 422 for every number alike.)
_BODY_ROUTES = [
    ("GET", "", None),
    ("GET", ".pdf", None),
    ("GET", "/qr.png", None),
    ("GET", "/qr.svg", None),
    ("GET", "/credential", None),
    ("GET", "/events", None),
    ("POST", "/revoke", {"reason": "试探", "reason_code": "fraud"}),
    ("POST", "/suspend", {"reason": "试探"}),
    ("POST", "/reinstate", {"reason": "试探"}),
    ("POST", "/correct", {"reason": "试探", "holder_name": "丙"}),
    ("POST", "/revoke", "{not json"),
    ("POST", "/correct", {"unknown": True}),
]


def _same_answer(mine: httpx.Response, unknown: httpx.Response, number: str, missing: str, status: int = 404) -> None:
    """The answer about someone else's certificate is the answer about no certificate, word for word."""
    assert mine.status_code == unknown.status_code == status, (mine.text, unknown.text)
    ours, theirs = mine.json(), unknown.json()
    for said in (ours, theirs):
        said.pop("instance", None)
    assert json.loads(json.dumps(ours).replace(number, "<N>")) == json.loads(json.dumps(theirs).replace(missing, "<N>"))


@pytest.mark.parametrize(("method", "suffix", "payload"), _BODY_ROUTES)
async def test_another_body_gets_the_answer_of_a_certificate_that_does_not_exist(
    app: FastAPI, client: httpx.AsyncClient, method: str, suffix: str, payload: Any
) -> None:
    world = await _bodies(app, client)
    number, missing = world.certificate["number"], _unissued_number()

    async def ask(about: str) -> httpx.Response:
        sent: dict[str, Any] = {"headers": bearer(world.b)}
        if isinstance(payload, str):
            sent = {"headers": {**bearer(world.b), "Content-Type": "application/json"}, "content": payload}
        elif payload is not None:
            sent["json"] = payload
        return await client.request(method, f"/v1/certificates/{about}{suffix}", **sent)

    _same_answer(await ask(number), await ask(missing), number, missing, 422 if isinstance(payload, str) else 404)
    # And nothing changed: body A still reads its certificate as it issued it.
    own = await client.get(f"/v1/certificates/{number}", headers=bearer(world.a))
    assert own.status_code == 200, own.text
    assert own.json()["status"] == "active"
    assert own.json()["holder"]["name"] == world.certificate["holder"]["name"]


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/v1/certificates/{n}/qr.png", None),
        ("GET", "/v1/certificates/{n}/credential", None),
        ("GET", "/v1/holder/certificates/{n}.pdf", None),
        ("POST", "/v1/holder/share-links", {"number": "{n}", "purpose": "hiring"}),
    ],
)
async def test_another_holder_gets_the_answer_of_a_certificate_that_does_not_exist(
    app: FastAPI, client: httpx.AsyncClient, method: str, path: str, payload: dict[str, str] | None
) -> None:
    world = await _bodies(app, client)
    number, missing = world.certificate["number"], _unissued_number()

    async def ask(about: str) -> httpx.Response:
        body = {key: value.replace("{n}", about) for key, value in payload.items()} if payload else None
        return await client.request(method, path.replace("{n}", about), json=body, headers=bearer(world.holder))

    _same_answer(await ask(number), await ask(missing), number, missing)


async def _upload_slowly(
    client: httpx.AsyncClient, token: str, *, meanwhile: Any
) -> tuple[httpx.Response, httpx.Response]:
    """A batch whose rows are still arriving when ``meanwhile()`` runs: (the batch's answer, meanwhile's)."""
    payload = json.dumps({"certificates": [certificate_body(), certificate_body()]}).encode()
    arriving, resume = asyncio.Event(), asyncio.Event()

    async def rows() -> AsyncIterator[bytes]:
        yield payload[:16]
        arriving.set()
        await resume.wait()
        yield payload[16:]

    headers = {**bearer(token), "Idempotency-Key": "slow-upload", "Content-Type": "application/json"}
    batch = asyncio.create_task(client.post("/v1/certificate-batches", content=rows(), headers=headers))
    await asyncio.wait_for(arriving.wait(), 10)
    await asyncio.sleep(0.1)  # the request is past its authorisation and waiting for the rest of its body
    try:
        done = await meanwhile()
    finally:
        resume.set()
    return await asyncio.wait_for(batch, 30), done


async def test_a_batch_still_uploading_when_its_client_is_disabled_issues_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Found: the batch route checked the token before the upload only (no lock held while rows arrive), so a client
    the bureau disabled meanwhile — a leaked secret — still issued every row: 201 with numbers and claim codes."""
    world = await _bodies(app, client)
    before = await row_count(app, "certificates")

    async def disable() -> httpx.Response:
        reason = {"reason": "secret leaked"}
        return await client.post(f"/v1/clients/{world.a_client_id}/disable", json=reason, headers=bearer(world.admin))

    answer, disabled = await _upload_slowly(client, world.a, meanwhile=disable)
    assert disabled.status_code == 200, disabled.text
    problem = assert_problem(answer, 401, slug="unauthenticated")
    assert problem["detail"] == "the client of this access token is no longer active"
    assert "claim_code" not in answer.text
    assert await row_count(app, "certificates") == before


async def test_a_batch_still_uploading_when_its_tokens_are_ended_by_a_secret_rotation_issues_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await _bodies(app, client)
    before = await row_count(app, "certificates")

    async def rotate() -> httpx.Response:
        path = f"/v1/clients/{world.a_client_id}/rotate-secret"
        return await client.post(path, json={"grace": False}, headers=bearer(world.admin))

    answer, rotated = await _upload_slowly(client, world.a, meanwhile=rotate)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["previous_secret_valid_until"] is None
    problem = assert_problem(answer, 401, slug="unauthenticated")
    assert "before its client was disabled" in problem["detail"]
    assert await row_count(app, "certificates") == before


async def test_a_batch_uploaded_by_an_active_client_is_still_issued(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await _bodies(app, client)

    async def look() -> httpx.Response:
        return await client.get("/v1/certificates", headers=bearer(world.a))

    answer, listed = await _upload_slowly(client, world.a, meanwhile=look)
    assert listed.status_code == 200, listed.text
    assert answer.status_code == 201, answer.text
    assert [row["row"] for row in answer.json()["certificates"]] == [1, 2]


async def test_a_partner_disabled_while_its_question_is_being_answered_is_given_nothing(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found: recognition questions are authorised before the (possibly forwarded, slow) answering, on a session of
    their own; a partner agency disabled meanwhile still got the certificate's masked facts and the decision."""
    world = await _bodies(app, client)
    partner_id, partner_secret = await create_client(app, role=Role.partner, region="TJ")
    partner = await token_for(client, partner_id, partner_secret)
    answering, resume = asyncio.Event(), asyncio.Event()
    answer_items = queries.answer_items

    async def slowly(*args: Any, **kwargs: Any) -> Any:
        answering.set()
        await resume.wait()
        return await answer_items(*args, **kwargs)

    monkeypatch.setattr(queries, "answer_items", slowly)
    number, name = world.certificate["number"], world.certificate["holder"]["name"]
    path = f"/v1/recognition/{number}"
    asked = asyncio.create_task(
        client.get(path, params={"holder_name": name, "purpose": "hiring"}, headers=bearer(partner))
    )
    await asyncio.wait_for(answering.wait(), 10)
    try:
        reason = {"reason": "agreement ended"}
        disabled = await client.post(f"/v1/clients/{partner_id}/disable", json=reason, headers=bearer(world.admin))
    finally:
        resume.set()
    assert disabled.status_code == 200, disabled.text
    answer = await asyncio.wait_for(asked, 30)
    problem = assert_problem(answer, 401, slug="unauthenticated")
    assert problem["detail"] == "the client of this access token is no longer active"
    assert name not in answer.text
    monkeypatch.setattr(queries, "answer_items", answer_items)
    # An active partner is answered as before.
    other_id, other_secret = await create_client(app, role=Role.partner, region="TJ")
    other = await token_for(client, other_id, other_secret)
    fine = await client.get(path, params={"holder_name": name, "purpose": "hiring"}, headers=bearer(other))
    assert fine.status_code == 200, fine.text
    assert fine.json()["result"] == "valid"


async def test_a_token_narrowed_to_clients_write_cannot_rotate_its_own_secret_into_every_scope(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Found: an admin token asked for with ``scope=clients:write`` only (no audit:read, issuers:write...) rotated its
    own client's secret (200, the new secret shown), and the new secret opened a token of every admin scope."""
    admin_id, admin_secret = await create_client(app, role=Role.admin)
    narrowed = await token_for(client, admin_id, admin_secret, scope="clients:write")
    assert_problem(await client.get("/v1/audit", headers=bearer(narrowed)), 403, slug="forbidden")
    path = f"/v1/clients/{admin_id}/rotate-secret"
    for body in ({"grace": True}, {"grace": False}):
        refused = await client.post(path, json=body, headers=bearer(narrowed))
        problem = assert_problem(refused, 403, slug="forbidden")
        assert "fewer scopes than its client" in problem["detail"]
        assert "client_secret" not in refused.text
    # Nothing changed: the old secret still opens the client, and the narrowed token still works where it may.
    assert (await client.get("/v1/clients", headers=bearer(narrowed))).status_code == 200
    full = await token_for(client, admin_id, admin_secret)
    # A token of every scope of the client still rotates its own secret, and a narrowed one another body's client.
    rotated = await client.post(path, json={"grace": False}, headers=bearer(full))
    assert rotated.status_code == 200, rotated.text
    fresh = await token_for(client, admin_id, rotated.json()["client_secret"])
    narrowed = await token_for(client, admin_id, rotated.json()["client_secret"], scope="clients:write")
    await create_issuer(client, fresh, code=BODY_A)
    issuer_id, _secret = await create_client(app, role=Role.issuer, issuer_code=BODY_A)
    other = await client.post(f"/v1/clients/{issuer_id}/rotate-secret", json={}, headers=bearer(narrowed))
    assert other.status_code == 200, other.text


async def test_the_bureau_can_hold_a_certificate_its_body_had_suspended_and_the_body_cannot_lift_the_hold(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Found: only the bureau may reinstate a certificate the bureau suspended — unless the body suspended it first.
    The bureau's suspension of it answers 409 ("a suspended certificate cannot be suspended"), and the body then
    reinstates it (200, active): a body under investigation suspends its own certificate to keep the bureau's hold
    off it. Expected: the bureau's suspension is recorded as the bureau's hold, and the body's reinstate is 403."""
    world = await _bodies(app, client)
    path = f"/v1/certificates/{world.certificate['number']}"
    by_body = await client.post(f"{path}/suspend", json={"reason": "自查"}, headers=bearer(world.a))
    assert by_body.status_code == 200, by_body.text
    by_bureau = await client.post(f"{path}/suspend", json={"reason": "举报核查"}, headers=bearer(world.admin))
    assert by_bureau.status_code == 200, by_bureau.text
    assert by_bureau.json()["status"] == "suspended"
    lifted = await client.post(f"{path}/reinstate", json={"reason": "自查完毕"}, headers=bearer(world.a))
    assert_problem(lifted, 403, slug="forbidden")
    still = await client.get(path, headers=bearer(world.a))
    assert still.json()["status"] == "suspended"
