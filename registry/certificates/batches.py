"""Batch issuance after an evaluation round: validate every row first, then issue all of them or none.

The hot loop works on plain values and bulk writes (``registry.bulk``: COPY on PostgreSQL) — the ORM's per-object
bookkeeping, or even a compiled multi-row INSERT, would cost more than the signing itself at 10,000 rows.
"""

from __future__ import annotations

import csv
import io
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import ColumnElement, String, any_, bindparam, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk, clock
from registry.audit import service as audit
from registry.catalogue.models import CatalogueEntry, Level
from registry.catalogue.service import levels_by_type
from registry.certificates import idempotency, numbering, signing, status_lists
from registry.certificates.models import Certificate, CertificateEvent, Status
from registry.certificates.schemas import CertificateIssue
from registry.certificates.service import CLAIM_CODE_KIND, new_claim_code, normalize_claim_code, verify_url
from registry.clients.service import Principal
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import FieldError, Forbidden, InvalidInput
from registry.holders import service as holders
from registry.holders.identity import mask_id_number
from registry.holders.models import Holder
from registry.issuers import service as issuers
from registry.issuers.models import FiledScope, Issuer, IssuerStatus
from registry.keys import service as keys
from registry.keys.models import KeyUse
from registry.metrics import CERTIFICATES_ISSUED

MAX_ROWS = 10_000
OPERATION = "certificates.batch"
CSV_COLUMNS = (
    "cert_type",
    "catalogue_code",
    "level",
    "holder_name",
    "holder_id_type",
    "holder_id_number",
    "awarded_on",
    "valid_until",
    "evaluation_batch",
)
_IN_CHUNK = 1_000  # rows per IN (...) look-up on SQLite: well inside its parameter limit
LIVE = (Status.active, Status.suspended)
_T = TypeVar("_T")


class BatchRejected(InvalidInput):
    slug = "batch-rejected"
    title = "The batch has invalid rows; nothing was issued"


