"""The audit log's ``hash`` is not indexed on PostgreSQL (migration 0014): the chain, walked by ``registry audit
verify``, is what shows a record altered, removed or appended out of line, and concurrent appenders make one chain."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlmodel import col

from registry.audit import service as audit
from registry.audit.models import AuditRecord
from registry.audit.service import ChainFault
from registry.db import create_engine, transaction, utcnow
from registry.migrate import downgrade, upgrade
from tests.factories import bearer, certificate_body, ready_issuer, resident_id


async def _hash_indexes(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_log'")
            )
            return {name for name, definition in found if definition.endswith("(hash)")}
    finally:
        await engine.dispose()


async def test_postgres_keeps_no_index_on_the_audit_hash_and_a_downgrade_restores_it(
    database_url: str, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite keeps the constraint: dropping it would rebuild the table without its triggers")
    assert await _hash_indexes(database_url) == set()
    engine = create_engine(database_url)
    try:
        await downgrade(engine, "20261207_0013")
        assert await _hash_indexes(database_url) == {"uq_audit_log_hash"}
        await upgrade(engine)
    finally:
        await engine.dispose()
    assert await _hash_indexes(database_url) == set()


async def test_a_record_appended_to_a_predecessor_that_already_has_one_is_named(app: FastAPI) -> None:
    """What a unique hash could never have refused: a second record after the same predecessor (a fork), made behind
    the registry's back with a correct hash of its own."""
    async with transaction(app.state.sessions) as session:
        for number in ("A-1", "A-2", "A-3"):
            await audit.append(
                session, actor=audit.Actor(id="cli"), action="test", object_type="t", object_id=number, purpose="p"
            )
    async with transaction(app.state.sessions) as session:
        first, second = (await session.execute(select(AuditRecord).order_by(col(AuditRecord.id)).limit(2))).scalars()
        fork = AuditRecord(
            at=utcnow(),
            actor="intruder",
            action="test",
            object_type="t",
            object_id="A-2",
            purpose="p",
            details={},
            prev_hash=first.hash,  # the predecessor the second record already follows
            hash="",
        )
        fork.hash = audit.record_hash(first.hash, fork)
        session.add(fork)
    async with transaction(app.state.sessions) as session:
        broken = await audit.first_broken_record(session)
    assert broken is not None
    assert broken.fault is ChainFault.unlinked
    assert broken.record_id == (second.id or 0) + 2  # after A-3, which follows A-2 as it should


async def test_concurrent_issuance_appends_one_unbroken_chain(
    app: FastAPI, client: httpx.AsyncClient, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers; the advisory lock is PostgreSQL's")
    issuer = await ready_issuer(app, client)
    async with transaction(app.state.sessions) as session:
        before = await audit.count_records(session)
    bodies = [
        certificate_body(holder={"name": "并发", "id_type": "resident_id", "id_number": resident_id(sequence=700 + i)})
        for i in range(10)
    ]
    rows = [
        certificate_body(holder={"name": "并发", "id_type": "resident_id", "id_number": resident_id(sequence=800 + i)})
        for i in range(30)
    ]
    batch = client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "chain"}
    )
    answers = await asyncio.gather(
        batch, *(client.post("/v1/certificates", json=b, headers=bearer(issuer)) for b in bodies)
    )

    assert [a.status_code for a in answers] == [201] * 11
    async with transaction(app.state.sessions) as session:
        assert await audit.count_records(session) == before + 40
        assert await audit.first_broken_record(session) is None
