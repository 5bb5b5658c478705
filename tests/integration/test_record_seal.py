"""The record seal lets public verification skip the Ed25519 verify, and only ever skip it: a row whose seal is missing
or wrong gets the full signature check, and a row altered in the database still fails. The hot query runs on a
read-only driver pool on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from sqlalchemy import text

from registry.certificates import signing
from registry.db import transaction
from registry.verification.readpool import driver_dsn
from tests.checks import run_sql
from tests.factories import (
    bearer,
    certificate_body,
    issued_certificate,
    ready_issuer,
    resident_id,
)


@pytest.fixture
def ed25519_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the full signature checks verification makes (the real check still runs)."""
    calls: list[str] = []
    real: Callable[..., bool] = signing.verify

    def counting(signature: str, payload: bytes, **kwargs: Any) -> bool:
        calls.append(signature)
        return real(signature, payload, **kwargs)

    monkeypatch.setattr(signing, "verify", counting)
    return calls


async def _set(app: FastAPI, number: str, assignments: str, **values: Any) -> None:
    async with transaction(app.state.sessions) as session:
        await session.execute(
            text(f"UPDATE certificates SET {assignments} WHERE number = :number"),  # noqa: S608 — test-only SQL
            {"number": number, **values},
        )


async def test_a_sealed_certificate_verifies_without_an_ed25519_verify(
    app: FastAPI, client: httpx.AsyncClient, ed25519_calls: list[str]
) -> None:
    certificate = await issued_certificate(client, await ready_issuer(app, client))
    async with transaction(app.state.sessions) as session:
        seal = (
            await session.execute(
                text("SELECT record_seal FROM certificates WHERE number = :n"), {"n": certificate["number"]}
            )
        ).scalar_one()
    assert isinstance(seal, str)
    assert len(seal) == 64
    answer = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert answer.status_code == 200
    assert answer.json()["result"] == "valid"
    assert answer.json()["signature_valid"] is True
    assert ed25519_calls == []


async def test_without_a_seal_the_signature_is_checked_in_full(
    app: FastAPI, client: httpx.AsyncClient, ed25519_calls: list[str]
) -> None:
    certificate = await issued_certificate(client, await ready_issuer(app, client))
    await _set(app, certificate["number"], "record_seal = NULL")
    answer = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert answer.json()["result"] == "valid"
    assert answer.json()["signature_valid"] is True
    assert len(ed25519_calls) == 1


async def test_a_wrong_seal_falls_back_to_the_signature_and_an_altered_row_still_fails(
    app: FastAPI, client: httpx.AsyncClient, ed25519_calls: list[str]
) -> None:
    certificate = await issued_certificate(client, await ready_issuer(app, client), level="intermediate")
    await _set(app, certificate["number"], "record_seal = :seal", seal="0" * 64)
    answer = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert answer.json()["result"] == "valid"
    assert len(ed25519_calls) == 1

    await _set(app, certificate["number"], "level = 'senior', record_seal = NULL")
    answer = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert answer.status_code == 200
    assert answer.json()["result"] == "unknown"
    assert answer.json()["reason"] == "signature_invalid"
    assert answer.json()["signature_valid"] is False


async def test_a_seal_and_signature_copied_from_another_certificate_do_not_vouch(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    genuine = await issued_certificate(client, issuer, level="intermediate")
    other = {"name": "李四", "id_type": "resident_id", "id_number": resident_id(sequence=7)}
    target = await issued_certificate(client, issuer, level="intermediate", holder=other)
    async with transaction(app.state.sessions) as session:
        await session.execute(
            text(
                "UPDATE certificates SET signature = g.signature, record_seal = g.record_seal, level = 'senior' "
                "FROM (SELECT signature, record_seal FROM certificates WHERE number = :genuine) AS g "
                "WHERE certificates.number = :target"
            ),
            {"genuine": genuine["number"], "target": target["number"]},
        )
    answer = await client.get(f"/v1/verify/{target['qr_token']}")
    assert answer.status_code == 200
    assert answer.json()["result"] == "unknown"
    assert answer.json()["signature_valid"] is False


async def test_batch_issued_certificates_are_sealed(
    app: FastAPI, client: httpx.AsyncClient, ed25519_calls: list[str]
) -> None:
    issuer = await ready_issuer(app, client)
    rows = [
        certificate_body(holder={"name": name, "id_type": "resident_id", "id_number": resident_id(sequence=i)})
        for i, name in enumerate(("王五", "赵六"))
    ]
    response = await client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "sealed"}
    )
    assert response.status_code == 201, response.text
    for issued in response.json()["certificates"]:
        answer = await client.get(f"/v1/verify/{issued['qr_token']}")
        assert answer.json()["result"] == "valid"
    assert ed25519_calls == []


async def test_verification_reads_through_a_read_only_driver_pool_on_postgresql(
    app: FastAPI, client: httpx.AsyncClient, backend: str
) -> None:
    certificate = await issued_certificate(client, await ready_issuer(app, client))
    answer = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert answer.json()["result"] == "valid"
    pool = app.state.read_pool
    if backend == "sqlite":
        assert pool is None  # SQLite reads through SQLAlchemy on an autocommit connection
        return
    row = await pool.fetchrow("SELECT current_setting('transaction_read_only') AS read_only")
    assert row is not None
    assert row["read_only"] == "on"
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await pool.fetchrow("UPDATE certificates SET status = 'revoked' RETURNING id")


def test_the_driver_dsn_drops_sqlalchemy_options_and_keeps_the_rest() -> None:
    dsn = driver_dsn(
        "postgresql+asyncpg://app:s3cret@db.internal:6432/registry?prepared_statement_cache_size=0&ssl=require"
    )
    assert dsn == "postgresql://app:s3cret@db.internal:6432/registry?ssl=require"


async def test_reactivating_a_revoked_certificate_in_the_database_does_not_make_it_valid(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    certificate = await issued_certificate(client, issuer)
    revoked = await client.post(
        f"/v1/certificates/{certificate['number']}/revoke",
        json={"reason_code": "fraud", "reason": "forged papers"},
        headers=bearer(issuer),
    )
    assert revoked.status_code == 200
    await run_sql(app, "UPDATE certificates SET status = 'active' WHERE number = :n", n=certificate["number"])
    answer = (await client.get(f"/v1/verify/{certificate['qr_token']}")).json()
    assert answer["result"] == "unknown"
    assert answer["reason"] == "status_tampered"


async def test_a_public_key_swapped_in_the_database_is_not_trusted(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    certificate = await issued_certificate(client, issuer)
    forged = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    await run_sql(app, "UPDATE signing_keys SET public_key = :k WHERE kid = :kid", k=forged, kid=certificate["kid"])
    answer = (await client.get(f"/v1/verify/{certificate['qr_token']}")).json()
    assert answer["result"] == "unknown"
    assert answer["signature_valid"] is False


async def test_no_credential_is_signed_for_a_row_that_does_not_verify(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    certificate = await issued_certificate(client, issuer, level="intermediate")
    await run_sql(app, "UPDATE certificates SET level = 'senior' WHERE number = :n", n=certificate["number"])
    credential = await client.get(f"/v1/certificates/{certificate['number']}/credential", headers=bearer(issuer))
    assert credential.status_code == 409
    assert credential.headers["content-type"] == "application/problem+json"
    pdf = await client.get(f"/v1/certificates/{certificate['number']}.pdf", headers=bearer(issuer))
    assert pdf.status_code == 409
