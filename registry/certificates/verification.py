"""Public verification, the registry's hottest path: one indexed query, everything else from small caches.

Per request: one SELECT (certificate + holder + issuer) — on PostgreSQL a prepared statement on the driver's own pool
(``registry.readpool``), elsewhere a prebuilt Core statement on an autocommit connection; no ORM, no BEGIN/COMMIT.
The catalogue, the levels, each body's filed scope and each key's status come from per-process caches that expire
within a minute; a cache that needs filling opens a SQLAlchemy connection for that request only. The record is really
checked: the canonical payload is rebuilt from the row and its record seal (a keyed MAC made at issuance over payload
and signature) must match — or, failing that, the Ed25519 signature must verify.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Any, cast

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql import Executable, Select

from registry import clock
from registry.catalogue.models import CatalogueEntry, Level
from registry.certificates import numbering, signing
from registry.certificates.models import Certificate, Status
from registry.certificates.schemas import Verification, VerificationResult, VerifiedCertificate
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import InvalidInput, NotFound
from registry.holders.models import Holder
from registry.issuers.models import FiledScope, Issuer
from registry.keys.models import KeyStatus, KeyUse
from registry.metrics import VERIFICATIONS
from registry.readpool import ReadPool
from registry.schemas import person_name_key

CATALOGUE_SECONDS = 60.0
SCOPE_SECONDS = 30.0  # a change to a body's filing reaches every process within this

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
_BY_TOKEN = _QUERY.where(_c.verify_token == bindparam("value"))
_BY_NUMBER = _QUERY.where(_c.number == bindparam("value"))
_DRIVER_SQL = {
    name: str(statement.compile(dialect=postgresql_asyncpg.dialect()))  # type: ignore[no-untyped-call]
    for name, statement in (("token", _BY_TOKEN), ("number", _BY_NUMBER))
}


@dataclass
class ReadCaches:
    """Per-process caches for verification; nothing here is authoritative, everything expires."""

    catalogue: dict[str, tuple[str | None, str, str]] = field(default_factory=dict)
    levels: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    catalogue_loaded: float = -1e9
    scopes: dict[int, tuple[float, list[FiledScope]]] = field(default_factory=dict)

    async def entry(self, connection: Connection, code: str) -> tuple[str | None, str, str] | None:
        if code not in self.catalogue or time.monotonic() - self.catalogue_loaded > CATALOGUE_SECONDS:
            await self._load_catalogue(connection)
        return self.catalogue.get(code)

    async def level(self, connection: Connection, cert_type: str, code: str) -> tuple[str, str] | None:
        if (cert_type, code) not in self.levels:
            await self._load_catalogue(connection)
        return self.levels.get((cert_type, code))

    async def _load_catalogue(self, connection: Connection) -> None:
        e, lv = CatalogueEntry.__table__.c, Level.__table__.c  # type: ignore[attr-defined]
        entries = await connection.execute(select(e.code, e.series_zh, e.name_zh, e.name_en))
        self.catalogue = {code: (series, zh, en) for code, series, zh, en in entries}
        levels = await connection.execute(select(lv.cert_type, lv.code, lv.name_zh, lv.name_en))
        self.levels = {(cert_type, code): (zh, en) for cert_type, code, zh, en in levels}
        self.catalogue_loaded = time.monotonic()

    async def filed_scopes(self, connection: Connection, issuer_id: int) -> list[FiledScope]:
        hit = self.scopes.get(issuer_id)
        if hit is not None and time.monotonic() - hit[0] < SCOPE_SECONDS:
            return hit[1]
        s = FiledScope.__table__.c  # type: ignore[attr-defined]
        rows = await connection.execute(select(FiledScope.__table__).where(s.issuer_id == issuer_id))  # type: ignore[attr-defined]
        scopes = [FiledScope(**row._mapping) for row in rows]
        self.scopes[issuer_id] = (time.monotonic(), scopes)
        return scopes


class Reader:
    """Where public verification reads: the certificate through the driver pool when there is one, and anything a
    cache needs through a SQLAlchemy connection opened on first use — most requests never open one.

    ``async with Reader(engine, pool) as reader:``; it quacks like a connection (``execute``) for the caches and the
    key ring.
    """

    __slots__ = ("_connection", "_engine", "_pool")

    def __init__(self, engine: AsyncEngine, pool: ReadPool | None = None) -> None:
        self._engine = engine
        self._pool = pool
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> Reader:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()

    async def execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Result[Any]:
        if self._connection is None:
            connection = await self._engine.connect()
            self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return await self._connection.execute(statement, parameters)

    async def certificate(self, by: str, value: str) -> Mapping[str, Any] | None:
        if self._pool is not None:
            return await self._pool.fetchrow(_DRIVER_SQL[by], value)
        return await _core_certificate(self, by, value)


# The hot path reads through a Reader; other callers (PDF, holder views) pass their session.
Connection = AsyncConnection | AsyncSession | Reader


async def _certificate(connection: Connection, by: str, value: str) -> Mapping[str, Any] | None:
    if isinstance(connection, Reader):
        return await connection.certificate(by, value)
    return await _core_certificate(connection, by, value)


async def _core_certificate(connection: Connection, by: str, value: str) -> Mapping[str, Any] | None:
    row = (await connection.execute(_BY_TOKEN if by == "token" else _BY_NUMBER, {"value": value})).first()
    return None if row is None else cast(Mapping[str, Any], row._mapping)


async def by_token(ctx: RegistryContext, connection: Connection, *, token: str, channel: str) -> Verification:
    row = await _certificate(connection, "token", token) if 16 <= len(token) <= 64 else None
    if row is None:
        VERIFICATIONS.labels(result="not_found", channel=channel).inc()
        raise NotFound("no certificate for this verification link")
    return await answer(ctx, connection, row, channel=channel)


async def by_number(
    ctx: RegistryContext, connection: Connection, *, number: str, holder_name: str, channel: str = "number"
) -> Verification:
    try:
        canonical = numbering.normalize_number(number)
    except numbering.InvalidCertificateNumber as exc:
        raise InvalidInput.field("number", f"{exc} — please check the number for a typo") from None
    row = await _certificate(connection, "number", canonical)
    # A wrong name answers exactly like an unknown number: the endpoint must not confirm that a number exists.
    if row is None or not hmac.compare_digest(
        person_name_key(row["holder_name"]).encode(), person_name_key(holder_name).encode()
    ):
        VERIFICATIONS.labels(result="not_found", channel=channel).inc()
        raise NotFound("no certificate with this number and holder name")
    return await answer(ctx, connection, row, channel=channel)


async def answer(ctx: RegistryContext, connection: Connection, row: Any, *, channel: str) -> Verification:
    caches: ReadCaches = ctx.caches
    entry = await caches.entry(connection, row["catalogue_code"]) or (
        None,
        row["catalogue_code"],
        row["catalogue_code"],
    )
    level = await caches.level(connection, row["cert_type"], row["level"]) or (row["level"], row["level"])
    signature_valid, key_problem = await check_signature(ctx, connection, row)
    status_intact = hmac.compare_digest(
        row["status_seal"] or "",
        signing.status_seal(
            ctx.box,
            certificate_id=row["id"],
            number=row["number"],
            status=row["status"],
            revocation_reason=row["revocation_reason"],
            superseded_by=row["superseded_by"],
        ),
    )
    if signature_valid and key_problem is None and not status_intact:
        key_problem = "status_tampered"
    scopes = await caches.filed_scopes(connection, row["issuer_id"])
    in_scope = any(
        s.covers(
            cert_type=row["cert_type"], catalogue_code=row["catalogue_code"], level=row["level"], on=row["awarded_on"]
        )
        for s in scopes
    )
    result, reason = judge(
        status=row["status"],
        valid_until=row["valid_until"],
        revocation_reason=row["revocation_reason"],
        signature_valid=signature_valid,
        key_problem=key_problem,
        in_scope=in_scope,
        today=clock.today(),
    )
    VERIFICATIONS.labels(result=result.value, channel=channel).inc()
    return Verification(
        result=result,
        reason=reason,
        signature_valid=signature_valid,
        checked_at=utcnow(),
        superseded_by=row["superseded_by"],
        supersedes=row["supersedes"],
        certificate=VerifiedCertificate(
            number=row["number"],
            number_display=numbering.group_canonical(row["number"]),
            holder_name=row["holder_name"],
            holder_id_masked=row["id_masked"],
            cert_type=row["cert_type"],
            catalogue_code=row["catalogue_code"],
            series_zh=entry[0],
            name_zh=entry[1],
            name_en=entry[2],
            level=row["level"],
            level_name_zh=level[0],
            level_name_en=level[1],
            issuer_code=row["issuer_code"],
            issuer_name=row["issuer_name"],
            awarded_on=row["awarded_on"],
            valid_until=row["valid_until"],
        ),
    )


async def check_signature(ctx: RegistryContext, connection: Any, row: Any) -> tuple[bool, str | None]:
    """Rebuild the canonical payload from the stored values and check it against the record seal made at issuance;
    without a matching seal, verify the detached JWS with the body's key (the seal only ever saves that work)."""
    kid: str = row["kid"]
    info = await ctx.keyring.public_key(connection, kid)
    if info is None or info.use != KeyUse.certificate or info.issuer_id != row["issuer_id"]:
        return False, "signing_key_unknown"
    payload = signing.payload_of(
        row,
        issuer_code=row["issuer_code"],
        holder_id_type=row["id_type"],
        holder_id_masked=row["id_masked"],
        holder_ref=row["id_index"],
    )
    signature: str = row["signature"]
    sealed = row["record_seal"]
    if sealed is None or not hmac.compare_digest(
        sealed, signing.record_seal(ctx.box, certificate_id=row["id"], kid=kid, payload=payload, signature=signature)
    ):
        if signing.signature_kid(signature) != kid:
            return False, "signing_key_unknown"
        if not signing.verify(signature, payload, key=info.public_key):
            return False, None
    issued_at: datetime = row["issued_at"]
    if info.status == KeyStatus.compromised and (info.compromised_from is None or issued_at >= info.compromised_from):
        return True, "signing_key_compromised"
    # A signature dated outside its key's working life was not made by the registry in the ordinary course.
    if issued_at < info.valid_from.replace(microsecond=0) or (
        info.retired_at is not None and issued_at > info.retired_at
    ):
        return True, "signing_key_not_valid_then"
    return True, None


def judge(
    *,
    status: str,
    valid_until: date | None,
    revocation_reason: str | None,
    signature_valid: bool,
    key_problem: str | None,
    in_scope: bool,
    today: date,
) -> tuple[VerificationResult, str | None]:
    """Fail closed: anything the registry cannot vouch for is 'unknown', never 'valid'."""
    if not signature_valid:
        return VerificationResult.unknown, key_problem or "signature_invalid"
    if key_problem is not None:
        return VerificationResult.unknown, key_problem
    if not in_scope:
        return VerificationResult.unknown, "issuer_outside_filed_scope"
    if status == Status.revoked:
        return VerificationResult.revoked, revocation_reason or "revoked"
    if status == Status.superseded:
        return VerificationResult.superseded, "superseded"
    if status == Status.suspended:
        return VerificationResult.suspended, "suspended"
    if valid_until is not None and valid_until < today:
        return VerificationResult.expired, "expired"
    return VerificationResult.valid, None
