"""References between certificates, holders, bodies, events and verification visits: on PostgreSQL checked once per
statement by triggers (migrations 0013, 0015) instead of a foreign key per row, with the rows referred to made
permanent; on SQLite by foreign keys. Either way a row never refers to nothing, through the registry's own bulk
writes or behind its back."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from registry import bulk
from registry.certificates.models import Certificate, CertificateEvent
from registry.db import create_engine, transaction, utcnow
from registry.migrate import downgrade, upgrade
from registry.verification.models import VerificationVisit
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_issuer,
    issued_certificate,
    issuer_token,
    ready_issuer,
    resident_id,
)

MISSING = 987_654_321  # no row has this id


async def _stored_certificate(app: FastAPI) -> dict[str, Any]:
    async with transaction(app.state.sessions) as session:
        stored = (await session.execute(select(Certificate))).scalars().first()
        assert stored is not None
        return stored.model_dump()


def _another(values: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a stored certificate's row with its own id, number, token and no status slot."""
    fresh = {"id": uuid.uuid4(), "number": uuid.uuid4().hex[:16], "verify_token": uuid.uuid4().hex}
    return {**values, **fresh, "status_list_id": None, "status_index": None, **changes}


async def _counts(app: FastAPI) -> tuple[int, int]:
    async with transaction(app.state.sessions) as session:
        certificates = (await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one()
        events = (await session.execute(text("SELECT count(*) FROM certificate_events"))).scalar_one()
    return certificates, events


def _assert_reference_error(error: IntegrityError, backend: str, constraint: str) -> None:
    assert not bulk.is_unique_violation(error)  # not "retry": a missing reference is a bug, not bad luck
    if backend == "postgresql":
        cause = error.orig
        assert getattr(cause, "sqlstate", None) == "23503"
        assert getattr(cause, "constraint_name", None) == constraint
    else:
        assert "FOREIGN KEY constraint failed" in str(error.orig)


@pytest.mark.parametrize(
    ("column", "constraint"),
    [("holder_id", "fk_certificates_holder_id_holders"), ("issuer_id", "fk_certificates_issuer_id_issuers")],
)
@pytest.mark.parametrize("position", [0, 1, 2])
async def test_a_certificate_row_referring_to_nothing_refuses_the_whole_bulk_insert(
    app: FastAPI, client: httpx.AsyncClient, backend: str, column: str, constraint: str, position: int
) -> None:
    await issued_certificate(client, await ready_issuer(app, client))
    stored = await _stored_certificate(app)
    before = await _counts(app)
    rows = [_another(stored) for _ in range(3)]
    rows[position][column] = MISSING

    with pytest.raises(IntegrityError) as caught:
        async with transaction(app.state.sessions) as session:
            await bulk.insert_rows(session, bulk.table_of(Certificate), rows)
    _assert_reference_error(caught.value, backend, constraint)
    assert await _counts(app) == before  # the good rows of the statement went with it

    async with transaction(app.state.sessions) as session:  # the same rows with a real reference go in
        rows[position][column] = stored[column]
        await bulk.insert_rows(session, bulk.table_of(Certificate), rows)
    assert await _counts(app) == (before[0] + 3, before[1])


async def test_an_event_of_no_certificate_is_refused(app: FastAPI, client: httpx.AsyncClient, backend: str) -> None:
    await issued_certificate(client, await ready_issuer(app, client))
    stored = await _stored_certificate(app)
    before = await _counts(app)
    event = {"event": "suspended", "actor": "test", "at": utcnow(), "reason": None}
    rows = [{**event, "certificate_id": stored["id"]}, {**event, "certificate_id": uuid.uuid4()}]

    with pytest.raises(IntegrityError) as caught:
        async with transaction(app.state.sessions) as session:
            await bulk.insert_rows(session, bulk.table_of(CertificateEvent), rows)
    _assert_reference_error(caught.value, backend, "fk_certificate_events_certificate_id_certificates")
    assert await _counts(app) == before


async def test_a_visit_to_no_certificate_is_refused_and_one_to_a_real_certificate_is_kept(
    app: FastAPI, client: httpx.AsyncClient, backend: str
) -> None:
    await issued_certificate(client, await ready_issuer(app, client))
    stored = await _stored_certificate(app)
    visit = {"at": utcnow(), "channel": "qr", "purpose": None, "region": None}
    rows = [{**visit, "certificate_id": stored["id"]}, {**visit, "certificate_id": uuid.uuid4()}]

    with pytest.raises(IntegrityError) as caught:
        async with transaction(app.state.sessions) as session:
            await bulk.insert_rows(session, bulk.table_of(VerificationVisit), rows)
    _assert_reference_error(caught.value, backend, "fk_verification_visits_certificate_id_certificates")
    async with transaction(app.state.sessions) as session:
        await bulk.insert_rows(session, bulk.table_of(VerificationVisit), rows[:1])
        visits = (await session.execute(text("SELECT certificate_id FROM verification_visits"))).scalars().all()
    assert [uuid.UUID(str(v)) for v in visits] == [uuid.UUID(str(stored["id"]))]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM holders",
        "DELETE FROM issuers WHERE code = 'BJ-AI-COMMITTEE'",
        "DELETE FROM certificates",
        "UPDATE holders SET id = id + 1000",
        "UPDATE certificates SET id = :other",
    ],
)
async def test_rows_that_others_refer_to_cannot_be_deleted_or_rekeyed(
    app: FastAPI, client: httpx.AsyncClient, statement: str
) -> None:
    await issued_certificate(client, await ready_issuer(app, client))
    before = await _counts(app)
    with pytest.raises(IntegrityError):
        async with transaction(app.state.sessions) as session:
            await session.execute(text(statement), {"other": str(uuid.uuid4())} if ":other" in statement else {})
    assert await _counts(app) == before


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM holders WHERE id NOT IN (SELECT holder_id FROM certificates)",
        "TRUNCATE holders, issuers, certificates CASCADE",
        "UPDATE certificates SET holder_id = (SELECT max(id) FROM holders)",
        "UPDATE certificates SET issuer_id = (SELECT max(id) FROM issuers)",
        "UPDATE certificate_events SET certificate_id = (SELECT max(id::text)::uuid FROM certificates)",
        "UPDATE verification_visits v SET certificate_id = "
        "(SELECT id FROM certificates c WHERE c.id <> v.certificate_id LIMIT 1)",
    ],
)
async def test_on_postgresql_holders_bodies_and_certificates_are_permanent_and_keep_their_references(
    app: FastAPI, client: httpx.AsyncClient, backend: str, statement: str
) -> None:
    """Stronger than a foreign key, and what lets the check run without row locks: not even a holder nobody refers to
    is deleted, nothing is truncated, and a certificate's holder and body (an event's certificate) never change —
    even to another row that exists. A correction is a new certificate."""
    if backend != "postgresql":
        pytest.skip("SQLite keeps declarative foreign keys, which allow these when every reference still resolves")
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    await create_issuer(client, admin, code="BJ-OTHER-COMMITTEE")
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    for _ in range(2):
        issued = await issued_certificate(client, issuer)
    assert (await client.get(f"/v1/verify/{issued['qr_token']}")).status_code == 200
    await app.state.visits.flush()  # a visit to the last certificate, whose reference may not change either
    async with transaction(app.state.sessions) as session:
        assert (await session.execute(text("SELECT count(*) FROM verification_visits"))).scalar_one() == 1
    async with transaction(app.state.sessions) as session:  # a holder no certificate refers to
        await session.execute(
            text(
                "INSERT INTO holders (id_type, id_index, id_number_encrypted, id_masked, created_at) "
                "VALUES ('passport', 'unreferenced', '\\x00', 'E****', now())"
            )
        )
    before = await _counts(app)

    with pytest.raises(DBAPIError, match="never"):
        async with transaction(app.state.sessions) as session:
            await session.execute(text(statement))
    assert await _counts(app) == before


