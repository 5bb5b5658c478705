"""Recording issued certificates: the one place every side effect of issuance happens, for one certificate or ten
thousand — number, signature, record seal, status seal, holder, status-list index, event, audit record, transparency
leaf, metrics.

The hot loop works on plain values and bulk writes (``registry.bulk``: COPY on PostgreSQL): the ORM's bookkeeping,
or even a compiled multi-row INSERT, costs more than the signing at 10,000 rows. All in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk
from registry.audit import service as audit
from registry.audit.service import Actor
from registry.certificates import drafting, journal, minting, signing, status_lists
from registry.certificates.awards import Accepted
from registry.certificates.models import Certificate, CertificateEvent, Status
from registry.context import RegistryContext
from registry.errors import Forbidden, RecordingConflict
from registry.holders import service as holders
from registry.i18n import _
from registry.issuers.models import Issuer
from registry.keys.secrets_box import SecretsBox
from registry.keys.signers import PortableKey
from registry.metrics import CERTIFICATES_ISSUED
from registry.transparency import service as transparency
from registry.transparency.models import LeafKind

# A certificate's columns in the order recording makes its values (a record, not a mapping: benchmarks/README.md,
# "Records, not mappings"); the status seal and the cryptography (``minting.SEALED_COLUMNS``) last, filled in when the
# row is sealed.
COLUMNS: tuple[str, ...] = (
    "id",
    "number",
    "issuer_id",
    "kid",
    "cert_type",
    "catalogue_code",
    "catalogue_version",
    "level",
    "holder_id",
    "holder_name",
    "awarded_on",
    "valid_until",
    "evaluation_batch",
    "status",
    "verify_token",
    "issued_at",
    "supersedes",
    "status_list_id",
    "status_index",
    "status_seal",
    *minting.SEALED_COLUMNS,
)
_AT = {column: index for index, column in enumerate(COLUMNS)}
_SEALED = slice(len(COLUMNS) - len(minting.SEALED_COLUMNS), None)
_STATUS_SEAL, _LIST, _INDEX = _AT["status_seal"], _AT["status_list_id"], _AT["status_index"]
_EVENT_COLUMNS = ("certificate_id", "event", "actor", "at", "reason")


@dataclass(frozen=True, slots=True)
class Minted:
    """One recorded certificate: its stored values, the claim code (never stored, shown once) and its holder."""

    accepted: Accepted
    record: list[Any] = field(repr=False)  # the values in the order of COLUMNS, the verify token among them
    claim_code: str = field(repr=False)
    holder: holders.HolderRef

    def value(self, column: str) -> Any:
        return self.record[_AT[column]]

    @property
    def number(self) -> str:
        number: str = self.record[1]
        return number

    @property
    def verify_token(self) -> str:
        token: str = self.record[_AT["verify_token"]]
        return token

    @property
    def values(self) -> dict[str, Any]:
        """The stored values by column."""
        return dict(zip(COLUMNS, self.record, strict=True))


def _draft(
    begun: drafting.Begun,
    accepted: Accepted,
    drawn: drafting.Drawn,
    *,
    number: str,
    slot: tuple[str, int],
    holder: holders.HolderRef,
) -> Minted:
    """A certificate with every value drawn at random or given, its cryptography (``minting.SEALED_COLUMNS``) still
    to come."""
    award, entry = accepted.award, accepted.entry
    record = [
        drawn.id,
        number,
        begun.issuer.id,
        begun.kid,
        award.cert_type.value,
        entry.code,
        entry.version,
        award.level,
        holder.id,
        award.holder_name,
        award.awarded_on,
        award.valid_until,
        award.evaluation_batch,
        _ACTIVE,
        drawn.verify_token,
        begun.issued_at,
        begun.supersedes,
        *slot,
        None,
        None,
        None,
        None,
    ]
    return Minted(accepted=accepted, record=record, claim_code=drawn.claim_code, holder=holder)


_ACTIVE = Status.active.value


def _facts(minted: Minted) -> minting.RowFacts:
    """What a drafted certificate is signed over."""
    holder = minted.holder
    return drafting.facts_of(
        minted.accepted,
        certificate_id=minted.record[0],
        claim_code=minted.claim_code,
        number=minted.number,
        id_type=holder.id_type,
        id_masked=holder.id_masked,
    )


def _sealed(box: SecretsBox, minted: Minted, sealed: minting.Sealed, *, certificate_id: str) -> list[Any]:
    """The row complete: the worker's (or this process's) cryptography, and the status seal, made here whichever made
    the rest, as only now is the row's status-list slot known (one HMAC, a couple of µs). ``certificate_id``: the
    row's id as its facts (``minting.RowFacts``) have it, as text, which the seal covers (not written again)."""
    record = minted.record
    record[_SEALED] = sealed
    record[_STATUS_SEAL] = signing.status_seal(
        box,
        certificate_id=certificate_id,
        number=record[1],
        status=_ACTIVE,
        revocation_reason=None,
        superseded_by=None,
        status_list_id=record[_LIST],
        status_index=record[_INDEX],
    )
    return record


