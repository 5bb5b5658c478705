"""Share links: a holder shares one certificate for a purpose, until the link expires or is withdrawn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from registry.holder_access.models import ShareLink
from tests.checks import assert_problem
from tests.factories import issued_certificate
from tests.integration.holder_support import HOLDER_NAME, signed_in_holder, table_rows


async def test_holder_creates_lists_opens_and_withdraws_a_share_link(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    number = holder.certificate["number"]
    created = await client.post(
        "/v1/holder/share-links", json={"number": number, "purpose": "hiring"}, headers=holder.headers
    )
    assert created.status_code == 201, created.text
    link = created.json()
    assert link["url"].startswith("https://registry.test/s/")
    token = link["url"].rsplit("/", 1)[1]
    assert len(token) == 32  # 192 random bits
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert (link["number"], link["purpose"], link["state"]) == (number, "hiring", "active")

    listed = await client.get("/v1/holder/share-links", headers=holder.headers)
    assert listed.status_code == 200
    assert [(item["id"], item["state"]) for item in listed.json()] == [(link["id"], "active")]
    assert "url" not in listed.json()[0]  # shown once, at creation
    assert token not in str(await table_rows(app, "share_links"))  # only its hash is stored

    opened = await client.get(f"/s/{token}")
    assert opened.status_code == 200, opened.text
    assert "持证人为求职而分享" in opened.text
    assert "Shared by the holder for a job application" in opened.text
    assert HOLDER_NAME in opened.text
    assert opened.headers["cache-control"] == "no-store"

    withdrawn = await client.delete(f"/v1/holder/share-links/{link['id']}", headers=holder.headers)
    assert withdrawn.status_code == 204
    assert (await client.get("/v1/holder/share-links", headers=holder.headers)).json()[0]["state"] == "withdrawn"
    gone = await client.get(f"/s/{token}")
    assert gone.status_code == 410
    assert "链接已失效" in gone.text
    assert HOLDER_NAME not in gone.text
    assert number not in gone.text


async def test_an_expired_share_link_answers_gone_and_never_the_certificate(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    body = {"number": holder.certificate["number"], "purpose": "household_registration", "expires_in_days": 1}
    link = (await client.post("/v1/holder/share-links", json=body, headers=holder.headers)).json()
    token = link["url"].rsplit("/", 1)[1]
    assert (await client.get(f"/s/{token}")).status_code == 200
    async with app.state.sessions() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(ShareLink).values(expires_at=past))
        await session.commit()
    gone = await client.get(f"/s/{token}")
    assert gone.status_code == 410
    assert HOLDER_NAME not in gone.text
    assert (await client.get("/v1/holder/share-links", headers=holder.headers)).json()[0]["state"] == "expired"


async def test_an_unknown_share_link_is_not_found(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert (await client.get("/s/" + "A" * 32)).status_code == 404
    assert (await client.get("/s/short")).status_code == 404


async def test_a_holder_shares_only_their_own_certificates_and_withdraws_only_their_own_links(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    someone_else = await issued_certificate(client, holder.issuer)
    body = {"number": someone_else["number"], "purpose": "hiring"}
    assert_problem(await client.post("/v1/holder/share-links", json=body, headers=holder.headers), 404)
    mine = {"number": holder.certificate["number"], "purpose": "hiring"}
    link = (await client.post("/v1/holder/share-links", json=mine, headers=holder.headers)).json()
    assert_problem(await client.delete(f"/v1/holder/share-links/{link['id']}"), 401)
    issuer = {"Authorization": f"Bearer {holder.issuer}"}
    assert_problem(await client.delete(f"/v1/holder/share-links/{link['id']}", headers=issuer), 403)


async def test_a_share_link_needs_a_purpose_and_a_bounded_lifetime(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    number = holder.certificate["number"]

    async def create(**fields: object) -> httpx.Response:
        return await client.post("/v1/holder/share-links", json={"number": number, **fields}, headers=holder.headers)

    for fields, field in (
        ({"purpose": "curiosity"}, "purpose"),
        ({"purpose": "other"}, "purpose_text"),
        ({"purpose": "hiring", "expires_in_days": 366}, "expires_in_days"),
        ({"purpose": "hiring", "expires_in_days": 0}, "expires_in_days"),
        # Taken as days before (pydantic's lax mode): a JSON boolean, a string of digits, a float.
        ({"purpose": "hiring", "expires_in_days": True}, "expires_in_days"),
        ({"purpose": "hiring", "expires_in_days": "2"}, "expires_in_days"),
        ({"purpose": "hiring", "expires_in_days": 1.0}, "expires_in_days"),
    ):
        refused = await create(**fields)
        assert_problem(refused, 422)
        assert field in refused.text
    other = await create(purpose="other", purpose_text="签证办理", expires_in_days=365)
    assert other.status_code == 201, other.text
    opened = await client.get("/s/" + other.json()["url"].rsplit("/", 1)[1])
    assert "持证人为其他（签证办理）而分享" in opened.text


async def test_a_holders_answers_are_kept_by_no_cache(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Before, the certificate list (with QR tokens), a new share link's one-time URL, the link list and who looked
    carried no Cache-Control."""
    holder = await signed_in_holder(app, client)
    created = await client.post(
        "/v1/holder/share-links",
        json={"number": holder.certificate["number"], "purpose": "hiring"},
        headers=holder.headers,
    )
    assert created.status_code == 201
    answers = [created] + [
        await client.get(path, headers=holder.headers)
        for path in ("/v1/holder/certificates", "/v1/holder/share-links", "/v1/holder/verifications")
    ]
    for answer in answers:
        assert answer.status_code in (200, 201), answer.text
        assert answer.headers["cache-control"] == "no-store", answer.request.url


async def test_text_is_measured_as_stored_and_against_its_own_limit(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Before, 200 accented letters typed decomposed (e + U+0301: 400 code points, stored as 200 characters) were
    refused as over 200 characters, and 5,000 characters were told the models' backstop, "at most 4096"."""
    holder = await signed_in_holder(app, client)
    number = holder.certificate["number"]

    async def create(text: str) -> httpx.Response:
        body = {"number": number, "purpose": "other", "purpose_text": text}
        return await client.post("/v1/holder/share-links", json=body, headers=holder.headers)

    decomposed = await create("e\u0301" * 200)
    assert decomposed.status_code == 201, decomposed.text
    listed = (await client.get("/v1/holder/share-links", headers=holder.headers)).json()
    assert listed[0]["purpose_text"] == "\u00e9" * 200
    for length in (201, 5000):
        assert_problem(await create("x" * length), 422, field="purpose_text", message="at most 200 characters")