def rows_from_csv(text: str, *, max_rows: int | None = None) -> list[dict[str, Any]]:
    """CSV with the columns of CSV_COLUMNS (header required); holder_* columns become the nested holder object.
    Stops reading as soon as there are more than ``max_rows`` rows."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in CSV_COLUMNS if c not in header and c not in ("valid_until", "evaluation_batch")]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        errors = [FieldError(field=c, message="column missing from the CSV header", row=0) for c in missing]
        errors += [FieldError(field=c, message="unknown column", row=0) for c in unknown]
        raise BatchRejected("the CSV header does not match", errors=errors)
    rows: list[dict[str, Any]] = []
    for record in reader:
        if max_rows is not None and len(rows) >= max_rows:
            raise InvalidInput.field("certificates", f"at most {max_rows} rows per batch")
        if None in record:
            rows.append({"__extra_values__": True})
            continue
        row: dict[str, Any] = {
            key: (value if value != "" else None) for key, value in record.items() if not key.startswith("holder_")
        }
        row["holder"] = {
            "name": record.get("holder_name"),
            "id_type": record.get("holder_id_type"),
            "id_number": record.get("holder_id_number"),
        }
        rows.append(row)
    return rows


@dataclass(frozen=True, slots=True)
class _Row:
    number: int  # 1-based, as a person counts rows
    request: CertificateIssue
    holder_index: str


def renumber(row: _Row, number: int) -> _Row:
    return _Row(number=number, request=row.request, holder_index=row.holder_index)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    status_code: int
    body: Any
    replayed: bool
    encoded: bytes | None = None  # the body as JSON when it was encoded already (to be stored): not encoded twice


async def submit(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    rows: list[dict[str, Any]],
    idempotency_key: str,
    dry_run: bool,
) -> BatchOutcome:
    if not rows:
        raise InvalidInput.field("certificates", "the batch has no rows")
    if len(rows) > MAX_ROWS:
        raise InvalidInput.field("certificates", f"at most {MAX_ROWS} rows per batch, got {len(rows)}")
    issuer = await issuer_of(session, principal)
    digest = idempotency.request_hash({"rows": rows, "dry_run": dry_run})
    if not dry_run:
        stored = await idempotency.replay(
            ctx, session, principal=principal, operation=OPERATION, key=idempotency_key, digest=digest
        )
        if stored is not None:
            return BatchOutcome(status_code=stored.status_code, body=stored.body, replayed=True)
    valid = await validate(ctx, session, issuer=issuer, rows=rows)
    if dry_run:
        return BatchOutcome(status_code=200, body={"dry_run": True, "valid": True, "count": len(valid)}, replayed=False)
    body = await issue_rows(ctx, session, principal=principal, issuer=issuer, rows=valid)
    encoded = _encode(body)
    await idempotency.store(
        ctx,
        session,
        principal=principal,
        operation=OPERATION,
        key=idempotency_key,
        digest=digest,
        status_code=201,
        body=encoded,
    )
    return BatchOutcome(status_code=201, body=body, replayed=False, encoded=encoded)


def _encode(body: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(body)


async def issuer_of(session: AsyncSession, principal: Principal) -> Issuer:
    if principal.issuer_id is None:
        raise Forbidden("only an evaluation body's client can issue certificates")
    issuer = await session.get(Issuer, principal.issuer_id)
    if issuer is None:
        raise Forbidden("the evaluation body of this client no longer exists")
    if issuer.status != IssuerStatus.active:
        raise Forbidden(f"evaluation body {issuer.code} is {issuer.status} and cannot issue")
    return issuer


async def validate(
    ctx: RegistryContext, session: AsyncSession, *, issuer: Issuer, rows: list[dict[str, Any]]
) -> list[_Row]:
    """Every row, every rule; all problems reported at once with row and field. Raises BatchRejected if any."""
    if session.get_bind().dialect.name == "postgresql":
        # The IN (...) look-ups below are prepared statements; on a young table PostgreSQL would keep the sequential
        # scan plan it chose while the table was empty, and every later batch of an import would get slower.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    errors: list[FieldError] = []
    parsed: list[tuple[int, CertificateIssue]] = []
    for number, row in enumerate(rows, start=1):
        if row.get("__extra_values__"):
            errors.append(FieldError(field="row", message="more values than header columns", row=number))
            continue
        try:
            parsed.append((number, CertificateIssue.model_validate(row)))
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"]) or "row"
                message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
                errors.append(FieldError(field=field, message=message.removeprefix("Value error, "), row=number))

    codes = {request.catalogue_code for _, request in parsed}
    entries = {
        entry.code: entry
        for entry in (
            await session.execute(select(CatalogueEntry).where(col(CatalogueEntry.code).in_(codes)))
        ).scalars()
    }
    ladders = await levels_by_type(session)
    scopes = await issuers.filed_scopes(session, issuer.id or 0)
    today = clock.today()
    accepted: list[_Row] = []
    seen: dict[tuple[str, str, str], int] = {}
    # The award rules depend on these four fields only, and a batch from one evaluation round repeats a few of them.
    problems: dict[tuple[str, str, str, date], tuple[str, str] | None] = {}
    for number, request in parsed:
        award = (request.cert_type, request.catalogue_code, request.level, request.awarded_on)
        if award not in problems:
            problems[award] = _award_problem(request, entries=entries, ladders=ladders, scopes=scopes, today=today)
        problem = problems[award]
        if problem is not None:
            errors.append(FieldError(field=problem[0], message=problem[1], row=number))
            continue
        index = holders.id_index(ctx, id_type=request.holder.id_type, id_number=request.holder.id_number)
        key = (index, request.catalogue_code, request.level)
        if key in seen:
            errors.append(
                FieldError(
                    field="holder.id_number", message=f"same holder, entry and level as row {seen[key]}", row=number
                )
            )
            continue
        seen[key] = number
        accepted.append(_Row(number=number, request=request, holder_index=index))

    for clash in await _already_held(session, accepted, issuer_id=issuer.id or 0):
        message = "this body already issued this holder a live certificate for this entry and level"
        errors.append(FieldError(field="holder.id_number", message=message, row=clash.number))
    if errors:
        errors.sort(key=lambda e: (e.row or 0, e.field))
        bad_rows = len({e.row for e in errors})
        raise BatchRejected(f"{bad_rows} of {len(rows)} rows are not valid; nothing was issued", errors=errors)
    return accepted


def _award_problem(
    request: CertificateIssue,
    *,
    entries: dict[str, CatalogueEntry],
    ladders: dict[str, dict[str, Level]],
    scopes: list[FiledScope],
    today: date,
) -> tuple[str, str] | None:
    """The same rules as single issuance (service.check_award), on preloaded data: no query per row."""
    entry = entries.get(request.catalogue_code)
    if entry is None or entry.cert_type != request.cert_type:
        return "catalogue_code", f"no {request.cert_type} catalogue entry {request.catalogue_code}"
    if request.level not in ladders[request.cert_type]:
        return "level", f"{request.level} is not a {request.cert_type} level"
    if request.level not in entry.levels:
        return "level", f"{entry.code} is not awarded at level {request.level}"
    if not entry.in_force_on(request.awarded_on):
        return "awarded_on", f"catalogue entry {entry.code} was not in force on that date"
    if request.awarded_on > today:
        return "awarded_on", "is in the future"
    covers = {"cert_type": request.cert_type, "catalogue_code": request.catalogue_code, "level": request.level}
    if not issuers.scope_covers(scopes, **covers, on=request.awarded_on):
        return "catalogue_code", "outside the evaluation body's filed scope on the award date"
    if not issuers.scope_covers(scopes, **covers, on=today):
        return "catalogue_code", "the evaluation body's filing for this entry is not in force today"
    return None


async def _already_held(session: AsyncSession, rows: list[_Row], *, issuer_id: int) -> list[_Row]:
    """Rows whose holder already has a live certificate of this body for the same entry and level. Only the body's
    own certificates count: a batch must not become a way to learn what other bodies awarded someone."""
    clashes: list[_Row] = []
    postgres = _is_postgres(session)
    for chunk in _lookup_chunks(rows, postgres=postgres):
        found = await session.execute(
            select(col(Holder.id_index), col(Certificate.catalogue_code), col(Certificate.level))
            .join(Certificate, col(Certificate.holder_id) == col(Holder.id))
            .where(
                _one_of(col(Holder.id_index), list({row.holder_index: None for row in chunk}), postgres=postgres),
                col(Certificate.status).in_(LIVE),
                col(Certificate.issuer_id) == issuer_id,
            )
        )
        held = {(index, code, level) for index, code, level in found}
        clashes.extend(
            row for row in chunk if (row.holder_index, row.request.catalogue_code, row.request.level) in held
        )
    return clashes


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _lookup_chunks(items: list[_T], *, postgres: bool) -> list[list[_T]]:
    """PostgreSQL takes a whole batch in one array parameter; elsewhere IN (...) lists stay within parameter limits."""
    if postgres:
        return [items] if items else []
    return [items[start : start + _IN_CHUNK] for start in range(0, len(items), _IN_CHUNK)]


def _one_of(column: Any, values: list[str], *, postgres: bool) -> ColumnElement[bool]:
    """``column = ANY($1::varchar[])`` on PostgreSQL: one statement whatever the count, compiled once and prepared
    once, where an IN list of n values is a new statement for every n. Elsewhere ``column IN (...)``."""
    if postgres:
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(String())))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


async def issue_rows(
    ctx: RegistryContext, session: AsyncSession, *, principal: Principal, issuer: Issuer, rows: list[_Row]
) -> dict[str, Any]:
    issuer_id = issuer.id or 0
    key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer_id)
    if key is None:
        raise Forbidden(f"evaluation body {issuer.code} has no active signing key")
    private_key = ctx.keyring.private_key(key)
    holder_rows = await _upsert_holders(ctx, session, rows)
    numbers = await _fresh_numbers(session, issuer=issuer, rows=rows)
    slots = await _status_slots(session, issuer_id=issuer_id, count=len(rows))
    entries = {
        e.code: e
        for e in (
            await session.execute(
                select(CatalogueEntry).where(col(CatalogueEntry.code).in_({r.request.catalogue_code for r in rows}))
            )
        ).scalars()
    }
    issued_at = utcnow().replace(microsecond=0)
    event_rows: list[dict[str, Any]] = []
    audit_entries: list[audit.Entry] = []
    answer: list[dict[str, Any]] = []

    def minted() -> Iterator[dict[str, Any]]:
        """Each certificate row as soon as it is signed. On PostgreSQL the COPY sends rows while the next are made, so
        the database stores them (table and indexes) on one core while this process signs on the other; only the
        foreign-key checks wait for the end. Events, audit entries and the answer are collected on the way."""
        for row, number, (list_id, status_index) in zip(rows, numbers, slots, strict=True):
            request = row.request
            holder_id, id_type, id_masked = holder_rows[row.holder_index]
            entry = entries[request.catalogue_code]
            claim_code = new_claim_code()
            token = secrets.token_urlsafe(18)
            certificate_id = uuid.uuid4()
            signed: dict[str, Any] = {
                "id": certificate_id,
                "number": number,
                "issuer_id": issuer_id,
                "kid": key.kid,
                "cert_type": request.cert_type.value,
                "catalogue_code": entry.code,
                "catalogue_version": entry.version,
                "level": request.level,
                "holder_id": holder_id,
                "holder_name": request.holder.name,
                "awarded_on": request.awarded_on,
                "valid_until": request.valid_until,
                "evaluation_batch": request.evaluation_batch,
                "status": Status.active.value,
                "verify_token": token,
                "claim_code_hash": ctx.box.hash_secret(normalize_claim_code(claim_code), kind=CLAIM_CODE_KIND),
                "issued_at": issued_at,
                "status_list_id": list_id,
                "status_index": status_index,
                "status_seal": signing.status_seal(
                    ctx.box,
                    certificate_id=certificate_id,
                    number=number,
                    status=Status.active,
                    revocation_reason=None,
                    superseded_by=None,
                ),
            }
            payload = signing.payload_of(
                signed,
                issuer_code=issuer.code,
                holder_id_type=id_type,
                holder_id_masked=id_masked,
                holder_ref=row.holder_index,
            )
            signed["signature"] = signing.sign(payload, key=private_key, kid=key.kid)
            signed["record_seal"] = signing.record_seal(
                ctx.box, certificate_id=certificate_id, kid=key.kid, payload=payload, signature=signed["signature"]
            )
            event_rows.append(
                {"certificate_id": certificate_id, "event": "issued", "actor": principal.actor.id, "at": issued_at}
            )
            audit_entries.append(
                audit.Entry(
                    action="certificate.issued",
                    object_type="certificate",
                    object_id=number,
                    purpose="batch issuance",
                    details={
                        "issuer": issuer.code,
                        "catalogue_code": entry.code,
                        "level": request.level,
                        "kid": key.kid,
                        "holder_ref": row.holder_index[:16],
                    },
                )
            )
            answer.append(
                {
                    "row": row.number,
                    "number": number,
                    "number_display": numbering.group_canonical(number),  # minted canonical just above
                    "verify_url": verify_url(ctx, token),
                    "qr_token": token,
                    "claim_code": claim_code,
                }
            )
            yield signed

    if _is_postgres(session):
        # The look-ups are done. Custom plans (see validate) would now re-plan every foreign-key check of the rows
        # written below, one per row and key: a third of the time the database spends on them. Those checks are
        # primary-key probes, which a generic plan serves well however young the table.
        await session.execute(text("SET LOCAL plan_cache_mode = auto"))
    # COPY on PostgreSQL; the columns are the rows' keys, whatever the rows above hold.
    await bulk.insert_rows(session, bulk.table_of(Certificate), minted())
    await bulk.insert_rows(session, bulk.table_of(CertificateEvent), event_rows)
    await audit.append_many(session, actor=principal.actor, entries=audit_entries)
    for cert_type in {row.request.cert_type for row in rows}:
        CERTIFICATES_ISSUED.labels(cert_type=cert_type.value).inc(
            sum(1 for r in rows if r.request.cert_type == cert_type)
        )
    return {"batch_id": str(uuid.uuid4()), "count": len(answer), "certificates": answer}


async def _upsert_holders(
    ctx: RegistryContext, session: AsyncSession, rows: list[_Row]
) -> dict[str, tuple[int, str, str]]:
    """Holder id, id type and masked number per blind index, creating the holders that do not exist yet."""
    unique: dict[str, CertificateIssue] = {}
    for row in rows:
        unique.setdefault(row.holder_index, row.request)
    now = utcnow()
    values = [
        {
            "id_type": request.holder.id_type.value,
            "id_index": index,
            "id_number_encrypted": ctx.box.encrypt(request.holder.id_number.encode(), context=f"holder:{index}"),
            "id_masked": mask_id_number(request.holder.id_type, request.holder.id_number),
            "created_at": now,
        }
        for index, request in unique.items()
    ]
    await bulk.insert_missing(session, bulk.table_of(Holder), values, index_elements=["id_index"])
    result: dict[str, tuple[int, str, str]] = {}
    postgres = _is_postgres(session)
    for chunk in _lookup_chunks(list(unique), postgres=postgres):
        found = await session.execute(
            select(col(Holder.id_index), col(Holder.id), col(Holder.id_type), col(Holder.id_masked)).where(
                _one_of(col(Holder.id_index), chunk, postgres=postgres)
            )
        )
        for index, holder_id, id_type, masked in found:
            assert holder_id is not None
            result[index] = (holder_id, id_type, masked)
    return result


async def _fresh_numbers(session: AsyncSession, *, issuer: Issuer, rows: list[_Row]) -> list[str]:
    numbers = [
        numbering.new_number(
            region=issuer.region, cert_type=row.request.cert_type.value, year=row.request.awarded_on.year
        )
        for row in rows
    ]
    postgres = _is_postgres(session)
    while True:
        # 40 random bits per number: a clash is vanishingly rare, but the unique index must never be what finds it.
        taken: set[str] = set()
        for chunk in _lookup_chunks(numbers, postgres=postgres):
            found = await session.execute(
                select(col(Certificate.number)).where(_one_of(col(Certificate.number), chunk, postgres=postgres))
            )
            taken.update(found.scalars())
        duplicates = {n for n in numbers if numbers.count(n) > 1} if len(set(numbers)) != len(numbers) else set()
        if not taken and not duplicates:
            return numbers
        numbers = [
            numbering.new_number(
                region=issuer.region, cert_type=rows[i].request.cert_type.value, year=rows[i].request.awarded_on.year
            )
            if n in taken or n in duplicates
            else n
            for i, n in enumerate(numbers)
        ]


async def _status_slots(session: AsyncSession, *, issuer_id: int, count: int) -> list[tuple[str, int]]:
    """Random free indexes for ``count`` certificates, filling the open list pair and opening new pairs as needed."""
    slots: list[tuple[str, int]] = []
    limit = int(status_lists.LIST_SIZE * status_lists.FILL_LIMIT)
    while len(slots) < count:
        current = await status_lists.open_list(session, issuer_id=issuer_id)
        in_list = col(Certificate.status_list_id) == current.list_id
        if _is_postgres(session):
            # One array instead of a row per used index: up to 98,304 rows as the list fills.
            taken = (
                await session.execute(select(func.array_agg(col(Certificate.status_index))).where(in_list))
            ).scalar()
            used = set(taken or ())
        else:
            used = set((await session.execute(select(col(Certificate.status_index)).where(in_list))).scalars())
        room = min(count - len(slots), limit - current.used)
        picked: set[int] = set()
        while len(picked) < room:
            index = secrets.randbelow(current.size)
            if index not in used and index not in picked:
                picked.add(index)
        current.used += room
        ordered = list(picked)
        secrets.SystemRandom().shuffle(ordered)  # a set of ints iterates nearly sorted: rows must not map to order
        slots.extend((current.list_id, index) for index in ordered)
        await session.flush()
    return slots
