"""Who looked: every answered verification of a certificate, recorded off the hot path and listed for its holder.

The verifier hands each answer's (certificate, channel, purpose, region, time) to a ``VisitLog``: a bounded in-process
queue that a background task writes in batches (one ``COPY`` through ``registry.bulk`` on the write engine, at most
every ``FLUSH_SECONDS``). A scan therefore costs one ``deque.append`` — no query, no transaction. The price: visits
still in the queue when a process dies are lost, and when the queue is full (the database lagging far behind a scan
storm) new visits are dropped and counted rather than slowing scanners down. Nothing that identifies the verifier —
address, user agent, headers — ever reaches this module.

COPY rather than a multi-row INSERT because the write lands on the cores that answer scans: with INSERT, each worker's
flush of about a second's visits showed as a burst of 10–40 ms answers once a second, and the open-loop p99 at half
the peak was 12.1 ms; with COPY 7.1 ms, and 5.7 ms with no visits recorded at all (``benchmarks/verify.py``,
docs/scale.md). Flushing every 0.2 s instead of every second measured no better. (All of these were measured while a
write still went on until the queue was empty, newcomers included: more, smaller transactions than the interval says.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from registry import bulk
from registry.auth.principals import Principal
from registry.certificates import records
from registry.certificates.models import Certificate
from registry.db import utcnow
from registry.holders.models import Holder
from registry.metrics import VISITS_DROPPED
from registry.verification.models import VerificationVisit

log = logging.getLogger(__name__)

Channel = Literal["qr", "number", "share_link", "recognition", "peer"]
FLUSH_SECONDS = 1.0
BATCH_SIZE = 500
MAX_QUEUED = 50_000
CLOSING_ROUNDS = 3  # writes at shutdown, each of what was queued when it began
LISTED = 200  # the holder sees their latest visits


class VisitPublic(BaseModel):
    at: datetime
    number: str
    channel: Channel
    purpose: str | None
    region: str | None


@dataclass(frozen=True, slots=True)
class Visit:
    """How a verification reached the certificate, as its holder may see it."""

    channel: Channel
    purpose: str | None = None
    region: str | None = None


class VisitLog:
    """``record`` is synchronous and never waits; ``flush`` writes what is queued (tests and shutdown call it)."""

    def __init__(self, engine: AsyncEngine, *, max_queued: int = MAX_QUEUED) -> None:
        self.engine = engine
        self.queue: deque[dict[str, object]] = deque()
        self.max_queued = max_queued
        self._writer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def record(self, certificate_id: uuid.UUID, visit: Visit, *, at: datetime | None = None) -> None:
        if len(self.queue) >= self.max_queued:
            VISITS_DROPPED.inc()
            return
        row = {"certificate_id": certificate_id, "at": at or utcnow(), "channel": visit.channel}
        row["purpose"], row["region"] = visit.purpose, visit.region
        self.queue.append(row)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_soon())

    async def _write_soon(self) -> None:
        """Every ``FLUSH_SECONDS`` while anything is queued: a second's visits gathered into a few COPYs. Visits
        recorded during a write wait for the next one, which this loop makes without waiting for another visit."""
        while self.queue:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except (SQLAlchemyError, OSError):
                # The database is out of reach: the rows stay queued and are tried again a second later.
                log.warning("visit log: could not write %d queued visits; will retry", len(self.queue))

    async def flush(self) -> None:
        """Write the visits queued when it starts, ``BATCH_SIZE`` a COPY, each in its own transaction. Not those
        recorded meanwhile: under a steady stream of scans "until the queue is empty" never came, and the newcomers
        of each write went in a transaction of their own — 2–3 visits each, 205–223 µs of PostgreSQL's CPU per visit
        at 1,300 visits a second (``benchmarks/visit_flush.py --steady``; now ~430 each, 10–11 µs); in the service,
        where a busy event loop let more gather per round, 80–100 visits a transaction at 1,300 scans a second (now
        340–430)."""
        async with self._lock:
            pending = len(self.queue)
            while pending:
                count = min(BATCH_SIZE, pending)
                batch = [self.queue[i] for i in range(count)]
                try:
                    async with AsyncSession(self.engine) as session, session.begin():
                        await bulk.insert_rows(session, bulk.table_of(VerificationVisit), batch)
                except (IntegrityError, DataError):
                    # Never writable (a certificate that does not exist, a value the database cannot store): dropped,
                    # or it would block every later one.
                    log.warning("visit log: dropped %d visits the database refused", count)
                for _ in range(count):
                    self.queue.popleft()
                pending -= count

    async def close(self) -> None:
        """At shutdown: the writer stopped, then everything queued written, visits recorded during that write included
        (a few rounds at most: once the server stops answering, no scan comes)."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        with contextlib.suppress(SQLAlchemyError, OSError):  # the database out of reach: said below
            for _ in range(CLOSING_ROUNDS):
                if not self.queue:
                    break
                await self.flush()
        if self.queue:
            log.warning("visit log: %d visits not written at shutdown", len(self.queue))


async def list_for_holder(session: AsyncSession, *, principal: Principal) -> list[tuple[VerificationVisit, str]]:
    """The holder's latest visits, newest first, each with its certificate's number: only visits to the certificates
    the session reads (``records.holders_certificates``: of a session opened with a claim code, that body's)."""
    query = (
        select(VerificationVisit, col(Certificate.number))
        .join(Certificate, col(Certificate.id) == col(VerificationVisit.certificate_id))
        .join(Holder, col(Holder.id) == col(Certificate.holder_id))
        .where(records.holders_certificates(principal))
        .order_by(col(VerificationVisit.at).desc(), col(VerificationVisit.id).desc())
        .limit(LISTED)
    )
    return [(visit, number) for visit, number in (await session.execute(query)).all()]


async def list_public(session: AsyncSession, *, principal: Principal) -> list[VisitPublic]:
    return [
        VisitPublic(at=visit.at, number=number, channel=visit.channel, purpose=visit.purpose, region=visit.region)
        for visit, number in await list_for_holder(session, principal=principal)
    ]
