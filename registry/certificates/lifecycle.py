"""Status changes (suspend, reinstate, revoke), corrections, and a certificate's history.

Which transitions are allowed is data, not code paths; each change is an event, an audit record, a transparency leaf
and a status-list bit, all in the request's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import service as audit
from registry.auth.principals import Principal
from registry.auth.scopes import Role
from registry.catalogue.models import CertType
from registry.certificates import awards, idempotency, issuance, journal, recording, signing, status_lists
from registry.certificates.awards import Award
from registry.certificates.idempotency import Outcome
from registry.certificates.models import Certificate, CertificateEvent, Status
from registry.certificates.records import CertificateRecord, to_public
from registry.certificates.schemas import (
    NOTHING_CORRECTED,
    CertificateEventPublic,
    CertificateIssued,
    CertificatePublic,
    Correction,
    RevocationReason,
)
from registry.certificates.status_lists import Purpose
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import Forbidden, IllegalTransition, InvalidInput
from registry.holders.identity import IdType
from registry.i18n import Message, _
from registry.transparency import service as transparency
from registry.transparency.models import LeafKind

log = logging.getLogger(__name__)

# (from status, action) -> to status. Revoked and superseded are final: nothing leaves them.
TRANSITIONS: dict[tuple[Status, str], Status] = {
    (Status.active, "suspend"): Status.suspended,
    (Status.suspended, "reinstate"): Status.active,
    (Status.active, "revoke"): Status.revoked,
    (Status.suspended, "revoke"): Status.revoked,
}
# The one change TRANSITIONS leaves out, the bureau's alone: its suspension of a certificate its body suspended, which
# becomes the bureau's hold (``_bureau_takes_over``). A replayed history (``histories``) allows it too.
TAKEOVERS: dict[tuple[Status, str], Status] = {(Status.suspended, "suspend"): Status.suspended}
CORRECT_OPERATION = "certificates.correct"
# What a status and a refused change are called where a person reads them.
STATUS_WORDS: dict[Status, Message] = {
    Status.active: _("active"),
    Status.suspended: _("suspended"),
    Status.revoked: _("revoked"),
    Status.superseded: _("superseded"),
}
NOT_ALLOWED: dict[str, Callable[[Message], Message]] = {
    "suspend": lambda status: _("a {status} certificate cannot be suspended", status=status),
    "reinstate": lambda status: _(
        "the certificate is {status}: only a suspended certificate can be reinstated", status=status
    ),
    "revoke": lambda status: _("a {status} certificate cannot be revoked", status=status),
}
# A suspended certificate is under review: correcting it would hand out an active successor behind the suspension.
CORRECTABLE = frozenset({Status.active})
BUREAU = "bureau"  # reason_code marking a suspension by the bureau, which only the bureau may lift
STATUS_BITS = status_lists.STATUS_BITS  # what each resulting status means for the two published bits


async def change_status(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    record: CertificateRecord,
    action: str,
    reason: str,
    reason_code: RevocationReason | None = None,
) -> CertificatePublic:
    """``record`` is the certificate as ``records.get_visible(..., for_update=True)`` loaded it for ``principal``."""
    cert = record.certificate
    current = Status(cert.status)
    target = TRANSITIONS.get((current, action))
    if target is None and await _bureau_takes_over(session, principal, cert, current=current, action=action):
        target = TAKEOVERS[(current, action)]  # the body's suspension becomes the bureau's hold, only it lifts
    if target is None:
        raise IllegalTransition(NOT_ALLOWED[action](STATUS_WORDS[current]))
    if action == "reinstate" and principal.role is not Role.admin and await _suspended_by_bureau(session, cert):
        raise Forbidden(_("the bureau suspended this certificate; only the bureau can reinstate it"))
    if action == "suspend" and principal.role is Role.admin:
        reason_code = None
    intact = _seal_intact(ctx, cert)  # before the change: only a row the registry vouched for is sealed again
    cert.status = target
    if target is Status.revoked:
        cert.revocation_reason = (reason_code or RevocationReason.other).value
    _reseal(ctx, cert, intact=intact)
    await _publish_bits(ctx, session, cert, status=target, intact=intact)
    at = utcnow()  # the event's time, and its transparency leaf's
    session.add(
        CertificateEvent(
            certificate_id=cert.id,
            at=at,
            event=_past(action),
            reason_code=(
                reason_code.value
                if reason_code
                else BUREAU
                if action == "suspend" and principal.role is Role.admin
                else None
            ),
            reason=reason,
            actor=principal.actor.id,
        )
    )
    entry = audit.Entry(
        action=f"certificate.{_past(action)}",
        object_type="certificate",
        object_id=cert.number,
        purpose="status change",
        details={"from": current.value, "to": target.value, "reason_code": reason_code, "reason": reason},
    )
    leaf = _leaf(record, event=_past(action), at=at, reason_code=reason_code if target is Status.revoked else None)
    await journal.record(session, actor=principal.actor, events=[journal.Event(entry, leaf)])
    await session.flush()
    return to_public(ctx, record)


async def correct(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    record: CertificateRecord,
    correction: Correction,
    idempotency_key: str | None = None,
) -> Outcome:
    """201 with the corrected successor (see ``_supersede``); a retry with the same Idempotency-Key gets the same
    answer instead of a second successor."""

    async def run() -> Outcome:
        successor = await _supersede(ctx, session, principal=principal, record=record, correction=correction)
        return Outcome(201, successor.model_dump_json().encode())

    given = correction.model_dump(mode="json", exclude_unset=True)
    digest = idempotency.request_hash({"number": record.certificate.number, "correction": given})
    return await idempotency.once(
        ctx, session, principal=principal, operation=CORRECT_OPERATION, key=idempotency_key, digest=digest, run=run
    )


async def _supersede(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    record: CertificateRecord,
    correction: Correction,
) -> CertificateIssued:
    """Issue a corrected successor with a new number; the original answers 'superseded' and points to it. The
    successor goes through every rule of issuance, except that the original does not count as a duplicate."""
    old = record.certificate
    if principal.issuer_id != old.issuer_id:
        raise Forbidden(_("only the issuing body corrects its certificates"))
    if Status(old.status) not in CORRECTABLE:
        raise IllegalTransition(
            _("a {status} certificate cannot be corrected", status=STATUS_WORDS[Status(old.status)])
        )
    award, changed = _corrected(record, correction)
    # The body's turn to issue first, as issuance takes it: locks are taken the body's issuance lock, then the old
    # list's rows, then its open list (often the same list), then the audit chain. Issuance takes the issuance lock
    # before its open list too, and a revocation takes a list's rows before the audit chain, so no two of them wait
    # on each other in opposite orders. (Bits first, as this once did, deadlocked with issuance on the shared list.)
    screening = await awards.screen(ctx, session, issuer=record.issuer, awards=[(1, award)], replacing=old)
    screening.refuse_single()
    intact = _seal_intact(ctx, old)  # before the change: only a row the registry vouched for is sealed again
    await _publish_bits(ctx, session, old, status=Status.superseded, intact=intact)
    [minted] = await recording.record(
        ctx,
        session,
        actor=principal.actor,
        issuer=record.issuer,
        accepted=screening.accepted,
        purpose="correction",
        supersedes=old.number,
    )
    old.status = Status.superseded
    old.superseded_by = minted.number
    _reseal(ctx, old, intact=intact)
    at = utcnow()
    session.add(
        CertificateEvent(
            certificate_id=old.id, at=at, event="superseded", reason=correction.reason, actor=principal.actor.id
        )
    )
    entry = audit.Entry(
        action="certificate.superseded",
        object_type="certificate",
        object_id=old.number,
        purpose="correction",
        details={"superseded_by": minted.number, "reason": correction.reason, "changed": changed},
    )
    leaf = _leaf(record, event="superseded", at=at)
    await journal.record(session, actor=principal.actor, events=[journal.Event(entry, leaf)])
    await session.flush()
    return issuance.issued_view(ctx, record.issuer, minted)


def _corrected(record: CertificateRecord, correction: Correction) -> tuple[Award, list[str]]:
    """The corrected award and the names of the fields whose value it changes. A correction whose every value is the
    one on record is refused like one that gives none: it would supersede a certificate with its own copy."""
    current = _award_of(record)
    given = correction.model_dump(exclude_unset=True, exclude={"reason"})
    changed = sorted(name for name, value in given.items() if getattr(current, name) != value)
    if not changed:
        raise InvalidInput.field("reason", NOTHING_CORRECTED)
    return replace(current, **given), changed


def _leaf(
    record: CertificateRecord, *, event: str, at: datetime, reason_code: RevocationReason | None = None
) -> transparency.Entry:
    """The public log's line for a status change: the new status and public reason code, never the free text."""
    cert = record.certificate
    return transparency.Entry(
        kind=LeafKind.status_change,
        number=cert.number,
        at=at,
        event=event,
        status=Status(cert.status).value,
        issuer=record.issuer.code,
        signature=cert.signature,
        reason_code=reason_code.value if reason_code else None,
    )