def _sealed_as_recorded(early: minting.RowFacts, minted: Minted) -> bool:
    """Whether a row handed over early (``Begun``) was sealed over the facts it is recorded with. Only what
    ``_drafted`` looks up can differ from what was assumed then: the number (drawn again if taken) and the holder's
    document type and masked number (as the holder on record has them); every other fact is the same value."""
    holder = minted.holder
    number, id_type, id_masked = minting.NUMBER, minting.ID_TYPE, minting.ID_MASKED
    return early[number] == minted.number and early[id_type] == holder.id_type and early[id_masked] == holder.id_masked


def _rows(
    begun: drafting.Begun, minted: list[Minted], then: Callable[[Minted], None]
) -> Iterator[list[Any]] | AsyncIterator[list[Any]]:
    """Each certificate row as soon as it is signed, in row order, ``then`` called with it (its logs' entries made
    ready). On PostgreSQL the COPY sends rows while the next are made, so the database stores them (table and
    indexes) on one core while they are signed on the others — in worker processes for a large batch (what
    ``begun`` handed over), else in this one — and the logs' entries are made here meanwhile."""
    sealing = begun.sealing
    signer = sealing.signer
    assert not isinstance(signer, PortableKey)

    box = sealing.box

    def done(item: Minted, sealed: minting.Sealed, facts: minting.RowFacts) -> list[Any]:
        record = _sealed(box, item, sealed, certificate_id=facts[0])
        then(item)
        return record

    def here(item: Minted) -> list[Any]:
        facts = _facts(item)
        return done(item, minting.seal_row(sealing, signer, facts), facts)

    if not begun.handed:
        return (here(m) for m in minted)

    async def in_pool() -> AsyncIterator[list[Any]]:
        index = 0
        for handed in begun.handed:
            async for chunk in minting.sealed_chunks(handed):
                for sealed in chunk:
                    item, early = minted[index], begun.facts[index]
                    if not _sealed_as_recorded(early, item):  # sealed over other facts: sealed again
                        yield here(item)
                    else:
                        yield done(item, sealed, early)
                    index += 1

    return in_pool()


async def record(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    actor: Actor,
    issuer: Issuer,
    accepted: Sequence[Accepted],
    purpose: str,
    supersedes: str | None = None,
    begun: drafting.Begun | None = None,
) -> list[Minted]:
    """Issue every accepted award (``awards.screen``) in the caller's transaction, in order; ``supersedes`` names the
    certificate a correction replaces. ``purpose`` is what the audit log says it was for. ``begun``: the awards as a
    batch began them while screening, taken over if they are exactly these."""
    if not accepted:
        return []
    if begun is None or not begun.takes(accepted, issuer=issuer, supersedes=supersedes):
        if begun is not None:
            begun.cancel()
        begun = await drafting.begin(ctx, session, issuer=issuer, rows=len(accepted), supersedes=supersedes)
        if begun is None:
            raise Forbidden(_("evaluation body {code} has no active signing key", code=issuer.code))
        begun.add(accepted)
    logs = journal.Journal(actor)
    logged = _Logged(logs, begun, issuer_code=issuer.code, purpose=purpose, supersedes=supersedes)

    try:
        minted = await _drafted(session, begun, accepted, ctx=ctx)
        await _insert(session, _rows(begun, minted, logged), minted, actor=actor, at=begun.issued_at)
    finally:
        begun.cancel()
    await logs.write(session)
    for cert_type in {item.award.cert_type for item in accepted}:
        CERTIFICATES_ISSUED.labels(cert_type=cert_type.value).inc(
            sum(1 for item in accepted if item.award.cert_type == cert_type)
        )
    return minted


async def _drafted(
    session: AsyncSession, begun: drafting.Begun, accepted: Sequence[Accepted], *, ctx: RegistryContext
) -> list[Minted]:
    """Each certificate drafted: its holder found or recorded, its number checked unused, its status slot taken."""
    issuer = begun.issuer
    holder_refs = await holders.upsert(ctx, session, [item.holder for item in accepted])
    numbers = await _fresh_numbers(session, issuer=issuer, accepted=accepted, first=[d.number for d in begun.drawn])
    slots = await status_lists.take_slots(session, ctx.box, issuer_id=issuer.id or 0, count=len(accepted))
    minted = [
        _draft(begun, item, item_drawn, number=number, slot=slot, holder=holder_refs[item.holder.index])
        for item, item_drawn, number, slot in zip(accepted, begun.drawn, numbers, slots, strict=True)
    ]
    if bulk.is_postgres(session) and len(accepted) > 1:
        # The look-ups are done. Custom plans (see awards.Screener.open) would now re-plan every statement still to
        # come in this transaction (the logs' look-ups and writes). Back to whatever the operator configured
        # (DEFAULT), not to a value chosen here.
        await session.execute(text("SET LOCAL plan_cache_mode TO DEFAULT"))
    return minted


