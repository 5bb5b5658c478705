"""What a batch stores: the rows single issuance would store, written in bulk (COPY on PostgreSQL) — same columns set,
same audit chain and JSON text, UTC timestamps, holders found or created once, ids in row order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from registry import bulk, workers
from registry.audit import service as audit
from registry.audit.models import AuditRecord
from registry.certificates import signing
from registry.certificates.models import Certificate, CertificateEvent
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import json_text, transaction, utcnow
from registry.holders import service as holder_service
from registry.holders.identity import IdType
from registry.holders.models import Holder
from registry.holders.service import HolderRef
from tests.factories import (
    bearer,
    certificate_body,
    days_from_today,
    issued_certificate,
    ready_issuer,
    resident_id,
)


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """As every test has them; with ``signing="workers"``, a batch of any size is signed in worker processes."""
    if getattr(request, "param", "in process") == "workers":
        return settings.model_copy(update={"batch_workers": 2, "batch_parallel_min_rows": 1})
    return settings


# Long: compares every stored column of both ways of issuing, side by side.
@pytest.mark.parametrize("settings", ["in process", "workers"], indirect=True)
async def test_a_batch_stores_what_single_issuance_stores(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    known = {"name": "张三", "id_type": "resident_id", "id_number": resident_id(sequence=900)}
    single = await issued_certificate(client, issuer, holder=known, level="intermediate")
    rows = [certificate_body(holder=known, level="senior")] + [
        certificate_body(
            holder={"name": f"学员{i}", "id_type": "resident_id", "id_number": resident_id(sequence=i)},
            catalogue_code=("ENG-AI", "ENG-IC")[i % 2],
            valid_until=days_from_today(4 * 365) if i % 3 == 0 else None,
            evaluation_batch=None if i % 4 == 0 else "2026-BJ-AI-02",
        )
        for i in range(1, 12)
    ]
    response = await client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "store"}
    )
    assert response.status_code == 201, response.text
    numbers = [c["number"] for c in response.json()["certificates"]]
    assert workers.running() == (app.state.context.settings.batch_parallel_min_rows == 1)
    for issued in response.json()["certificates"][:3]:
        scanned = await client.get(f"/v1/verify/{issued['qr_token']}")
        assert scanned.status_code == 200
        assert scanned.json()["result"] == "valid"
    context = app.state.context

    async with transaction(app.state.sessions) as session:
        assert await audit.first_broken_record(session) is None
        certificates = {
            c.number: c for c in (await session.execute(select(Certificate))).scalars() if c.number in numbers
        }
        reference = (
            await session.execute(select(Certificate).where(col(Certificate.number) == single["number"]))
        ).scalar_one()
        holders = {h.id: h for h in (await session.execute(select(Holder))).scalars()}
        assert len(holders) == 12  # the known holder was found, not created again
        events = (await session.execute(select(CertificateEvent))).scalars().all()
        public_keys = {}
        for kid in {c.kid for c in certificates.values()}:
            info = await context.keyring.public_key(session, kid)
            assert info is not None
            public_keys[kid] = info.public_key
        audit_rows = (
            await session.execute(
                text("SELECT id, object_id, CAST(details AS TEXT) FROM audit_log WHERE action = 'certificate.issued'")
            )
        ).all()

    assert certificates[numbers[0]].holder_id == reference.holder_id
    new_holders = sorted((holders[certificates[n].holder_id] for n in numbers[1:]), key=lambda h: h.id_index)
    # Created in blind-index order: two batches sharing new holders insert them in the same order (no deadlock).
    ids = [h.id or 0 for h in new_holders]
    assert ids == sorted(ids)
    optional = {"valid_until", "evaluation_batch"}
    reference_nulls = {name for name, value in reference.model_dump().items() if value is None} - optional
    for number, row in zip(numbers, rows, strict=True):
        stored = certificates[number]
        row_nulls = {name for name in optional if row[name] is None}
        assert {name for name, value in stored.model_dump().items() if value is None} == reference_nulls | row_nulls
        assert stored.issued_at.tzinfo is not None
        assert stored.issued_at.utcoffset() == UTC.utcoffset(None)
        assert stored.issued_at.microsecond == 0
        assert stored.holder_name == row["holder"]["name"]
        assert (stored.valid_until.isoformat() if stored.valid_until else None) == row["valid_until"]
        assert stored.evaluation_batch == row["evaluation_batch"]
        holder = holders[stored.holder_id]
        assert holder.created_at.tzinfo is not None
        assert (
            context.box.decrypt(holder.id_number_encrypted, context=f"holder:{holder.id_index}").decode()
            == (row["holder"]["id_number"])
        )
        payload = signing.payload_of(
            stored.model_dump(),
            issuer_code="BJ-AI-COMMITTEE",
            holder_id_type=holder.id_type,
            holder_id_masked=holder.id_masked,
            holder_ref=holder.id_index,
        )
        assert signing.verify(stored.signature, payload, key=public_keys[stored.kid])
        assert context.box.seal_matches(
            stored.status_seal,
            *(stored.id, number, "active", None, None, stored.status_list_id, stored.status_index),
            kind="certificate-status-2",  # the status seal binds the slot: made once the slot is taken
        )
        issued = [e for e in events if e.certificate_id == stored.id]
        assert len(issued) == 1
        assert issued[0].event == "issued"
        assert issued[0].at == stored.issued_at
        assert issued[0].at.tzinfo is not None

    batch_audit = sorted((row for row in audit_rows if row[1] in numbers), key=lambda row: row[0])
    assert [row[1] for row in batch_audit] == numbers  # ids follow the rows, as the chain does
    for _, _, details in audit_rows:  # the JSON text SQLAlchemy writes (with the engine's serializer), either path
        assert details == json_text(json.loads(details))


def _audit_rows(count: int, *, tag: str, at: datetime) -> list[dict[str, Any]]:
    return [
        {
            "at": at,
            "actor": "cli",
            "action": "test.bulk",
            "object_type": "test",
            "object_id": f"{tag}{i}",
            "purpose": "testing bulk writes",
            "details": {"i": i, "名前": "値", "nested": {"z": [1, None, 2.5], "a": True}},
            "prev_hash": audit.GENESIS_HASH,
            "hash": f"{tag}{i}".ljust(64, "0"),
        }
        for i in range(count)
    ]


async def test_bulk_rows_are_stored_exactly_as_a_sqlalchemy_insert_stores_them(app: FastAPI) -> None:
    table = bulk.table_of(AuditRecord)
    at = utcnow()
    through_bulk, through_insert = _audit_rows(5, tag="b", at=at), _audit_rows(5, tag="s", at=at)
    async with transaction(app.state.sessions) as session:
        await bulk.insert_rows(session, table, through_bulk)  # first statement of the transaction
        await session.execute(insert(table), through_insert)
    query = text(
        "SELECT id, at, actor, action, object_type, object_id, purpose, CAST(details AS TEXT), prev_hash, hash "
        "FROM audit_log WHERE action = 'test.bulk' ORDER BY id"
    )
    async with transaction(app.state.sessions) as session:
        stored = (await session.execute(query)).all()
        typed = (
            (await session.execute(select(AuditRecord).where(col(AuditRecord.action) == "test.bulk"))).scalars().all()
        )
    assert [row[5] for row in stored] == [f"b{i}" for i in range(5)] + [f"s{i}" for i in range(5)]
    for mine, theirs in zip(stored[:5], stored[5:], strict=True):
        assert mine[1:5] + mine[6:8] == theirs[1:5] + theirs[6:8]
    assert all(record.at.tzinfo is not None for record in typed)
    assert typed[0].details == through_bulk[0]["details"]

    holders = bulk.table_of(Holder)
    now = utcnow()
    fresh = [
        {
            "id_type": "passport",
            "id_index": f"idx{i}",
            "id_number_encrypted": b"\x01" * 40,
            "id_masked": f"E{i}*",
            "created_at": now,
        }
        for i in range(4)
    ]
    async with transaction(app.state.sessions) as session:
        await bulk.insert_missing(session, holders, fresh[:2], index_elements=["id_index"])
    async with transaction(app.state.sessions) as session:
        changed = [{**fresh[0], "id_masked": "changed"}, *fresh[1:]]
        inserted = await bulk.insert_missing(
            session, holders, changed, index_elements=["id_index"], returning=("id_index", "id_masked")
        )
        # PostgreSQL returns the rows it inserted, not those it left alone; SQLite returns none (callers look up).
        assert sorted(inserted) == ([("idx2", "E2*"), ("idx3", "E3*")] if bulk.is_postgres(session) else [])
        found = (await session.execute(select(Holder).order_by(col(Holder.id)))).scalars().all()
    assert [h.id_index for h in found] == ["idx0", "idx1", "idx2", "idx3"]
    assert found[0].id_masked == "E0*"  # kept, not overwritten
    assert all(h.created_at == now for h in found)

    with pytest.raises(IntegrityError):  # a unique index's refusal through COPY, as an INSERT would raise it
        async with transaction(app.state.sessions) as session:
            await bulk.insert_rows(session, holders, [{**fresh[0], "id_masked": "again"}])  # the same blind index


async def test_bulk_records_store_what_the_same_rows_as_mappings_store(app: FastAPI) -> None:
    """Rows given as records (values in column order, ``bulk.insert_records``), from a list or as an asynchronous
    generator makes them, are stored as the same rows given as mappings. A timestamp is bound once while rows repeat
    the same one, and again when it changes (here to another zone: stored as the same instant in UTC); each row's
    JSON value is its own."""
    table = bulk.table_of(AuditRecord)
    columns = ("at", "actor", "action", "object_type", "object_id", "purpose", "details", "prev_hash", "hash")
    at = utcnow().replace(microsecond=0)
    beijing = at.astimezone(timezone(timedelta(hours=8)))
    mappings = _audit_rows(3, tag="m", at=at) + _audit_rows(2, tag="n", at=beijing)
    listed = [[row[name] for name in columns] for row in _audit_rows(3, tag="l", at=at)]

    async def generated() -> AsyncIterator[list[Any]]:
        for row in _audit_rows(3, tag="g", at=at) + _audit_rows(2, tag="h", at=beijing):
            yield [row[name] for name in columns]

    async with transaction(app.state.sessions) as session:
        await bulk.insert_records(session, table, columns, listed)  # first statement of the transaction
        await bulk.insert_records(session, table, columns, generated())
        await bulk.insert_rows(session, table, mappings)
    async with transaction(app.state.sessions) as session:
        stored = (
            (
                await session.execute(
                    select(AuditRecord).where(col(AuditRecord.action) == "test.bulk").order_by(col(AuditRecord.id))
                )
            )
            .scalars()
            .all()
        )
    assert [record.object_id for record in stored] == [
        *("l0", "l1", "l2", "g0", "g1", "g2", "h0", "h1"),
        *("m0", "m1", "m2", "n0", "n1"),
    ]
    by_tag = {record.object_id: record for record in stored}
    for mine, theirs in (("l", "m"), ("g", "m"), ("h", "n")):
        for i in range(2):
            left, right = by_tag[f"{mine}{i}"], by_tag[f"{theirs}{i}"]
            assert (left.at, left.details, left.purpose) == (right.at, right.details, right.purpose)
    assert {record.at for record in stored} == {at}  # the Beijing rows: the same instant
    assert all(record.at.tzinfo is not None and record.at.utcoffset() == timedelta(0) for record in stored)
    assert [by_tag[f"g{i}"].details["i"] for i in range(3)] == [0, 1, 2]  # each row's own JSON


async def test_the_holders_upsert_gives_each_identity_its_stored_holder_new_or_already_recorded(app: FastAPI) -> None:
    """New people come back from the insert itself (PostgreSQL: RETURNING), people already recorded from a look-up;
    either way each identity maps to exactly the row stored for it, a repeated identity to one holder."""
    ctx: RegistryContext = app.state.context
    people = [holder_service.identity(ctx, id_type=IdType.RESIDENT_ID, id_number=resident_id()) for _ in range(6)]
    async with transaction(app.state.sessions) as session:
        first = await holder_service.upsert(ctx, session, people[:3])
    async with transaction(app.state.sessions) as session:  # three recorded, three new, one of each twice
        found = await holder_service.upsert(ctx, session, [*people[2:], people[0], people[0], people[5]])
        stored = (await session.execute(select(Holder))).scalars().all()
    assert len(stored) == 6
    expected = {h.id_index: HolderRef(id=h.id, id_type=h.id_type, id_masked=h.id_masked) for h in stored if h.id}
    assert found == {person.index: expected[person.index] for person in [*people[2:], people[0]]}
    assert {index: first[index] for index in first} == {index: expected[index] for index in first}
    assert all(type(ref.id_type) is str and ref.id_type == IdType.RESIDENT_ID.value for ref in found.values())
    assert all("*" in ref.id_masked for ref in found.values())