def _award_of(record: CertificateRecord) -> Award:
    """What the certificate awarded, to whom (the holder on record, by blind index): what a correction changes."""
    cert = record.certificate
    return Award(
        cert_type=CertType(cert.cert_type),
        catalogue_code=cert.catalogue_code,
        level=cert.level,
        holder_name=cert.holder_name,
        id_type=IdType(record.holder.id_type),
        id_number="",
        known_holder=record.holder.id_index,
        awarded_on=cert.awarded_on,
        valid_until=cert.valid_until,
        evaluation_batch=cert.evaluation_batch,
    )


PURPOSE_NOT_STATED = "not stated"  # what the audit log says of a bureau's read of a history that gave no purpose


async def history(
    session: AsyncSession, *, principal: Principal, record: CertificateRecord, purpose: str | None = None
) -> list[CertificateEventPublic]:
    """A certificate's status history, with the body's reasons. The bureau reading another body's is audited like its
    lists and exports (``certificate.history_read``, with ``purpose``, or ``not stated``: the route predates it and
    does not require one); a body reading its own is not, as none of its reads of its own certificates are."""
    if principal.holder_index is not None:
        raise Forbidden(_("the status history is for the issuing body and the bureau"))
    rows = (
        await session.execute(
            select(CertificateEvent)
            .where(col(CertificateEvent.certificate_id) == record.certificate.id)
            .order_by(col(CertificateEvent.at), col(CertificateEvent.id))
        )
    ).scalars()
    events = [
        CertificateEventPublic(event=e.event, reason_code=e.reason_code, reason=e.reason, actor=e.actor, at=e.at)
        for e in rows
    ]
    if principal.role is Role.admin:
        await audit.append(
            session,
            actor=principal.actor,
            action="certificate.history_read",
            object_type="certificate",
            object_id=record.certificate.number,
            purpose=purpose or PURPOSE_NOT_STATED,
            details={"issuer": record.issuer.code, "events": len(events), "purpose_stated": purpose is not None},
        )
    return events


