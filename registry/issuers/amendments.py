"""Amending a body's filed scope (备案范围): a new version from an effective date, never an edit of what was filed.

Certificates are judged by the version in force on their award date, so an amendment may only take effect after
today: awards cannot be dated in the future, so no certificate already issued is ever judged by another version.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import clock
from registry.audit import service as audit
from registry.audit.service import Actor
from registry.db import utcnow
from registry.errors import Conflict, FieldError, IllegalTransition, InvalidInput, NotFound
from registry.i18n import _, word
from registry.issuers import service
from registry.issuers.models import FiledScope, Issuer
from registry.issuers.schemas import IssuerPublic, ScopeAmendment

MOST_DAYS_AHEAD = timedelta(days=3 * 365)


async def amend_scope(session: AsyncSession, *, actor: Actor, code: str, body: ScopeAmendment) -> IssuerPublic:
    """The versions of ``body.cert_type`` in force on ``effective_from`` end the day before (their closing date is
    the only change to them); the new version starts that day. Refused (409) while a version of that type already
    starts on or after that day: amend that one's successor instead of racing it."""
    issuer = await _issuer_for_update(session, code)
    _refuse_past(body)
    await service.check_scopes_against_catalogue(session, [("", body)])
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
        action="issuer.scope_amended",
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
    # A scheduled version cannot be withdrawn, only followed (``_replaced``): a mistyped year (2207 for 2027) would
    # hold the body's filing of that type unchangeable until then.
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
        raise NotFound(_("no evaluation body {code}", code=code))
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
