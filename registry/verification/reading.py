"""Where public verification reads: one indexed query per scan, on the driver pool when there is one.

Per request: one SELECT (certificate + holder + issuer) — on PostgreSQL a prepared statement on the driver's own pool
(``readpool``), elsewhere a prebuilt Core statement on an autocommit connection; no ORM, no BEGIN/COMMIT. Anything a
cache needs now and then goes through a SQLAlchemy connection opened on first use — most requests never open one.
On the replica when one serves (``replica``); a read the replica fails runs once more on the primary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any, Literal, cast

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable, Select

from registry.certificates.models import Certificate, CertificateEvent
from registry.clock import CHINA_STANDARD_TIME
from registry.faults import Fault, database_fault
from registry.holders.models import Holder
from registry.issuers.models import Issuer
from registry.verification.replica import ReadRoute

By = Literal["token", "number"]

_c = Certificate.__table__.c  # type: ignore[attr-defined]
_h = Holder.__table__.c  # type: ignore[attr-defined]
_i = Issuer.__table__.c  # type: ignore[attr-defined]
_QUERY: Select[Any] = (
    select(
        _c.id,
        _c.number,
        _c.issuer_id,
        _c.kid,
        _c.cert_type,
        _c.catalogue_code,
        _c.catalogue_version,
        _c.level,
        _c.holder_name,
        _c.awarded_on,
        _c.valid_until,
        _c.evaluation_batch,
        _c.status,
        _c.signature,
        _c.issued_at,
        _c.supersedes,
        _c.superseded_by,
        _c.revocation_reason,
        _c.status_seal,
        _c.status_list_id,
        _c.status_index,
        _c.record_seal,
        _h.id_type,
        _h.id_masked,
        _h.id_index,
        _i.code.label("issuer_code"),
        _i.name.label("issuer_name"),
    )
    .select_from(Certificate.__table__)  # type: ignore[attr-defined]
    .join(Holder.__table__, _h.id == _c.holder_id)  # type: ignore[attr-defined]
    .join(Issuer.__table__, _i.id == _c.issuer_id)  # type: ignore[attr-defined]
)
# Built once: a statement built per request costs more than running it.
_STATEMENTS: dict[By, Select[Any]] = {
    "token": _QUERY.where(_c.verify_token == bindparam("value")),
    "number": _QUERY.where(_c.number == bindparam("value")),
}
_DRIVER_SQL: dict[By, str] = {
    by: str(statement.compile(dialect=postgresql_asyncpg.dialect()))  # type: ignore[no-untyped-call]
    for by, statement in _STATEMENTS.items()
}


class Reader:
    """``async with Reader(route) as reader:`` — on the database the route chooses (the replica while it serves), the
    certificate through the driver pool when there is one, anything a cache needs through a SQLAlchemy connection
    opened on first use. It quacks like a connection (``execute``) for the caches and the key ring."""

    __slots__ = ("_connection", "_route", "_target")

    def __init__(self, route: ReadRoute) -> None:
        self._route = route
        self._target = route.target()
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> Reader:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()

    async def execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Result[Any]:
        """Autocommit: each statement stands alone, so one whose connection broke runs once more on a fresh one — on
        the primary when the replica failed it."""
        try:
            return await self._execute(statement, parameters)
        except Exception as error:
            fallback = self._route.fallback(self._target, error)
            if fallback is None and database_fault(error) is not Fault.connection_lost:
                raise
            await self._close()  # SQLAlchemy has invalidated it: closing only hands it back
            self._target = fallback or self._target
        return await self._execute(statement, parameters)

    async def _execute(self, statement: Executable, parameters: Mapping[str, Any] | None) -> Result[Any]:
        if self._connection is None:
            connection = await self._target.engine.connect()
            self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return await self._connection.execute(statement, parameters)

    async def certificate(self, by: By, value: str) -> Mapping[str, Any] | None:
        try:
            return await self._certificate(by, value)
        except Exception as error:
            fallback = self._route.fallback(self._target, error)
            if fallback is None:
                raise
            await self._close()
            self._target = fallback
        return await self._certificate(by, value)

    async def _certificate(self, by: By, value: str) -> Mapping[str, Any] | None:
        pool = self._target.pool
        if pool is not None:
            return await pool.fetchrow(_DRIVER_SQL[by], value)
        return await _core_certificate(self, by, value)


# The hot path reads through a Reader; other callers (PDF, holder views) pass their session.
Connection = AsyncConnection | AsyncSession | Reader


async def certificate_row(connection: Connection, by: By, value: str) -> Mapping[str, Any] | None:
    """The certificate with its holder's public fields and its body's code and name, as one row."""
    if isinstance(connection, Reader):
        return await connection.certificate(by, value)
    return await _core_certificate(connection, by, value)


async def _core_certificate(connection: Connection, by: By, value: str) -> Mapping[str, Any] | None:
    row = (await connection.execute(_STATEMENTS[by], {"value": value})).first()
    return None if row is None else cast(Mapping[str, Any], row._mapping)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """When (the day, China Standard Time) and with which public reason code a certificate stopped being valid."""

    on: date | None
    reason_code: str | None


_e = CertificateEvent.__table__.c  # type: ignore[attr-defined]
_EVENTS: Select[Any] = (
    select(_e.event, _e.at, _e.reason_code)
    .where(_e.certificate_id == bindparam("certificate_id"), _e.event.in_(bindparam("events", expanding=True)))
    .order_by(_e.id)  # the order they happened: a certificate's changes are made one at a time under its row lock
)
REINSTATED = "reinstated"


def events_dating(event: str) -> list[str]:
    """The events ``stopped`` reads for a certificate whose latest status change is ``event``: a suspension's run
    since its last reinstatement too."""
    return [event, REINSTATED] if event == "suspended" else [event]


def stopped(events: Iterable[tuple[str, datetime, str | None]], *, event: str) -> StatusChange | None:
    """When and why a certificate stopped being valid, from its ``events_dating(event)`` (kind, time, public reason
    code) in the order they happened: the day of the first ``event`` since the last reinstatement, with the reason
    code of the latest. The bureau's hold over a body's suspension (``lifecycle.TAKEOVERS``) is a second suspension
    in the same run: it says why the certificate is held now (``bureau``), not when it stopped being valid — the body's
    day, which is what an employer asks."""
    first: datetime | None = None
    reason_code: str | None = None
    for kind, at, code in events:
        if kind != event:  # reinstated: the run so far is over
            first = None
            continue
        first = first if first is not None else at
        reason_code = code
    if first is None:
        return None
    return StatusChange(on=first.astimezone(CHINA_STANDARD_TIME).date(), reason_code=reason_code)


async def status_change(connection: Connection, certificate_id: Any, *, event: str) -> StatusChange | None:
    """When and why (``stopped``) a certificate whose latest status change is ``event`` (revoked, suspended,
    superseded) stopped being valid: only the public reason code, never the free text the body wrote."""
    parameters = {"certificate_id": certificate_id, "events": events_dating(event)}
    rows = (await connection.execute(_EVENTS, parameters)).all()
    return stopped(((row.event, row.at, row.reason_code) for row in rows), event=event)