async def _publish_bits(
    ctx: RegistryContext, session: AsyncSession, cert: Certificate, *, status: Status, intact: bool
) -> None:
    """Flip the certificate's bits at its slot. A certificate whose seal did not check out has a slot the registry
    cannot vouch for (it may have been moved with SQL, away from the index its credential names): then every list of
    its body is left unsealed, so unserved (503), rather than published with that index still saying valid."""
    if not intact:
        await status_lists.withhold_lists(session, issuer_id=cert.issuer_id)
        return
    if cert.status_list_id is None or cert.status_index is None:
        return
    revoked, suspended = STATUS_BITS[status]
    for purpose, value in ((Purpose.revocation, revoked), (Purpose.suspension, suspended)):
        await status_lists.set_status(
            session, ctx.box, list_id=cert.status_list_id, index=cert.status_index, purpose=purpose, value=value
        )


async def _bureau_takes_over(
    session: AsyncSession, principal: Principal, cert: Certificate, *, current: Status, action: str
) -> bool:
    """Whether this is the bureau suspending a certificate its body suspended (and the bureau has not): without it, a
    body would suspend its own certificate first to keep the bureau's hold off it, and reinstate it at will."""
    if (current, action) not in TAKEOVERS or principal.role is not Role.admin:
        return False
    return not await _suspended_by_bureau(session, cert)


async def _suspended_by_bureau(session: AsyncSession, cert: Certificate) -> bool:
    last = (
        await session.execute(
            select(CertificateEvent)
            .where(col(CertificateEvent.certificate_id) == cert.id, col(CertificateEvent.event) == "suspended")
            .order_by(col(CertificateEvent.at).desc(), col(CertificateEvent.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return last is not None and last.reason_code == BUREAU


def _seal_intact(ctx: RegistryContext, cert: Certificate) -> bool:
    fields = ("id", "number", "status", "revocation_reason", "superseded_by", "status_list_id", "status_index")
    return signing.status_seal_intact(ctx.box, cert.status_seal, {name: getattr(cert, name) for name in fields})


def _reseal(ctx: RegistryContext, cert: Certificate, *, intact: bool) -> None:
    """Seal the changed status fields and slot, unless the row's seal did not check out before the change (its status
    or status-list slot written with SQL): sealing it then would vouch for a slot someone else chose, so it stays
    'unknown' (status_tampered) and ``registry audit verify`` names it."""
    if not intact:
        log.error(
            "certificate %s: its status fields or status-list slot do not match their seal; now %s, not sealed again, "
            "and every status list of its body withheld (503) until it is repaired",
            cert.number,
            cert.status,
        )
        return
    cert.status_seal = signing.status_seal(
        ctx.box,
        certificate_id=cert.id,
        number=cert.number,
        status=cert.status,
        revocation_reason=cert.revocation_reason,
        superseded_by=cert.superseded_by,
        status_list_id=cert.status_list_id,
        status_index=cert.status_index,
    )


def _past(action: str) -> str:
    return {"suspend": "suspended", "reinstate": "reinstated", "revoke": "revoked"}[action]
