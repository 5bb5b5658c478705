"""Who looked: every verification of a holder's certificate reaches the holder's list with its channel, purpose and
region — and never the verifier's address."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.sql.schema import Table

from registry import bulk
from registry.auth.scopes import Role
from registry.federation import forwarding
from registry.verification import visits
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


async def _scanned_certificate_id(app: FastAPI, client: httpx.AsyncClient) -> uuid.UUID:
    holder = await signed_in_holder(app, client)
    assert (await client.get(f"/v1/verify/{holder.certificate['qr_token']}")).status_code == 200
    await app.state.visits.flush()
    return uuid.UUID(str((await table_rows(app, "verification_visits"))[0]["certificate_id"]))


def _scans_while_writing(
    monkeypatch: pytest.MonkeyPatch, log: VisitLog, certificate_id: uuid.UUID, *, writes: int, each: int
) -> list[int]:
    """Each write's row count, in order; during each of the first ``writes`` writes ``each`` more scans arrive."""
    written: list[int] = []
    insert_rows = bulk.insert_rows

    async def scanned_meanwhile(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        written.append(len(rows))
        if len(written) <= writes:
            for _ in range(each):
                log.record(certificate_id, Visit("qr"), at=datetime.now(UTC))
        await insert_rows(session, table, rows)

    monkeypatch.setattr(bulk, "insert_rows", scanned_meanwhile)
    return written


async def test_a_write_takes_only_the_visits_queued_when_it_began(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scans keep arriving while a write runs. Writing "until the queue is empty" wrote them in the same go, each
    round a transaction of its own: under a steady stream, a few visits a transaction. At shutdown, though, what is
    recorded during the last write is written too."""
    monkeypatch.setattr(visits, "FLUSH_SECONDS", 3600.0)  # the log's own writer stays out of this test
    certificate_id = await _scanned_certificate_id(app, client)
    log = VisitLog(app.state.engine)
    for _ in range(visits.BATCH_SIZE + 100):
        log.record(certificate_id, Visit("qr"), at=datetime.now(UTC))
    written = _scans_while_writing(monkeypatch, log, certificate_id, writes=3, each=7)
    await log.flush()
    assert written == [visits.BATCH_SIZE, 100]  # two COPYs; the 14 scans made meanwhile wait for the next write
    assert len(log.queue) == 14
    assert len(await table_rows(app, "verification_visits")) == 1 + visits.BATCH_SIZE + 100
    await log.close()  # its first write takes the 14; 7 more arrive meanwhile, and a second write takes them
    assert written == [visits.BATCH_SIZE, 100, 14, 7]
    assert not log.queue
    assert len(await table_rows(app, "verification_visits")) == 1 + visits.BATCH_SIZE + 100 + 14 + 7


async def test_visits_recorded_during_a_write_are_written_a_flush_interval_later_without_another_scan(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate_id = await _scanned_certificate_id(app, client)
    monkeypatch.setattr(visits, "FLUSH_SECONDS", 0.01)
    log = VisitLog(app.state.engine)
    written = _scans_while_writing(monkeypatch, log, certificate_id, writes=1, each=5)
    log.record(certificate_id, Visit("qr"), at=datetime.now(UTC))  # starts the writer
    writer = log._writer
    assert writer is not None
    await asyncio.wait_for(writer, timeout=10)
    assert written == [1, 5]  # the five made during the first write: a write of their own, no scan needed after
    assert not log.queue
    assert len(await table_rows(app, "verification_visits")) == 1 + 1 + 5
    await log.close()


async def test_visits_left_at_shutdown_are_counted_in_a_warning_and_nothing_raises(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Scans that never stop during shutdown: three writes, then what is left is said, not silently lost."""
    monkeypatch.setattr(visits, "FLUSH_SECONDS", 3600.0)
    certificate_id = await _scanned_certificate_id(app, client)
    log = VisitLog(app.state.engine)
    log.record(certificate_id, Visit("qr"), at=datetime.now(UTC))
    written = _scans_while_writing(monkeypatch, log, certificate_id, writes=10, each=2)
    with caplog.at_level(logging.WARNING, logger=visits.__name__):
        await log.close()
    assert written == [1, 2, 2]  # visits.CLOSING_ROUNDS writes
    assert len(log.queue) == 2
    assert "2 visits not written at shutdown" in caplog.text


async def test_a_database_out_of_reach_at_shutdown_is_a_warning_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    engine = create_async_engine("sqlite+aiosqlite:////nonexistent-directory/registry.db")
    log = VisitLog(engine)
    log.record(uuid.uuid4(), Visit("qr"), at=datetime.now(UTC))
    with caplog.at_level(logging.WARNING, logger=visits.__name__):
        await log.close()  # raises nothing
    assert len(log.queue) == 1
    assert "1 visits not written at shutdown" in caplog.text
    await engine.dispose()
