"""Recording issued certificates: the one place every side effect of issuance happens, for one certificate or ten
thousand — number, signature, record seal, status seal, holder, status-list index, event, audit record, transparency
leaf, metrics.

The hot loop works on plain values and bulk writes (``registry.bulk``: COPY on PostgreSQL): the ORM's per-object
bookkeeping, or even a compiled multi-row INSERT, would cost more than the signing itself at 10,000 rows. Everything
happens in the caller's transaction.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk, workers
from registry.audit import service as audit
from registry.audit.service import Actor
from registry.auth.claim_codes import new_claim_codes
from registry.certificates import journal, minting, numbering, status_lists
from registry.certificates.awards import Accepted
from registry.certificates.models import Certificate, CertificateEvent, Status
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import Forbidden, RecordingConflict
from registry.holders import service as holders
from registry.holders.identity import mask_id_number
from registry.i18n import _
from registry.issuers.models import Issuer
from registry.keys import service as keys
from registry.keys.models import KeyUse
from registry.keys.signers import PortableKey
from registry.metrics import CERTIFICATES_ISSUED
from registry.transparency import service as transparency
from registry.transparency.models import LeafKind

_TOKEN_BYTES = 18  # of a verify token: 144 random bits


@dataclass(frozen=True, slots=True)
class Minted:
    """One recorded certificate: its stored values, the claim code (never stored, shown once) and its holder."""

    accepted: Accepted
    values: dict[str, Any] = field(repr=False)  # the verify token among them
    claim_code: str = field(repr=False)
    holder: holders.HolderRef

    @property
    def number(self) -> str:
        number: str = self.values["number"]
        return number


@dataclass(frozen=True, slots=True)
class _Drafts:
    """What every certificate of one recording shares."""

    issuer: Issuer
    kid: str
    issued_at: datetime
    supersedes: str | None

    def draft(
        self, accepted: Accepted, drawn: _Drawn, *, number: str, slot: tuple[str, int], holder: holders.HolderRef
    ) -> Minted:
        """A certificate with every value drawn at random or given, its cryptography (``minting.SEALED_COLUMNS``)
        still to come."""
        award = accepted.award
        values: dict[str, Any] = {
            "id": drawn.id,
            "number": number,
            "issuer_id": self.issuer.id,
            "kid": self.kid,
            "cert_type": award.cert_type.value,
            "catalogue_code": accepted.entry.code,
            "catalogue_version": accepted.entry.version,
            "level": award.level,
            "holder_id": holder.id,
            "holder_name": award.holder_name,
            "awarded_on": award.awarded_on,
            "valid_until": award.valid_until,
            "evaluation_batch": award.evaluation_batch,
            "status": Status.active.value,
            "verify_token": drawn.verify_token,
            "claim_code_hash": None,
            "issued_at": self.issued_at,
            "supersedes": self.supersedes,
            "status_list_id": slot[0],
            "status_index": slot[1],
            "status_seal": None,
            "signature": None,
            "record_seal": None,
        }
        return Minted(accepted=accepted, values=values, claim_code=drawn.claim_code, holder=holder)


@dataclass(frozen=True, slots=True)
class _Drawn:
    """What is drawn for a certificate before anything is looked up: its id, its claim code, its verify token (144
    random bits) and a first number (which ``_fresh_numbers`` replaces if it is taken)."""

    id: uuid.UUID
    claim_code: str = field(repr=False)  # secrets: never in a log line or a traceback's locals
    number: str
    verify_token: str = field(repr=False)


def _draw(accepted: Sequence[Accepted], *, issuer: Issuer) -> list[_Drawn]:
    """Everything random of every certificate: the numbers, claim codes and verify tokens of the whole recording each
    from one call to the system's random source (ten thousand calls of each cost a batch about a tenth of a second;
    a number whose check would be "*" is drawn again on its own); ids stay ``uuid4()``, one per row."""
    count = len(accepted)
    tokens = base64.urlsafe_b64encode(secrets.token_bytes(_TOKEN_BYTES * count)).decode("ascii")
    step = _TOKEN_BYTES * 4 // 3  # no padding: 18 bytes are 24 characters, as secrets.token_urlsafe(18) makes them
    return [
        _Drawn(uuid.uuid4(), claim_code, number, tokens[at : at + step])
        for claim_code, number, at in zip(
            new_claim_codes(count), _new_numbers(accepted, issuer=issuer), range(0, len(tokens), step), strict=True
        )
    ]


def _new_numbers(accepted: Sequence[Accepted], *, issuer: Issuer) -> list[str]:
    kinds: list[tuple[Literal["title", "skill"], int]] = [
        (item.award.cert_type.value, item.award.awarded_on.year) for item in accepted
    ]
    return numbering.new_numbers(region=issuer.region, kinds=kinds)


def _facts(minted: Minted) -> minting.RowFacts:
    """What a drafted certificate is signed over."""
    holder = minted.holder
    return _facts_of(
        minted.accepted,
        certificate_id=minted.values["id"],
        claim_code=minted.claim_code,
        number=minted.number,
        id_type=holder.id_type,
        id_masked=holder.id_masked,
    )


def _facts_of(
    accepted: Accepted, *, certificate_id: uuid.UUID, claim_code: str, number: str, id_type: str, id_masked: str
) -> minting.RowFacts:
    award, entry = accepted.award, accepted.entry
    return (
        str(certificate_id),
        number,
        claim_code,
        award.cert_type.value,
        entry.code,
        entry.version,
        award.level,
        award.holder_name,
        award.awarded_on,
        award.valid_until,
        award.evaluation_batch,
        id_type,
        id_masked,
        accepted.holder.index,
    )


def _sealed(minted: Minted, sealed: minting.Sealed) -> dict[str, Any]:
    values = minted.values
    values.update(zip(minting.SEALED_COLUMNS, sealed, strict=True))
    return values


def _hand_over_early(
    ctx: RegistryContext, sealing: minting.Sealing, accepted: Sequence[Accepted], drawn: Sequence[_Drawn]
) -> minting.Handed | None:
    """For a large batch (``REGISTRY_BATCH_WORKERS``), every row handed to the worker processes as soon as it is
    screened, with the facts it will most likely be issued with: the workers sign while this process records the
    holders, checks the numbers and takes the status slots. None keeps the signing in this process (small batches,
    no workers, a signer that cannot leave it). ``_rows`` seals again, here, any row whose final facts differ (a number
    re-drawn, a holder on record masked otherwise, a holder known only by index, whose masked number only the
    database knows and which goes with an empty one): what is stored is always signed over what is stored."""
    settings = ctx.settings
    pool = workers.pool_for(len(accepted), count=settings.batch_worker_count, min_rows=settings.batch_parallel_min_rows)
    portable = sealing.portable() if pool is not None else None
    if pool is None or portable is None:
        return None
    facts = [
        _facts_of(
            item,
            certificate_id=item_drawn.id,
            claim_code=item_drawn.claim_code,
            number=item_drawn.number,
            id_type=item.holder.id_type.value,
            id_masked=mask_id_number(item.holder.id_type, item.holder.id_number) if item.holder.id_number else "",
        )
        for item, item_drawn in zip(accepted, drawn, strict=True)
    ]
    return minting.hand_over(pool, portable, facts)


def _rows(
    sealing: minting.Sealing, minted: list[Minted], handed: minting.Handed | None
) -> Iterator[dict[str, Any]] | AsyncIterator[dict[str, Any]]:
    """Each certificate row as soon as it is signed, in row order. On PostgreSQL the COPY sends rows while the next
    are made, so the database stores them (table and indexes) on one core while they are signed on the others: in
    worker processes for a large batch (``handed``), else in this one."""
    signer = sealing.signer
    assert not isinstance(signer, PortableKey)
    if handed is None:
        return (_sealed(m, minting.seal_row(sealing, signer, _facts(m))) for m in minted)

    async def in_pool() -> AsyncIterator[dict[str, Any]]:
        done = 0
        async for chunk in minting.sealed_chunks(handed):
            for sealed in chunk:
                facts = _facts(minted[done])
                if facts != handed.items[done]:
                    sealed = minting.seal_row(sealing, signer, facts)  # handed over with other facts: sealed again
                yield _sealed(minted[done], sealed)
                done += 1

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
) -> list[Minted]:
    """Issue every accepted award (``awards.screen``) in the caller's transaction, in order; ``supersedes`` names the
    certificate a correction replaces. ``purpose`` is what the audit log says it was for."""
    if not accepted:
        return []
    issuer_id = issuer.id or 0
    key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer_id)
    if key is None:
        raise Forbidden(_("evaluation body {code} has no active signing key", code=issuer.code))
    drafts = _Drafts(issuer, key.kid, utcnow().replace(microsecond=0), supersedes)
    sealing = minting.Sealing(ctx.box, ctx.keyring.signer(key), issuer.code, drafts.issued_at)
    drawn = _draw(accepted, issuer=issuer)
    handed = _hand_over_early(ctx, sealing, accepted, drawn)
    try:
        minted = await _drafted(session, drafts, accepted, drawn, ctx=ctx, issuer=issuer)
        await _insert(session, _rows(sealing, minted, handed), minted, actor=actor, at=drafts.issued_at)
    finally:
        if handed is not None:
            handed.cancel()
    events = [
        journal.Event(_audit_entry(m, issuer=issuer, purpose=purpose, supersedes=supersedes), _leaf(m, issuer=issuer))
        for m in minted
    ]
    await journal.record(session, actor=actor, events=events)
    for cert_type in {item.award.cert_type for item in accepted}:
        CERTIFICATES_ISSUED.labels(cert_type=cert_type.value).inc(
            sum(1 for item in accepted if item.award.cert_type == cert_type)
        )
    return minted


async def _drafted(
    session: AsyncSession,
    drafts: _Drafts,
    accepted: Sequence[Accepted],
    drawn: Sequence[_Drawn],
    *,
    ctx: RegistryContext,
    issuer: Issuer,
) -> list[Minted]:
    """Each certificate drafted: its holder found or recorded, its number checked unused, its status slot taken."""
    holder_refs = await holders.upsert(ctx, session, [item.holder for item in accepted])
    numbers = await _fresh_numbers(session, issuer=issuer, accepted=accepted, first=[d.number for d in drawn])
    slots = await status_lists.take_slots(session, issuer_id=issuer.id or 0, count=len(accepted))
    minted = [
        drafts.draft(item, item_drawn, number=number, slot=slot, holder=holder_refs[item.holder.index])
        for item, item_drawn, number, slot in zip(accepted, drawn, numbers, slots, strict=True)
    ]
    if bulk.is_postgres(session) and len(accepted) > 1:
        # The look-ups are done. Custom plans (see awards.Screener.open) would now re-plan every statement still to
        # come in this transaction (the logs' look-ups and writes). Back to whatever the operator configured
        # (DEFAULT), not to a value chosen here.
        await session.execute(text("SET LOCAL plan_cache_mode TO DEFAULT"))
    return minted


async def _insert(
    session: AsyncSession,
    rows: Iterator[dict[str, Any]] | AsyncIterator[dict[str, Any]],
    minted: list[Minted],
    *,
    actor: Actor,
    at: datetime,
) -> None:
    """The certificates as ``rows`` makes them (completing ``minted``), then their "issued" events."""
    supersedes = minted[0].values["supersedes"] if minted else None
    reason = f"correction of {supersedes}" if supersedes else None
    try:
        await bulk.insert_rows(session, bulk.table_of(Certificate), rows)
        events = (  # made as the COPY takes them
            {"certificate_id": m.values["id"], "event": "issued", "actor": actor.id, "at": at, "reason": reason}
            for m in minted
        )
        await bulk.insert_rows(session, bulk.table_of(CertificateEvent), events)
    except IntegrityError as exc:
        if not bulk.is_unique_violation(exc):
            raise
        # 40 random bits of number, 144 of token, random status indexes: a clash means a retry will succeed.
        raise RecordingConflict(
            _("the certificates could not be recorded; retry with the same Idempotency-Key")
        ) from None


def _audit_entry(minted: Minted, *, issuer: Issuer, purpose: str, supersedes: str | None) -> audit.Entry:
    values = minted.values
    details: dict[str, Any] = {
        "issuer": issuer.code,
        "catalogue_code": values["catalogue_code"],
        "level": values["level"],
        "kid": values["kid"],
        "holder_ref": minted.accepted.holder.index[:16],
    }
    if supersedes is not None:
        details["supersedes"] = supersedes
    return audit.Entry(
        action="certificate.issued",
        object_type="certificate",
        object_id=minted.number,
        purpose=purpose,
        details=details,
    )


def _leaf(minted: Minted, *, issuer: Issuer) -> transparency.Entry:
    values = minted.values
    supersedes: str | None = values["supersedes"]
    return transparency.Entry(
        kind=LeafKind.issuance if supersedes is None else LeafKind.correction,
        number=minted.number,
        at=values["issued_at"],
        event="issued",
        status=values["status"],
        issuer=issuer.code,
        signature=values["signature"],
        supersedes=supersedes,
    )


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
        for index, number in zip(again, _new_numbers([accepted[i] for i in again], issuer=issuer), strict=True):
            numbers[index] = number
