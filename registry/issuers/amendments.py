"""Amending a body's filed scope (备案范围): a new version from an effective date, never an edit of what was filed.

Certificates are judged by the version in force on their award date, so an amendment may only take effect after
today: awards cannot be dated in the future, so no certificate already issued is ever judged by another version.
For the same reason an amendment not yet in force may be withdrawn (``withdraw``): its version goes, and the versions
it closed run on as filed before it. Its audit record is what says how they were filed: the amendment keeps each
closed version as it was (``before``) and its new one (``after``) there, in the append-only, hash-chained log.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import clock
from registry.audit import service as audit
from registry.audit.models import AuditRecord
from registry.audit.service import Actor
from registry.db import utcnow
from registry.errors import Conflict, FieldError, IllegalTransition, InvalidInput, NotFound, said_masked
from registry.i18n import _, word
from registry.issuers import service
from registry.issuers.models import FiledScope, Issuer
from registry.issuers.schemas import IssuerPublic, ScopeAmendment, ScopeWithdrawal

MOST_DAYS_AHEAD = timedelta(days=3 * 365)
AMENDED = "issuer.scope_amended"
WITHDRAWN = "issuer.scope_withdrawn"


async def amend_scope(session: AsyncSession, *, actor: Actor, code: str, body: ScopeAmendment) -> IssuerPublic:
    """The versions of ``body.cert_type`` in force on ``effective_from`` end the day before (their closing date is
    the only change to them); the new version starts that day. Refused (409) while a version of that type already
    starts on or after that day: amend that one's successor instead of racing it."""
    issuer = await _issuer_for_update(session, code)
    _refuse_past(body)
    # The new version runs from effective_from until amended; the versions it closes only get shorter, ending the
    # day before a day after today, so each still meets every entry it names (catalogue.not_fileable).
    await service.check_filings(session, [("", body, body.effective_from, None)])
    versions = [s for s in await service.filed_scopes(session, issuer.id or 0) if s.cert_type == body.cert_type]
    replaced = _replaced(versions, body)
    before = [_summary(s) for s in replaced]
    for scope in replaced:
        scope.valid_until = body.effective_from - timedelta(days=1)
    successor = _successor(issuer, body)
    if successor is not None:
        session.add(successor)
    await session.flush()
    await audit.append(
        session,
        actor=actor,
        action=AMENDED,
        object_type="issuer",
        object_id=issuer.code,
        purpose="filing of an evaluation body",
        details={
            "cert_type": body.cert_type.value,
            "effective_from": body.effective_from.isoformat(),
            "basis": body.basis,
            "before": before,
            "after": _summary(successor) if successor is not None else None,
        },
    )
    return await service.public_view(session, issuer)


def _refuse_past(body: ScopeAmendment) -> None:
    today = clock.today()
    if body.effective_from <= today:
        raise InvalidInput.field(
            "effective_from",
            _(
                "must be after today ({today}): certificates already awarded keep the filing of their award date",
                today=today.isoformat(),
            ),
        )
    # A mistyped year (2207 for 2027) would hold the body's filing of that type until then, ahead of every later
    # amendment (``_replaced``), and be withdrawn only by undoing every amendment filed after it.
    latest = today + MOST_DAYS_AHEAD
    if body.effective_from > latest:
        raise InvalidInput.field(
            "effective_from",
            _(
                "must be no later than {latest}, {years} years from today: a filing is amended for what is coming",
                latest=latest.isoformat(),
                years=MOST_DAYS_AHEAD.days // 365,
            ),
        )


def _replaced(versions: list[FiledScope], body: ScopeAmendment) -> list[FiledScope]:
    """The versions of the amended type in force on ``effective_from``; refused while one starts on or after it."""
    later = sorted(s.valid_from for s in versions if s.valid_from >= body.effective_from)
    if later:
        message = _(
            "a version of the {cert_type} filing already starts on {day}",
            cert_type=word(body.cert_type.value),
            day=later[0].isoformat(),
        )
        raise Conflict(message, errors=[FieldError(field="effective_from", message=message)])
    replaced = [s for s in versions if s.valid_until is None or s.valid_until >= body.effective_from]
    if not replaced and not body.catalogue_codes:
        raise IllegalTransition(
            _(
                "no {cert_type} filing is in force on {day} to end",
                cert_type=word(body.cert_type.value),
                day=body.effective_from.isoformat(),
            )
        )
    return replaced


async def _issuer_for_update(session: AsyncSession, code: str) -> Issuer:
    """Two amendments of one body are one after the other: each sees the versions the other left."""
    query = select(Issuer).where(col(Issuer.code) == code).with_for_update()
    issuer = (await session.execute(query)).scalar_one_or_none()
    if issuer is None:
        raise NotFound(_("no evaluation body {code}", code=said_masked(code)))
    return issuer


