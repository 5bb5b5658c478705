"""Signing out ends the holder's session on the server: the token inside the cookie (or the API's bearer token) is
refused from then on, not only forgotten by one browser. Before, a copy of the cookie kept opening the holder's pages,
their PDFs and credentials for up to 15 minutes after "sign out"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from tests.integration.holder_support import signed_in_holder, table_rows
from tests.integration.test_holder_pages import csrf_of, holder_at_home

ORIGIN = {"Origin": "https://registry.test"}


async def test_signing_out_on_the_page_makes_a_copy_of_the_cookie_useless(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder, home = await holder_at_home(app, client)
    number = holder.certificate["number"]
    cookie = client.cookies.get("tr_holder")
    assert cookie
    copied = {"Cookie": f"tr_holder={cookie}"}
    assert (await client.get(f"/holder/certificates/{number}.pdf", headers=copied)).status_code == 200

    out = await client.post("/holder/sign-out", data={"csrf": csrf_of(home)}, headers=ORIGIN)
    assert out.status_code == 303
    assert out.headers["location"] == "/holder?lang=zh"

    for path in (f"/holder/certificates/{number}.pdf", f"/holder/certificates/{number}/credential.jwt"):
        assert (await client.get(path, headers=copied)).status_code == 401, path
    page = await client.get("/holder", headers=copied)
    assert page.status_code == 200
    assert "持证人登录" in page.text  # the sign-in form, not the holder's certificates
    assert holder.certificate["number_display"] not in page.text
    assert len(await table_rows(app, "ended_tokens")) == 1


async def test_the_api_ends_the_session_its_token_opened_and_no_other(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    body = {"id_type": "resident_id", "id_number": holder.id_number, "claim_code": holder.certificate["claim_code"]}
    other = await client.post("/v1/holder/sessions", json=body)
    assert other.status_code == 201
    other_headers = {"Authorization": f"Bearer {other.json()['access_token']}"}

    ended = await client.delete("/v1/holder/sessions/current", headers=holder.headers)
    assert ended.status_code == 204
    assert ended.headers["cache-control"] == "no-store"

    refused = await client.get("/v1/holder/certificates", headers=holder.headers, params={"lang": "en"})
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "this session has ended: sign in again" in refused.json()["detail"]
    zh = await client.get("/v1/holder/certificates", headers=holder.headers | {"Accept-Language": "zh-CN"})
    assert "此会话已结束" in zh.json()["detail"]
    assert (await client.delete("/v1/holder/sessions/current", headers=holder.headers)).status_code == 401
    # The holder's other session (another device) is untouched.
    still = await client.get("/v1/holder/certificates", headers=other_headers)
    assert still.status_code == 200
    assert [c["number"] for c in still.json()] == [holder.certificate["number"]]


async def test_only_a_holder_token_can_be_ended(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    answer = await client.delete("/v1/holder/sessions/current", headers={"Authorization": f"Bearer {holder.issuer}"})
    assert answer.status_code == 403
    assert await table_rows(app, "ended_tokens") == []
    assert (await client.delete("/v1/holder/sessions/current")).status_code == 401


async def test_ended_sessions_are_forgotten_once_their_tokens_would_have_expired(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    long_gone = datetime.now(UTC) - timedelta(minutes=20)
    async with app.state.engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO ended_tokens (jti, expires_at) VALUES ('old', :at)"), {"at": long_gone}
        )
    holder = await signed_in_holder(app, client)
    assert (await client.delete("/v1/holder/sessions/current", headers=holder.headers)).status_code == 204
    rows = await table_rows(app, "ended_tokens")
    assert [row["jti"] for row in rows] != ["old"]
    assert len(rows) == 1
