"""A certificate's two log entries — its audit record and its transparency leaf — say exactly what is stored of it: one
of each per certificate, the audit chain intact and dated when it was appended, each leaf the data and hash the
appender makes of the stored certificate at consecutive indexes, the tree's head the root of its leaves — whether the
rows were signed in the workers (over several chunks), in process, or after a number was re-drawn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import col

from api.app import create_app, dispose
from registry.audit import service as audit
from registry.audit.models import AuditRecord
from registry.certificates import drafting, minting
from registry.certificates.models import Certificate
from registry.config import Settings
from registry.db import transaction, utcnow
from registry.holders.models import Holder
from registry.transparency import merkle
from registry.transparency import service as transparency
from registry.transparency.models import LeafKind, TransparencyLeaf
from tests.factories import bearer, certificate_body, ready_issuer, resident_id

CHUNK = 64  # minting.CHUNK_ROWS for these tests: a batch of ROWS goes to the workers in several chunks
ROWS = 3 * CHUNK + 7
BATCHES = "/v1/certificate-batches"
ISSUER = "BJ-AI-COMMITTEE"


@pytest.fixture(params=["workers", "in-process"])
async def app(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[FastAPI]:
    count = 2 if request.param == "workers" else 0
    application = create_app(settings.model_copy(update={"batch_workers": count, "batch_parallel_min_rows": 1}))
    yield application
    await dispose(application)


@pytest.fixture
def handed_over(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Each hand-over to the workers, in smaller chunks than usual: its rows, and the chunks the pool took."""
    monkeypatch.setattr(minting, "CHUNK_ROWS", CHUNK)
    calls: list[tuple[int, int]] = []
    hand_over = minting.hand_over

    def counting(pool: Any, sealing: Any, rows: Any) -> minting.Handed:
        handed = hand_over(pool, sealing, rows)
        calls.append((len(rows), len(handed.futures)))
        return handed

    monkeypatch.setattr(minting, "hand_over", counting)
    return calls


def _workers_on(app: FastAPI) -> bool:
    return bool(app.state.context.settings.batch_worker_count > 1)


def _rows(count: int, first: int = 0) -> list[dict[str, Any]]:
    return [
        certificate_body(holder={"name": f"学员{i}", "id_type": "resident_id", "id_number": resident_id(sequence=i)})
        for i in range(first, first + count)
    ]


