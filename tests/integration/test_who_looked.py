"""Who looked: every verification of a holder's certificate reaches the holder's list with its channel, purpose and
region — and never the verifier's address."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.federation import forwarding
from registry.verification.visits import Visit, VisitLog
from tests.factories import bearer, create_client, issued_certificate, token_for
from tests.integration.holder_support import HOLDER_NAME, signed_in_holder, table_rows

CLIENT_ADDRESS = "127.0.0.1"  # httpx.ASGITransport's client address


async def test_each_channel_is_recorded_with_its_purpose_and_region_and_never_an_address(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = await signed_in_holder(app, client)
    number, token = holder.certificate["number"], holder.certificate["qr_token"]
    assert (await client.get(f"/v1/verify/{token}")).status_code == 200  # QR scan, API
    assert (await client.get(f"/v/{token}")).status_code == 200  # QR scan, page
    by_number = await client.post("/v1/verify", json={"number": number, "holder_name": HOLDER_NAME})
    assert by_number.status_code == 200
    link = await client.post(
        "/v1/holder/share-links", json={"number": number, "purpose": "hiring"}, headers=holder.headers
    )
    assert (await client.get("/s/" + link.json()["url"].rsplit("/", 1)[1])).status_code == 200
    partner = bearer(await token_for(client, *await create_client(app, role=Role.partner, region="TJ")))
    params = {"holder_name": HOLDER_NAME, "purpose": "talent_introduction"}
    assert (await client.get(f"/v1/recognition/{number}", params=params, headers=partner)).status_code == 200
    async with app.state.sessions() as session:  # what the peer-facing endpoint answers another region's node
        answered = await forwarding.answer_peer(
            app.state.verifier, session, number=number, holder_name=HOLDER_NAME, peer_region="HE"
        )
    assert answered["status"] == 200
    await client.get(f"/v1/holder/certificates/{number}.pdf", headers=holder.headers)  # the holder's own: not counted
    await app.state.visits.flush()

    listed = await client.get("/v1/holder/verifications", headers=holder.headers)
    assert listed.status_code == 200, listed.text
    seen = [(v["channel"], v["purpose"], v["region"], v["number"]) for v in reversed(listed.json())]
    assert seen == [
        ("qr", None, None, number),
        ("qr", None, None, number),
        ("number", None, None, number),
        ("share_link", "hiring", None, number),
        ("recognition", "talent_introduction", "TJ", number),
        ("peer", None, "HE", number),
    ]
    assert CLIENT_ADDRESS not in listed.text
    rows = await table_rows(app, "verification_visits")
    assert len(rows) == 6
    assert set(rows[0]) == {"id", "certificate_id", "at", "channel", "purpose", "region"}
    assert CLIENT_ADDRESS not in str(rows)


async def test_a_holder_sees_only_visits_to_their_own_certificates(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = await signed_in_holder(app, client)
    other = await issued_certificate(client, holder.issuer)  # somebody else's
    assert (await client.get(f"/v1/verify/{other['qr_token']}")).status_code == 200
    await app.state.visits.flush()
    assert (await client.get("/v1/holder/verifications", headers=holder.headers)).json() == []
    assert (await client.get("/v1/holder/verifications")).status_code == 401


async def test_a_full_visit_queue_drops_new_visits_instead_of_slowing_the_scan(app: FastAPI) -> None:
    log = VisitLog(app.state.engine, max_queued=2)
    for _ in range(5):
        log.record(uuid.uuid4(), Visit("qr"), at=datetime.now(UTC))
    assert len(log.queue) == 2  # the other three were counted in registry_visits_dropped_total and let go
    log.queue.clear()
    await log.close()


async def test_visits_the_database_refuses_are_dropped_and_the_rest_are_written(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A visit to a certificate that is not there (the row gone from under the queue) must not block the visits
    queued behind it for ever: the batch that holds it is dropped with a warning, later batches are written."""
    holder = await signed_in_holder(app, client)
    log = VisitLog(app.state.engine)
    log.record(uuid.uuid4(), Visit("qr"), at=datetime.now(UTC))  # no such certificate: the foreign key refuses it
    await log.flush()
    assert not log.queue
    assert await table_rows(app, "verification_visits") == []

    response = await client.get(f"/v1/verify/{holder.certificate['qr_token']}")
    assert response.status_code == 200
    await app.state.visits.flush()
    rows = await table_rows(app, "verification_visits")
    assert [row["channel"] for row in rows] == ["qr"]
    await log.close()


async def test_a_visit_with_a_value_the_database_cannot_store_neither_raises_nor_blocks_later_ones(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """PostgreSQL refuses a NUL in text (SQLite stores it): refused, the batch is dropped like one that breaks a
    foreign key, instead of escaping the writer as a driver error or staying queued for ever."""
    holder = await signed_in_holder(app, client)
    found = await client.get(f"/v1/verify/{holder.certificate['qr_token']}")
    assert found.status_code == 200
    await app.state.visits.flush()
    certificate_id = (await table_rows(app, "verification_visits"))[0]["certificate_id"]
    log = VisitLog(app.state.engine)
    log.record(uuid.UUID(str(certificate_id)), Visit("share_link", purpose="a\x00b"), at=datetime.now(UTC))
    await log.flush()  # raises nothing
    assert not log.queue
    log.record(uuid.UUID(str(certificate_id)), Visit("share_link", purpose="after"), at=datetime.now(UTC))
    await log.close()
    purposes = [row["purpose"] for row in await table_rows(app, "verification_visits")]
    assert "after" in purposes
