"""What lands in the database: no identity number in clear, an intact audit chain, tamper-evident certificates."""

from __future__ import annotations

import sqlite3

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from registry.audit import service as audit
from registry.db import transaction
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_issuer,
    issued_certificate,
    issuer_token,
    resident_id,
)


async def _raw_dump(database_url: str) -> bytes:
    """Every byte of every row, read with the raw driver, outside the application."""
    url = make_url(database_url)
    chunks: list[bytes] = []
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        with sqlite3.connect(url.database) as connection:
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                for row in connection.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 — names from sqlite_master
                    chunks.extend(v if isinstance(v, bytes) else str(v).encode() for v in row)
        # The file itself too, WAL included: a clear number must not sit in a free page either.
        for suffix in ("", "-wal"):
            try:
                with open(url.database + suffix, "rb") as handle:  # noqa: ASYNC230 — test-only raw read
                    chunks.append(handle.read())
            except FileNotFoundError:
                pass
        return b"\n".join(chunks)
    connection = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        tables = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for record in tables:
            for row in await connection.fetch(f'SELECT * FROM "{record["tablename"]}"'):  # noqa: S608
                chunks.extend(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    finally:
        await connection.close()
    return b"\n".join(chunks)


async def test_raw_database_holds_no_identity_number_in_clear(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    numbers = [resident_id(birth="19790101"), resident_id(birth="20010911")]
    for number in numbers:
        holder = {"name": "王五", "id_type": "resident_id", "id_number": number}
        await issued_certificate(client, issuer, holder=holder)
    passport = {"name": "John Smith", "id_type": "passport", "id_number": "E12345678"}
    await issued_certificate(client, issuer, holder=passport)

    dump = await _raw_dump(database_url)
    for number in [*numbers, "E12345678"]:
        assert number.encode() not in dump
    assert b"19790101" not in dump
    assert b"20010911" not in dump


async def test_every_issuance_and_admin_change_is_in_an_intact_audit_chain(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    certificate = await issued_certificate(client, issuer)

    async with transaction(app.state.sessions) as session:
        actions = (await session.execute(text("SELECT action, object_id FROM audit_log ORDER BY id"))).all()
        broken = await audit.first_broken_record(session)
    assert [a for a, _ in actions] == ["client.created", "issuer.registered", "client.created", "certificate.issued"]
    assert (("certificate.issued", certificate["number"])) in [tuple(r) for r in actions]
    assert broken is None


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET purpose = 'x'", "DELETE FROM audit_log"])
async def test_audit_log_refuses_updates_and_deletes(app: FastAPI, client: httpx.AsyncClient, statement: str) -> None:
    await admin_token(app, client)  # creating the client writes the first record
    with pytest.raises(DBAPIError, match="append-only"):
        async with transaction(app.state.sessions) as session:
            await session.execute(text(statement))


async def test_audit_log_refuses_truncate_on_postgresql(app: FastAPI, client: httpx.AsyncClient, backend: str) -> None:
    """TRUNCATE fires no row trigger: the statement-level guard must refuse it, and every record must survive."""
    if backend != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (its DELETE guard is tested above)")
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    async with transaction(app.state.sessions) as session:
        before = (await session.execute(text("SELECT id, action FROM audit_log ORDER BY id"))).all()
    assert len(before) >= 2

    with pytest.raises(DBAPIError, match="append-only"):
        async with transaction(app.state.sessions) as session:
            await session.execute(text("TRUNCATE audit_log"))

    async with transaction(app.state.sessions) as session:
        after = (await session.execute(text("SELECT id, action FROM audit_log ORDER BY id"))).all()
        assert await audit.first_broken_record(session) is None
    assert after == before


async def test_audit_chain_check_names_an_altered_record(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    async with transaction(app.state.sessions) as session:
        first_id = (await session.execute(text("SELECT min(id) FROM audit_log"))).scalar_one()
        # Simulate an attacker with database rights: drop the guard, alter a record, put the guard back.
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            await session.execute(
                text("UPDATE audit_log SET purpose = 'nothing to see' WHERE id = :id"), {"id": first_id}
            )
            await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:
            await session.execute(text("DROP TRIGGER audit_log_no_update"))
            await session.execute(
                text("UPDATE audit_log SET purpose = 'nothing to see' WHERE id = :id"), {"id": first_id}
            )
    async with transaction(app.state.sessions) as session:
        assert await audit.first_broken_record(session) == audit.ChainBreak(first_id, audit.ChainFault.altered)


async def test_certificate_altered_in_the_database_verifies_as_unknown(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    certificate = await issued_certificate(client, issuer, level="intermediate")
    async with transaction(app.state.sessions) as session:
        await session.execute(
            text("UPDATE certificates SET level = 'senior' WHERE number = :number"), {"number": certificate["number"]}
        )
    answer = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert answer.status_code == 200
    assert answer.json()["result"] == "unknown"
    assert answer.json()["signature_valid"] is False
    assert answer.json()["reason"] == "signature_invalid"


async def test_holder_recorded_once_across_certificates(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = resident_id()
    for code in ("ENG-AI", "ENG-IC"):
        body = certificate_body(
            catalogue_code=code, holder={"name": "赵六", "id_type": "resident_id", "id_number": number}
        )
        response = await client.post("/v1/certificates", json=body, headers=bearer(issuer))
        assert response.status_code == 201
    async with transaction(app.state.sessions) as session:
        assert (await session.execute(text("SELECT count(*) FROM holders"))).scalar_one() == 1
        assert (await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one() == 2