def _successor(issuer: Issuer, body: ScopeAmendment) -> FiledScope | None:
    if not body.catalogue_codes:
        return None  # a withdrawal: the filing for this type ends, nothing follows it
    return FiledScope(
        issuer_id=issuer.id or 0,
        cert_type=body.cert_type.value,
        catalogue_codes=sorted(set(body.catalogue_codes)),
        levels=sorted(set(body.levels)),
        valid_from=body.effective_from,
        basis=body.basis,
        filed_at=utcnow(),
    )


def _summary(scope: FiledScope) -> dict[str, Any]:
    """A version as the audit record keeps it (``valid_until`` as it was before the amendment closed it)."""
    return {
        "id": scope.id,
        "catalogue_codes": scope.catalogue_codes,
        "levels": scope.levels,
        "valid_from": scope.valid_from.isoformat(),
        "valid_until": scope.valid_until.isoformat() if scope.valid_until else None,
        "basis": scope.basis,
    }


async def withdraw(session: AsyncSession, *, actor: Actor, code: str, body: ScopeWithdrawal) -> IssuerPublic:
    """Withdraw the body's latest amendment of ``body.cert_type``, from ``body.effective_from``, while it is not yet
    in force: its version is removed and the versions it closed get back the last day they had. One at a time, the
    latest first (each undoes exactly what it did). Under the body's row lock, as amendments: one filed meanwhile
    is seen (and is the latest), and the day is read once the lock is held, so a version that took effect while
    this waited is not withdrawn (409)."""
    issuer = await _issuer_for_update(session, code)
    record = _latest(issuer.code, await _amendments(session, issuer.code, body.cert_type.value), body)
    effective = date.fromisoformat(record.details["effective_from"])
    if effective <= clock.today():
        raise IllegalTransition(
            _(
                "the amendment of the {cert_type} filing from {day} has taken effect: amend the filing instead",
                cert_type=word(body.cert_type.value),
                day=effective.isoformat(),
            )
        )
    versions = {s.id: s for s in await service.filed_scopes(session, issuer.id or 0)}
    after = record.details.get("after") or {}
    withdrawn = versions.get(after.get("id"))
    if withdrawn is not None:
        await session.delete(withdrawn)
    restored = []
    for before in record.details.get("before", []):
        version = versions.get(before["id"])
        if version is not None:
            version.valid_until = date.fromisoformat(before["valid_until"]) if before["valid_until"] else None
            restored.append({"id": version.id, "valid_until": before["valid_until"]})
    await session.flush()
    await audit.append(
        session,
        actor=actor,
        action=WITHDRAWN,
        object_type="issuer",
        object_id=issuer.code,
        purpose="filing of an evaluation body",
        details={
            "cert_type": body.cert_type.value,
            "effective_from": effective.isoformat(),
            "amendment": record.id,
            "reason": body.reason,
            "withdrawn": record.details.get("after"),
            "restored": restored,
        },
    )
    return await service.public_view(session, issuer)


async def _amendments(session: AsyncSession, code: str, cert_type: str) -> list[AuditRecord]:
    """The body's amendments of ``cert_type`` not withdrawn, in the order they were filed."""
    query = (
        select(AuditRecord)
        .where(
            col(AuditRecord.action).in_((AMENDED, WITHDRAWN)),
            col(AuditRecord.object_type) == "issuer",
            col(AuditRecord.object_id) == code,
        )
        .order_by(col(AuditRecord.id))
    )
    records = [r for r in (await session.execute(query)).scalars() if r.details.get("cert_type") == cert_type]
    gone = {r.details.get("amendment") for r in records if r.action == WITHDRAWN}
    return [r for r in records if r.action == AMENDED and r.id not in gone]


def _latest(code: str, amendments: list[AuditRecord], body: ScopeWithdrawal) -> AuditRecord:
    """The amendment to withdraw: the latest, if it is from ``body.effective_from``."""
    day = body.effective_from.isoformat()
    if amendments and amendments[-1].details.get("effective_from") == day:
        return amendments[-1]
    if any(r.details.get("effective_from") == day for r in amendments):
        message = _(
            "an amendment of the {cert_type} filing from {later} was filed after it: withdraw that one first",
            cert_type=word(body.cert_type.value),
            later=amendments[-1].details.get("effective_from"),
        )
        raise Conflict(message, errors=[FieldError(field="effective_from", message=message)])
    raise NotFound(
        _(
            "evaluation body {code} has no amendment of its {cert_type} filing from {day}",
            code=said_masked(code),
            cert_type=word(body.cert_type.value),
            day=day,
        )
    )
