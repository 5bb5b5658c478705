"""Holders: claim-code sign-in, lockout, own certificates only, and nothing more."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from tests.factories import (
    admin_token,
    bearer,
    create_issuer,
    issued_certificate,
    issuer_token,
    resident_id,
)


async def _setup(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str, dict[str, Any]]:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = resident_id(birth="19900505")
    certificate = await issued_certificate(
        client, issuer, holder={"name": "孙八", "id_type": "resident_id", "id_number": number}
    )
    return issuer, number, certificate


async def _sign_in(client: httpx.AsyncClient, number: str, claim_code: str) -> httpx.Response:
    body = {"id_type": "resident_id", "id_number": number, "claim_code": claim_code}
    return await client.post("/v1/holder/sessions", json=body)


async def test_holder_signs_in_with_claim_code_and_sees_all_own_certificates(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer, number, first = await _setup(app, client)
    second = await issued_certificate(
        client, issuer, catalogue_code="ENG-AI", holder={"name": "孙八", "id_type": "resident_id", "id_number": number}
    )
    await issued_certificate(client, issuer)  # somebody else's

    session = await _sign_in(client, number, first["claim_code"].lower())
    assert session.status_code == 201, session.text
    assert session.json()["id_masked"] == number[:2] + "*" * 14 + number[-2:]
    token = session.json()["access_token"]

    listed = await client.get("/v1/holder/certificates", headers=bearer(token))
    assert listed.status_code == 200
    assert sorted(c["number"] for c in listed.json()) == sorted([first["number"], second["number"]])
    assert number not in listed.text


async def test_wrong_claim_code_and_unknown_identity_answer_alike(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, number, _ = await _setup(app, client)
    wrong = await _sign_in(client, number, "AAAA-BBBB-CCCC")
    nobody = await _sign_in(client, resident_id(), "AAAA-BBBB-CCCC")
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["detail"] == nobody.json()["detail"]
    assert wrong.headers["content-type"] == "application/problem+json"


async def test_five_wrong_claim_codes_lock_the_identity(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, number, certificate = await _setup(app, client)
    for _ in range(5):
        assert (await _sign_in(client, number, "AAAA-BBBB-CCCC")).status_code == 401
    locked = await _sign_in(client, number, certificate["claim_code"])  # even the right code, now
    assert locked.status_code == 429
    assert 800 < int(locked.headers["Retry-After"]) <= 900
    assert locked.headers["content-type"] == "application/problem+json"


async def test_holder_cannot_fetch_another_persons_certificate(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer, number, certificate = await _setup(app, client)
    other = await issued_certificate(client, issuer)
    token = (await _sign_in(client, number, certificate["claim_code"])).json()["access_token"]
    assert (
        await client.get(f"/v1/holder/certificates/{other['number']}.pdf", headers=bearer(token))
    ).status_code == 404
    qr = await client.get(f"/v1/certificates/{other['number']}/qr.png", headers=bearer(token))
    assert qr.status_code == 404


async def test_holder_token_is_refused_on_issuer_and_admin_endpoints(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, number, certificate = await _setup(app, client)
    token = (await _sign_in(client, number, certificate["claim_code"])).json()["access_token"]
    for method, path in (
        ("POST", "/v1/certificates"),
        ("GET", "/v1/certificates"),
        ("GET", f"/v1/certificates/{certificate['number']}"),
        ("POST", "/v1/issuers"),
        ("POST", "/v1/clients"),
    ):
        response = await client.request(method, path, json={}, headers=bearer(token))
        assert response.status_code == 403, (method, path, response.text)


async def test_issuer_token_is_refused_on_holder_endpoints(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer, _, _ = await _setup(app, client)
    assert (await client.get("/v1/holder/certificates", headers=bearer(issuer))).status_code == 403


async def test_concurrent_wrong_claim_codes_are_all_counted(
    app: FastAPI, client: httpx.AsyncClient, backend: str
) -> None:
    number = resident_id()
    body = {"id_type": "resident_id", "id_number": number, "claim_code": "AAAA-BBBB-CCCC"}
    answers = await asyncio.gather(*(client.post("/v1/holder/sessions", json=body) for _ in range(12)))
    codes = sorted(a.status_code for a in answers)
    assert set(codes) <= {401, 429}, codes
    assert codes.count(401) == 5, codes  # five attempts were checked; every later one was refused unchecked