async def _post(client: httpx.AsyncClient, issuer: str, rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    response = await client.post(
        BATCHES, json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": key}
    )
    assert response.status_code == 201, response.text
    answered: list[dict[str, Any]] = response.json()["certificates"]
    return answered


async def _audit_matches(app: FastAPI, purposes: dict[str, str], since: datetime) -> list[datetime]:
    """Asserts that the chain is intact and that every certificate has exactly one "certificate.issued" record naming
    its catalogue entry, level, key and holder, with the purpose given for its number; returns the records' times."""
    async with transaction(app.state.sessions) as session:
        assert await audit.first_broken_record(session) is None
        stored = {c.number: (c, h) for c, h in (await session.execute(select(Certificate, Holder).join(Holder))).all()}
        query = select(AuditRecord).where(col(AuditRecord.action) == "certificate.issued")
        issued = (await session.execute(query)).scalars().all()
    assert sorted(record.object_id for record in issued) == sorted(stored) == sorted(purposes)
    for record in issued:
        certificate, holder = stored[record.object_id]
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
        assert (record.object_type, record.purpose) == ("certificate", purposes[record.object_id])
        assert record.actor.startswith("client:")
        assert since <= record.at <= utcnow()  # after the test's requests began, not in the future
        assert record.at >= certificate.issued_at  # dated when appended, not when its certificate was drafted
    return [record.at for record in issued]


async def _leaves_match(app: FastAPI) -> int:
    """Asserts that every certificate has exactly one birth leaf (issuance or correction), which is the data and
    hash the appender makes of the stored certificate, that the indexes run without a gap and that the head is the
    root of every leaf; returns how many birth leaves there are."""
    async with transaction(app.state.sessions) as session:
        stored = {c.number: c for c in (await session.execute(select(Certificate))).scalars()}
        query = select(TransparencyLeaf).order_by(col(TransparencyLeaf.leaf_index))
        leaves = (await session.execute(query)).scalars().all()
        head = await transparency.latest_head(session)
    assert [leaf.leaf_index for leaf in leaves] == list(range(len(leaves)))
    births = [leaf for leaf in leaves if leaf.kind in (LeafKind.issuance, LeafKind.correction)]
    assert sorted(leaf.number for leaf in births) == sorted(stored)
    for leaf in births:
        certificate = stored[leaf.number]
        kind = LeafKind.issuance if certificate.supersedes is None else LeafKind.correction
        data = transparency.Entry(
            kind=kind,
            number=certificate.number,
            at=certificate.issued_at,
            event="issued",
            status="active",  # as born: a later status change is a leaf of its own
            issuer=ISSUER,
            signature=certificate.signature,
            supersedes=certificate.supersedes,
        ).data()
        assert (leaf.kind, leaf.at, leaf.data, leaf.leaf_hash) == (
            kind,
            certificate.issued_at,
            data,
            merkle.leaf_hash(data),
        ), leaf.number
    assert head.tree_size == len(leaves)
    assert head.root_hash == merkle.root([leaf.leaf_hash for leaf in leaves])
    return len(births)


async def test_a_batch_logs_exactly_what_is_stored_of_each_certificate(
    app: FastAPI, client: httpx.AsyncClient, handed_over: list[tuple[int, int]]
) -> None:
    issuer = await ready_issuer(app, client)
    since = utcnow()
    purposes: dict[str, str] = {}
    for key, first in (("first", 0), ("second", ROWS)):  # the second chains onto the first's head and frontier
        answered = await _post(client, issuer, _rows(ROWS, first), key)
        purposes.update((c["number"], "batch issuance") for c in answered)
    # Two workers read each batch in two chunks (100 and 99 rows), each handed over as it is screened, in chunks of 64.
    assert handed_over == ([(100, 2), (99, 2)] * 2 if _workers_on(app) else [])
    times = await _audit_matches(app, purposes, since)
    assert len(set(times)) == 2  # one time for each batch's records
    assert await _leaves_match(app) == 2 * ROWS


async def test_a_correction_logs_what_it_corrects(
    app: FastAPI, client: httpx.AsyncClient, handed_over: list[tuple[int, int]]
) -> None:
    issuer = await ready_issuer(app, client)
    since = utcnow()
    answered = await _post(client, issuer, _rows(2), "to-correct")
    number = answered[0]["number"]
    corrected = await client.post(
        f"/v1/certificates/{number}/correct", json={"reason": "姓名有误", "holder_name": "周玖"}, headers=bearer(issuer)
    )
    assert corrected.status_code == 201, corrected.text
    assert handed_over == ([(1, 1), (1, 1), (1, 1)] if _workers_on(app) else [])  # two rows read apart, then one
    purposes = {c["number"]: "batch issuance" for c in answered} | {corrected.json()["number"]: "correction"}
    await _audit_matches(app, purposes, since)
    assert await _leaves_match(app) == 3
    async with transaction(app.state.sessions) as session:
        kinds = (await session.execute(select(col(TransparencyLeaf.kind), col(TransparencyLeaf.number)))).all()
        successor = await session.scalar(
            select(Certificate).where(col(Certificate.number) == corrected.json()["number"])
        )
    assert (LeafKind.correction, corrected.json()["number"]) in kinds
    assert successor is not None
    assert successor.supersedes == number


async def test_a_row_whose_number_was_redrawn_logs_its_new_number(
    app: FastAPI, client: httpx.AsyncClient, handed_over: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the workers on, the row was handed over with its first number and is signed again over the new one (the
    signature itself: test_batch_workers.py, ``_sealed_over_what_is_stored``)."""
    issuer = await ready_issuer(app, client)
    since = utcnow()
    first = await _post(client, issuer, _rows(3), "first")
    taken = first[0]["number"]
    new_numbers = drafting.new_numbers_for
    calls: list[int] = []

    def drawing(accepted: Any, *, issuer: Any) -> list[str]:
        calls.append(len(accepted))
        numbers = new_numbers(accepted, issuer=issuer)
        return [taken, *numbers[1:]] if len(calls) == 1 else numbers  # the first row's first number: already issued

    monkeypatch.setattr(drafting, "new_numbers_for", drawing)
    answered = await _post(client, issuer, _rows(ROWS, 100), "second")
    assert calls == ([100, 99, 1] if _workers_on(app) else [ROWS, 1])  # drawn a screened chunk at a time
    # the redrawn row is signed again here, not handed over again
    assert handed_over == ([(2, 1), (1, 1), (100, 2), (99, 2)] if _workers_on(app) else [])
    assert taken not in {c["number"] for c in answered}
    purposes = {c["number"]: "batch issuance" for c in first + answered}
    await _audit_matches(app, purposes, since)
    assert await _leaves_match(app) == ROWS + 3
