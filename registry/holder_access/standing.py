"""What a holder is told about their certificates' standing: exactly what anybody verifying one is told today.

The judgement is verification's own (``registry.verification.judgement.judge_row``: signature, key, filed scope,
stored status, validity), called here, never restated, and the answer is shaped by ``verifier.public_answer``. A
whole list costs one query for the status changes of every certificate that stopped being valid, where a single
verification asks for its one; keys and filed scopes come from the verifier's per-process caches (a query per body or
key at most, never per certificate), catalogue names from the records already loaded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk, clock
from registry.auth.principals import Principal
from registry.certificates import records
from registry.certificates.models import CertificateEvent
from registry.certificates.records import CertificateRecord
from registry.context import RegistryContext
from registry.holder_access.schemas import HolderCertificate
from registry.verification.caches import EntryNames, LevelNames
from registry.verification.judgement import Judgement, judge_row
from registry.verification.reading import StatusChange, events_dating, stopped
from registry.verification.schemas import Verification, VerificationResult
from registry.verification.verifier import Verifier, public_answer

# The event that dates each result that is not simply valid (as registry.verification.verifier dates it).
_EVENT_OF = {
    VerificationResult.revoked: "revoked",
    VerificationResult.suspended: "suspended",
    VerificationResult.superseded: "superseded",
}


def verification_row(record: CertificateRecord) -> dict[str, Any]:
    """A loaded certificate as verification reads one (``registry.verification.reading``'s row)."""
    cert, holder, issuer = record.certificate, record.holder, record.issuer
    return {
        **cert.model_dump(),
        "id_type": holder.id_type,
        "id_masked": holder.id_masked,
        "id_index": holder.id_index,
        "issuer_code": issuer.code,
        "issuer_name": issuer.name,
    }


async def standings(
    verifier: Verifier, session: AsyncSession, loaded: Sequence[CertificateRecord]
) -> list[Verification]:
    """The public verification answer for each of ``loaded``, in order, all judged on the same day."""
    today = clock.today()
    rows = [verification_row(record) for record in loaded]
    judged: list[Judgement] = []
    for row in rows:
        scopes = await verifier.caches.filed_scopes(session, row["issuer_id"])
        judged.append(await judge_row(verifier.box, verifier.keyring, session, row, scopes=scopes, today=today))
    wanted = [(row["id"], _EVENT_OF[j.result]) for row, j in zip(rows, judged, strict=True) if j.result in _EVENT_OF]
    events = await _last_events(session, wanted)
    return [
        public_answer(
            row,
            judgement,
            entry=_entry_names(record),
            level=LevelNames(record.level.name_zh, record.level.name_en),
            region=verifier.region,
            change=_change(row, judgement.result, events),
        )
        for record, row, judgement in zip(loaded, rows, judged, strict=True)
    ]


def _entry_names(record: CertificateRecord) -> EntryNames:
    entry = record.entry
    return EntryNames(entry.series_zh, entry.name_zh, entry.name_en, entry.series_en)


def _change(
    row: Mapping[str, Any], result: VerificationResult, events: Mapping[tuple[uuid.UUID, str], StatusChange]
) -> StatusChange | None:
    """When and why the certificate stopped being valid, as the verifier says it (``verifier._change_of``)."""
    if result is VerificationResult.expired and row["valid_until"] is not None:
        return StatusChange(on=row["valid_until"] + timedelta(days=1), reason_code=None)
    if result not in _EVENT_OF:
        return None
    change = events.get((row["id"], _EVENT_OF[result]))
    if result is VerificationResult.revoked:
        # The certificate's own column is sealed with its status; the event only dates it.
        return StatusChange(on=change.on if change else None, reason_code=row["revocation_reason"])
    return change


async def _last_events(
    session: AsyncSession, wanted: Sequence[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], StatusChange]:
    """When and why each wanted (certificate, event) pair stopped being valid, as a single verification dates it
    (``reading.stopped``), in one query per chunk of certificates: only the day (China Standard Time) and public reason
    code, never the free text the body wrote."""
    kinds = {kind for _id, event in wanted for kind in events_dating(event)}
    ids = sorted({certificate_id for certificate_id, _event in wanted})
    happened: dict[uuid.UUID, list[tuple[str, datetime, str | None]]] = {}
    for chunk in bulk.lookup_chunks(ids, postgres=False):  # a holder's few: an IN list on either database
        query = (
            select(
                col(CertificateEvent.certificate_id),
                col(CertificateEvent.event),
                col(CertificateEvent.at),
                col(CertificateEvent.reason_code),
            )
            .where(col(CertificateEvent.certificate_id).in_(chunk), col(CertificateEvent.event).in_(kinds))
            .order_by(col(CertificateEvent.id))  # in the order they happened (as reading._EVENTS reads them)
        )
        for certificate_id, event, at, reason_code in await session.execute(query):
            happened.setdefault(certificate_id, []).append((event, at, reason_code))
    changes: dict[tuple[uuid.UUID, str], StatusChange] = {}
    for certificate_id, event in wanted:  # a suspended-then-revoked certificate's suspension is not asked for
        dating = events_dating(event)
        mine = (happening for happening in happened.get(certificate_id, []) if happening[0] in dating)
        change = stopped(mine, event=event)
        if change is not None:
            changes[(certificate_id, event)] = change
    return changes


async def list_for_holder(
    ctx: RegistryContext,
    session: AsyncSession,
    verifier: Verifier,
    *,
    principal: Principal,
    words: Callable[[Verification], tuple[str, str | None]],
) -> list[HolderCertificate]:
    """Every certificate issued to the holder's identity document, newest award first, each with what a verifier is
    told about it today; ``words`` says it in the reader's language: (what the result means, why)."""
    loaded = await records.records_for_holder(session, principal=principal)
    answers = await standings(verifier, session, loaded)
    listed = []
    for record, answer in zip(loaded, answers, strict=True):
        meaning, why = words(answer)
        told = {
            "result": answer.result,
            "reason": answer.reason,
            "status_changed_on": answer.status_changed_on,
            "status_reason": answer.status_reason,
            "result_text": meaning,
            "reason_text": why,
        }
        listed.append(HolderCertificate.model_validate({**records.to_public(ctx, record).model_dump(), **told}))
    return listed