async def test_two_bodies_recording_the_same_new_people_at_once_share_one_holder_each(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The holders' upsert and the certificates' reference check under concurrency: both batches see the holder the
    other may have just inserted (PostgreSQL: the insert waits for the other to commit, then finds its row)."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    await create_issuer(client, admin, code="BJ-OTHER-COMMITTEE")
    tokens = [await issuer_token(app, client, code) for code in ("BJ-AI-COMMITTEE", "BJ-OTHER-COMMITTEE")]
    people = [{"name": f"同时{i}", "id_type": "resident_id", "id_number": resident_id()} for i in range(40)]

    answers = await asyncio.gather(
        *(
            client.post(
                "/v1/certificate-batches",
                json={"certificates": [certificate_body(holder=person) for person in people]},
                headers={**bearer(token), "Idempotency-Key": f"same-people-{index}"},
            )
            for index, token in enumerate(tokens)
        )
    )
    assert [answer.status_code for answer in answers] == [201, 201], [answer.text[:300] for answer in answers]
    async with transaction(app.state.sessions) as session:
        holders = (await session.execute(text("SELECT count(*) FROM holders"))).scalar_one()
        shared = (await session.execute(text("SELECT count(DISTINCT holder_id), count(*) FROM certificates"))).one()
        dangling = (
            await session.execute(
                text("SELECT count(*) FROM certificates c LEFT JOIN holders h ON h.id = c.holder_id WHERE h.id IS NULL")
            )
        ).scalar_one()
    assert holders == 40
    assert tuple(shared) == (40, 80)
    assert dangling == 0


async def test_the_migration_swaps_foreign_keys_for_statement_checks_and_back(database_url: str, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("on SQLite the migration leaves the foreign keys as they are")
    engine = create_engine(database_url)

    async def foreign_keys() -> set[str]:
        async with engine.connect() as connection:
            found = await connection.run_sync(
                lambda sync: [
                    key["name"]
                    for table in ("certificates", "certificate_events", "verification_visits")
                    for key in inspect(sync).get_foreign_keys(table)
                ]
            )
        return {name for name in found if name}

    references = {
        "fk_certificates_holder_id_holders",
        "fk_certificates_issuer_id_issuers",
        "fk_certificate_events_certificate_id_certificates",
        "fk_verification_visits_certificate_id_certificates",
    }
    try:
        assert not (await foreign_keys()) & references
        await downgrade(engine, "20261206_0012")
        assert await foreign_keys() >= references
        await upgrade(engine)
        assert not (await foreign_keys()) & references
        async with engine.connect() as connection:
            triggers = await connection.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                    "AND tgrelid IN ('certificates'::regclass, 'verification_visits'::regclass)"
                )
            )
            names = set(triggers.scalars())
        assert {
            "fk_certificates_holder_id_holders",
            "fk_certificates_issuer_id_issuers",
            "fk_verification_visits_certificate_id_certificates",
            "verification_visits_references_fixed",
        } <= names
    finally:
        await engine.dispose()
