"""Issuing certificates: one at a time (``POST /v1/certificates``) or a batch of up to 10,000 rows
(``POST /v1/certificate-batches``). Both are the same pipeline — the rules of ``awards`` decide (``screen``; for a
batch ``Screener``, a chunk at a time as its rows are read), ``recording.record`` records — and differ only in how
they answer: a single request raises its one refusal with the status its reason calls for (422, 403 or 409); a batch
lists every bad row (422) and issues none of them, or issues all of them. ``registry import`` (``imports``) runs the
same pipeline on chunks of a file.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from registry import clock
from registry.auth.principals import Principal
from registry.catalogue.models import CatalogueEntry, Level
from registry.certificates import awards, drafting, idempotency, numbering, recording, records, rows
from registry.certificates.awards import Award
from registry.certificates.idempotency import Outcome
from registry.certificates.models import Certificate
from registry.certificates.schemas import CertificateIssue, CertificateIssued
from registry.context import RegistryContext
from registry.errors import Forbidden, InvalidInput
from registry.i18n import _
from registry.issuers.models import Issuer

ISSUE_OPERATION = "certificates.issue"
BATCH_OPERATION = "certificates.batch"


async def issuing_body(session: AsyncSession, principal: Principal) -> Issuer:
    """The evaluation body an issuer client acts for (that it may issue at all is for ``awards`` to say)."""
    if principal.issuer_id is None:
        raise Forbidden(_("only an evaluation body's client can issue certificates"))
    issuer = await session.get(Issuer, principal.issuer_id)
    if issuer is None:
        raise Forbidden(_("the evaluation body of this client no longer exists"))
    return issuer


async def issue_one(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    request: CertificateIssue,
    idempotency_key: str | None,
) -> Outcome:
    """201 with the certificate and its claim code; the same answer again for a retry with the same key."""

    async def run() -> Outcome:
        issuer = await issuing_body(session, principal)
        screening = await awards.screen(ctx, session, issuer=issuer, awards=[(1, Award.of(request))])
        screening.refuse_single()
        [minted] = await recording.record(
            ctx, session, actor=principal.actor, issuer=issuer, accepted=screening.accepted, purpose="issuance"
        )
        return Outcome(201, issued_view(ctx, issuer, minted).model_dump_json().encode())

    digest = idempotency.request_hash(request.model_dump(mode="json"))
    return await idempotency.once(
        ctx, session, principal=principal, operation=ISSUE_OPERATION, key=idempotency_key, digest=digest, run=run
    )


async def issue_batch(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    rows_given: list[rows.Row],
    idempotency_key: str,
    dry_run: bool,
) -> Outcome:
    """All rows or none: 201 listing each row's number and claim code in row order, or 422 listing every bad row.
    With ``dry_run`` every rule is checked and nothing is issued (200)."""
    if not rows_given:
        raise InvalidInput.field("certificates", _("the batch has no rows"))
    if len(rows_given) > rows.MAX_ROWS:
        raise InvalidInput.field("certificates", rows.too_many_rows(rows.MAX_ROWS))

    async def run() -> Outcome:
        issuer = await issuing_body(session, principal)
        screening, minted = await issue_rows(
            ctx,
            session,
            principal=principal,
            issuer=issuer,
            given=rows_given,
            purpose="batch issuance",
            dry_run=dry_run,
        )
        if minted is None:
            return Outcome(200, orjson.dumps({"dry_run": True, "valid": True, "count": len(screening.accepted)}))
        return Outcome(201, orjson.dumps(batch_answer(ctx, minted)))

    digest = idempotency.request_hash({"rows": rows_given, "dry_run": dry_run})
    key = None if dry_run else idempotency_key  # a dry run changes nothing, so there is nothing to replay
    return await idempotency.once(
        ctx, session, principal=principal, operation=BATCH_OPERATION, key=key, digest=digest, run=run
    )


async def issue_rows(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    principal: Principal,
    issuer: Issuer,
    given: list[rows.Row],
    purpose: str,
    dry_run: bool = False,
    all_or_nothing: bool = True,
) -> tuple[awards.Screening, list[recording.Minted] | None]:
    """The one pipeline for many rows: screened while they are begun (``drafting``), then recorded. A batch is
    ``all_or_nothing`` (any refusal rejects it); an import chunk records what was accepted. A dry run records
    nothing (None)."""
    async with drafting.beginning(enabled=not dry_run) as begun:
        screening = await screen_rows(ctx, session, issuer=issuer, given=given, begun=begun)
        if all_or_nothing:
            screening.refuse_batch(rows=len(given))
        if dry_run:
            return screening, None
        minted = await recording.record(
            ctx,
            session,
            actor=principal.actor,
            issuer=issuer,
            accepted=screening.accepted,
            purpose=purpose,
            begun=begun.begun,
        )
    return screening, minted


async def screen_rows(
    ctx: RegistryContext,
    session: AsyncSession,
    *,
    issuer: Issuer,
    given: list[rows.Row],
    begun: drafting.Beginning | None = None,
) -> awards.Screening:
    """The rows of a batch or an import chunk read (``rows.parsed_chunks``) and screened (``awards.Screener``), each
    chunk screened here as soon as it is read, while the workers read the next: every refusal, in row order. Every
    rule judges on one day. The rows are in the workers' hands, and the first chunk read, before the body's issuance
    turn is taken. With ``begun``, the certificates are begun (``drafting``) once the turn is taken, each chunk's
    accepted awards as soon as they are screened, until the first refusal."""
    today = clock.today()
    async with contextlib.aclosing(rows.parsed_chunks(ctx.settings, given, today=today)) as chunks:
        parsed, unreadable = await anext(chunks, ([], []))
        screener = await awards.Screener.open(ctx, session, issuer=issuer, many=len(given) > 1, today=today)
        if begun is not None:
            await begun.start(ctx, session, issuer=issuer, rows=len(given))
        await screener.add(parsed)
        _begin_screened(begun, screener.screening, refused=bool(unreadable))
        async for parsed, refused in chunks:
            await screener.add(parsed)
            unreadable += refused
            _begin_screened(begun, screener.screening, refused=bool(unreadable))
    screening = await screener.close()
    screening.refusals = sorted(unreadable + screening.refusals, key=lambda refusal: refusal.row)
    return screening


def _begin_screened(beginning: drafting.Beginning | None, screening: awards.Screening, *, refused: bool) -> None:
    """The awards accepted since the last chunk, begun; after a refusal nothing more is (a batch with one is not
    issued; an import chunk is begun again, by ``recording.record``, without its refused rows)."""
    begun = beginning.begun if beginning is not None else None
    if begun is None:
        return
    if refused or screening.refusals:
        begun.cancel()
        return
    begun.add(screening.accepted[len(begun.accepted) :])


def issued_view(ctx: RegistryContext, issuer: Issuer, minted: recording.Minted) -> CertificateIssued:
    """A newly issued certificate as its body sees it, with the claim code to hand to the holder (shown once)."""
    entry: CatalogueEntry = minted.accepted.entry
    level: Level = minted.accepted.level
    public = records.public_view(
        ctx.settings,
        Certificate(**minted.values),
        issuer=issuer,
        entry=entry,
        level=level,
        id_type=minted.holder.id_type,
        id_masked=minted.holder.id_masked,
    )
    return CertificateIssued(**public.model_dump(), claim_code=minted.claim_code)


def batch_answer(ctx: RegistryContext, minted: list[recording.Minted]) -> dict[str, Any]:
    """Each row's number, verification link and claim code, in row order."""
    return {
        "batch_id": str(uuid.uuid4()),
        "count": len(minted),
        "certificates": [
            {
                "row": item.accepted.row,
                "number": item.number,
                "number_display": numbering.group_canonical(item.number),  # minted canonical
                "verify_url": records.verify_url(ctx.settings, item.verify_token),
                "qr_token": item.verify_token,
                "claim_code": item.claim_code,
            }
            for item in minted
        ],
    }