async def _insert(
    session: AsyncSession,
    rows: Iterator[list[Any]] | AsyncIterator[list[Any]],
    minted: list[Minted],
    *,
    actor: Actor,
    at: datetime,
) -> None:
    """The certificates as ``rows`` makes them (completing ``minted``), then their "issued" events."""
    supersedes = minted[0].value("supersedes") if minted else None
    reason = f"correction of {supersedes}" if supersedes else None
    try:
        await bulk.insert_records(session, bulk.table_of(Certificate), COLUMNS, rows)
        events = ((m.record[0], "issued", actor.id, at, reason) for m in minted)  # made as the COPY takes them
        await bulk.insert_records(session, bulk.table_of(CertificateEvent), _EVENT_COLUMNS, events)
    except IntegrityError as exc:
        if not bulk.is_unique_violation(exc):
            raise
        # 40 random bits of number, 144 of token, random status indexes: a clash means a retry will succeed.
        raise RecordingConflict(
            _("the certificates could not be recorded; retry with the same Idempotency-Key")
        ) from None


class _Logged:
    """Each certificate's audit record and transparency leaf, added to ``logs`` as the certificate is sealed. What a
    batch's entries share is written once (``audit.Preparing``, ``transparency.Leaves``): each entry costs the
    writing of its own values only, and makes the same bytes as ``audit.prepare`` and ``Entry.data`` would."""

    __slots__ = ("_audit", "_issuer_code", "_leaves", "_logs", "_supersedes")

    def __init__(
        self, logs: journal.Journal, begun: drafting.Begun, *, issuer_code: str, purpose: str, supersedes: str | None
    ) -> None:
        self._logs, self._issuer_code, self._supersedes = logs, issuer_code, supersedes
        self._audit = audit.Preparing(
            actor=logs.actor, action="certificate.issued", object_type="certificate", purpose=purpose
        )
        self._leaves = transparency.Leaves(
            kind=LeafKind.issuance if begun.supersedes is None else LeafKind.correction,
            at=begun.issued_at,
            event="issued",
            status=_ACTIVE,
            issuer=issuer_code,
            supersedes=begun.supersedes,
        )

    def __call__(self, minted: Minted) -> None:
        record, number = minted.record, minted.record[1]
        details: dict[str, Any] = {
            "issuer": self._issuer_code,
            "catalogue_code": record[_CATALOGUE_CODE],
            "level": record[_LEVEL],
            "kid": record[_KID],
            "holder_ref": minted.accepted.holder.index[:16],
        }
        if self._supersedes is not None:
            details["supersedes"] = self._supersedes
        self._logs.add_made(self._audit.prepare(number, details), self._leaves.leaf(number, record[_SIGNATURE]))


_CATALOGUE_CODE, _LEVEL, _KID, _SIGNATURE = _AT["catalogue_code"], _AT["level"], _AT["kid"], _AT["signature"]


async def _fresh_numbers(
    session: AsyncSession, *, issuer: Issuer, accepted: Sequence[Accepted], first: list[str]
) -> list[str]:
    """``first`` (drawn for each award), with every number already taken or repeated drawn again: 40 random bits each,
    so a clash is vanishingly rare, but the unique index must never be what finds one. One look-up per round, for the
    whole batch."""
    numbers = first
    postgres = bulk.is_postgres(session)
    while True:
        taken: set[str] = set()
        for chunk in bulk.lookup_chunks(numbers, postgres=postgres):
            found = await session.execute(
                select(col(Certificate.number)).where(bulk.one_of(col(Certificate.number), chunk, postgres=postgres))
            )
            taken.update(found.scalars())
        repeated = {n for n in numbers if numbers.count(n) > 1} if len(set(numbers)) != len(numbers) else set()
        if not taken and not repeated:
            return numbers
        again = [index for index, n in enumerate(numbers) if n in taken or n in repeated]
        numbers = list(numbers)
        redrawn = drafting.new_numbers_for([accepted[i] for i in again], issuer=issuer)
        for index, number in zip(again, redrawn, strict=True):
            numbers[index] = number
