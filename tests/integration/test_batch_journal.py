"""A certificate's two log entries — its audit record and its transparency leaf — say exactly what is stored of it: the
audit chain intact, each leaf the data and hash the appender makes of the stored certificate, the tree's head the root
of its leaves, whether the rows were signed in the workers, in process, or signed again after a number was re-drawn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import col

from api.app import create_app, dispose
from registry import workers
from registry.audit import service as audit
from registry.audit.models import AuditRecord
from registry.certificates import recording
from registry.certificates.models import Certificate
from registry.config import Settings
from registry.db import transaction
from registry.holders.models import Holder
from registry.transparency import merkle
from registry.transparency import service as transparency
from registry.transparency.models import LeafKind, TransparencyLeaf
from tests.factories import bearer, certificate_body, ready_issuer, resident_id

ROWS = 300  # more than one chunk of minting.CHUNK_ROWS
BATCHES = "/v1/certificate-batches"
ISSUER = "BJ-AI-COMMITTEE"


@pytest.fixture(params=["workers", "in-process"])
async def app(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[FastAPI]:
    count = 2 if request.param == "workers" else 0
    application = create_app(settings.model_copy(update={"batch_workers": count, "batch_parallel_min_rows": 1}))
    yield application
    await dispose(application)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://registry.test") as http,
    ):
        yield http


def _rows(count: int, first: int = 0) -> list[dict[str, Any]]:
    return [
        certificate_body(holder={"name": f"学员{i}", "id_type": "resident_id", "id_number": resident_id(sequence=i)})
        for i in range(first, first + count)
    ]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def _logs_match_the_certificates(app: FastAPI) -> tuple[int, int]:
    """Asserts that each issuance's audit record and leaf are what the appenders make of the stored certificate
    (its number, signature, issuance time, catalogue entry, key and holder), dated when it was appended, that the
    audit chain is intact and that the head is the root of every leaf; returns how many issuance records and leaves
    were checked."""
    async with transaction(app.state.sessions) as session:
        assert await audit.first_broken_record(session) is None
        stored = {
            certificate.number: (certificate, holder)
            for certificate, holder in (await session.execute(select(Certificate, Holder).join(Holder))).all()
        }
        issued = (
            (await session.execute(select(AuditRecord).where(col(AuditRecord.action) == "certificate.issued")))
            .scalars()
            .all()
        )
        for record in issued:
            certificate, holder = stored[record.object_id]
            assert _utc(record.at) >= _utc(certificate.issued_at), record.object_id  # dated as it is appended
            expected: dict[str, Any] = {
                "issuer": ISSUER,
                "catalogue_code": certificate.catalogue_code,
                "level": certificate.level,
                "kid": certificate.kid,
                "holder_ref": holder.id_index[:16],
            }
            if certificate.supersedes is not None:
                expected["supersedes"] = certificate.supersedes
            assert record.details == expected, record.object_id
        leaves = (
            (await session.execute(select(TransparencyLeaf).order_by(col(TransparencyLeaf.leaf_index)))).scalars().all()
        )
        births = [leaf for leaf in leaves if leaf.kind in (LeafKind.issuance, LeafKind.correction)]
        for leaf in births:
            certificate, _holder = stored[leaf.number]
            data = transparency.Entry(
                kind=LeafKind.issuance if certificate.supersedes is None else LeafKind.correction,
                number=certificate.number,
                at=_utc(certificate.issued_at),
                event="issued",
                status="active",
                issuer=ISSUER,
                signature=certificate.signature,
                supersedes=certificate.supersedes,
            ).data()
            assert (leaf.kind, leaf.data, leaf.leaf_hash) == (leaf.kind, data, merkle.leaf_hash(data)), leaf.number
        head = await transparency.latest_head(session)
        assert head.tree_size == len(leaves)
        assert head.root_hash == merkle.root([leaf.leaf_hash for leaf in leaves])
    return len(issued), len(births)


async def test_a_batch_logs_exactly_what_is_stored_of_each_certificate(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    for key, first in (("first", 0), ("second", ROWS)):  # the second chains onto the first's head and frontier
        response = await client.post(
            BATCHES, json={"certificates": _rows(ROWS, first)}, headers={**bearer(issuer), "Idempotency-Key": key}
        )
        assert response.status_code == 201, response.text
    assert workers.running() == (app.state.context.settings.batch_worker_count > 1)
    assert await _logs_match_the_certificates(app) == (2 * ROWS, 2 * ROWS)


async def test_a_correction_logs_what_it_corrects(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    first = await client.post(
        BATCHES, json={"certificates": _rows(2)}, headers={**bearer(issuer), "Idempotency-Key": "to-correct"}
    )
    number = first.json()["certificates"][0]["number"]
    corrected = await client.post(
        f"/v1/certificates/{number}/correct", json={"reason": "姓名有误", "holder_name": "周玖"}, headers=bearer(issuer)
    )
    assert corrected.status_code == 201, corrected.text
    assert await _logs_match_the_certificates(app) == (3, 3)
    async with transaction(app.state.sessions) as session:
        kinds = (await session.execute(select(col(TransparencyLeaf.kind), col(TransparencyLeaf.number)))).all()
    assert (LeafKind.correction, corrected.json()["number"]) in kinds


async def test_a_row_signed_again_after_its_number_was_redrawn_logs_its_new_number(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = await ready_issuer(app, client)
    first = await client.post(
        BATCHES, json={"certificates": _rows(3)}, headers={**bearer(issuer), "Idempotency-Key": "first"}
    )
    taken = first.json()["certificates"][0]["number"]
    new_numbers = recording._new_numbers
    calls: list[int] = []

    def drawing(accepted: Any, *, issuer: Any) -> list[str]:
        calls.append(len(accepted))
        numbers = new_numbers(accepted, issuer=issuer)
        return [taken, *numbers[1:]] if len(calls) == 1 else numbers  # the first row's first number: already issued

    monkeypatch.setattr(recording, "_new_numbers", drawing)
    response = await client.post(
        BATCHES, json={"certificates": _rows(ROWS, 100)}, headers={**bearer(issuer), "Idempotency-Key": "second"}
    )
    assert response.status_code == 201, response.text
    assert calls == [ROWS, 1]
    assert await _logs_match_the_certificates(app) == (ROWS + 3, ROWS + 3)
    async with transaction(app.state.sessions) as session:
        logged = (await session.execute(select(col(AuditRecord.object_id)))).scalars().all()
    assert logged.count(taken) == 1  # the first batch's certificate, not the redrawn row
