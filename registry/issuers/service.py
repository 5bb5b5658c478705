"""Registering evaluation bodies and checking what they are filed to issue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import service as audit
from registry.audit.service import Actor
from registry.catalogue.models import CatalogueEntry, CertType
from registry.catalogue.service import FilingDays, check_fileable, levels_by_type
from registry.config import Region
from registry.context import RegistryContext
from registry.db import add_unless_taken
from registry.errors import Conflict, FieldError, IllegalTransition, InvalidInput, NotFound, said_masked
from registry.i18n import _, word
from registry.issuers.models import FiledScope, Issuer, IssuerKind, IssuerStatus
from registry.issuers.schemas import FiledScopePublic, IssuerCreate, IssuerPublic
from registry.keys import compromise
from registry.keys import service as keys
from registry.keys.models import KeyStatus, KeyUse, SigningKey
from registry.keys.signers import DEFAULT_ALGORITHM

_ISSUER_STATUS = {IssuerStatus.active: _("active"), IssuerStatus.suspended: _("suspended")}  # said in messages


async def get_by_code(session: AsyncSession, code: str) -> Issuer | None:
    return (await session.execute(select(Issuer).where(col(Issuer.code) == code))).scalar_one_or_none()


async def _turn_of(session: AsyncSession, code: str) -> Issuer | None:
    """The body with its row locked to the end of the transaction: suspensions, reinstatements, rotations and
    compromises of one body are taken one after the other, each seeing what the one before committed (two
    rotations at once each retired the same old key and left both new ones active; two suspensions each found the
    body active). FOR NO KEY UPDATE: issuance, whose certificate rows only point at the body's row (FOR KEY SHARE),
    is not held up. SQLite has one write lock already."""
    query = (
        select(Issuer)
        .where(col(Issuer.code) == code)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)  # the row as it is once locked, not as this session first saw it
    )
    return (await session.execute(query)).scalar_one_or_none()


async def filed_scopes(session: AsyncSession, issuer_id: int) -> list[FiledScope]:
    query = select(FiledScope).where(col(FiledScope.issuer_id) == issuer_id).order_by(col(FiledScope.id))
    return list((await session.execute(query)).scalars().all())


def scope_covers(scopes: list[FiledScope], *, cert_type: str, catalogue_code: str, level: str, on: date) -> bool:
    return any(s.covers(cert_type=cert_type, catalogue_code=catalogue_code, level=level, on=on) for s in scopes)


async def create(ctx: RegistryContext, session: AsyncSession, *, actor: Actor, body: IssuerCreate) -> IssuerPublic:
    await _refuse_unfit(ctx, session, body)
    issuer = Issuer(code=body.code, name=body.name, credit_code=body.credit_code, kind=body.kind, region=body.region)
    if not await add_unless_taken(session, issuer):  # registered by another request since _refuse_unfit looked
        await _refuse_taken(session, body)
        raise RuntimeError(f"evaluation body {body.code} clashed with a row that cannot be found")
    assert issuer.id is not None
    for scope in body.scopes:
        session.add(
            FiledScope(
                issuer_id=issuer.id,
                cert_type=scope.cert_type,
                catalogue_codes=sorted(set(scope.catalogue_codes)),
                levels=sorted(set(scope.levels)),
                valid_from=scope.valid_from,
                valid_until=scope.valid_until,
            )
        )
    key = await keys.create_key(
        session,
        ctx.box,
        use=KeyUse.certificate,
        issuer_id=issuer.id,
        label=issuer.code,
        algorithm_name=body.key_algorithm,
    )
    await audit.append(
        session,
        actor=actor,
        action="issuer.registered",
        object_type="issuer",
        object_id=issuer.code,
        purpose="filing of an evaluation body",
        details={
            "credit_code": issuer.credit_code,
            "kind": issuer.kind,
            "region": issuer.region,
            "kid": key.kid,
            "scopes": [s.model_dump(mode="json") for s in body.scopes],
        },
    )
    return await public_view(session, issuer)


async def _refuse_unfit(ctx: RegistryContext, session: AsyncSession, body: IssuerCreate) -> None:
    """Why a body cannot be registered as asked, raised: another node's region, a filing the catalogue does not
    back, a code or credit code already registered."""
    if body.region != ctx.settings.region and body.region in ctx.settings.peers:
        # Its numbers would carry that region, and every node forwards a number to its region's node, which does not
        # hold it: its certificates could be checked by QR code here, by number nowhere.
        raise InvalidInput.field(
            "region",
            _("{region} has its own node (REGISTRY_PEERS): register this body there", region=body.region.value),
        )
    await check_filings(session, [(f"scopes.{i}.", s, s.valid_from, s.valid_until) for i, s in enumerate(body.scopes)])
    await _refuse_taken(session, body)


async def _refuse_taken(session: AsyncSession, body: IssuerCreate) -> None:
    """A Conflict naming the field when the code or the credit code is already registered."""
    if await get_by_code(session, body.code) is not None:
        raise Conflict(
            _("an evaluation body with code {code} already exists", code=said_masked(body.code)),
            errors=[FieldError(field="code", message=_("already registered"))],
        )
    clash = (await session.execute(select(col(Issuer.id)).where(col(Issuer.credit_code) == body.credit_code))).first()
    if clash is not None:
        raise Conflict(
            _("an evaluation body with this credit code already exists"),
            errors=[FieldError(field="credit_code", message=_("already registered"))],
        )


async def public_view(session: AsyncSession, issuer: Issuer) -> IssuerPublic:
    return (await public_views(session, [issuer]))[0]


async def public_views(session: AsyncSession, bodies: Sequence[Issuer]) -> list[IssuerPublic]:
    """Each body as the public sees it, every version of its filing included; one query each for scopes and keys,
    however many bodies."""
    ids = [issuer.id for issuer in bodies]
    scopes: dict[int, list[FiledScopePublic]] = defaultdict(list)
    found = await session.execute(
        select(FiledScope).where(col(FiledScope.issuer_id).in_(ids)).order_by(col(FiledScope.id))
    )
    for s in found.scalars():
        scopes[s.issuer_id].append(
            FiledScopePublic(
                cert_type=CertType(s.cert_type),
                catalogue_codes=s.catalogue_codes,
                levels=s.levels,
                valid_from=s.valid_from,
                valid_until=s.valid_until,
                basis=s.basis,
            )
        )
    kids: dict[int, list[str]] = defaultdict(list)
    keys_found = await session.execute(
        select(col(SigningKey.issuer_id), col(SigningKey.kid))
        .where(
            col(SigningKey.issuer_id).in_(ids),
            col(SigningKey.status) != KeyStatus.compromised,
            col(SigningKey.use) == KeyUse.certificate,  # the JWKS keys; the PDF key is in each PDF
        )
        .order_by(col(SigningKey.id))
    )
    for issuer_id, kid in keys_found:
        kids[issuer_id or 0].append(kid)
    return [
        IssuerPublic(
            code=issuer.code,
            name=issuer.name,
            credit_code=issuer.credit_code,
            kind=IssuerKind(issuer.kind),
            region=Region(issuer.region),
            status=IssuerStatus(issuer.status),
            scopes=scopes[issuer.id or 0],
            signing_keys=kids[issuer.id or 0],
        )
        for issuer in bodies
    ]


async def get_public(session: AsyncSession, code: str) -> IssuerPublic:
    issuer = await get_by_code(session, code)
    if issuer is None:
        raise NotFound(_("no evaluation body {code}", code=said_masked(code)))
    return await public_view(session, issuer)


class ScopeContent(Protocol):
    """What a filing names, at registration (``FiledScopeIn``) or in an amendment (``ScopeAmendment``)."""

    @property
    def cert_type(self) -> CertType: ...
    @property
    def catalogue_codes(self) -> list[str]: ...
    @property
    def levels(self) -> list[str]: ...


async def check_filings(session: AsyncSession, filings: Sequence[tuple[str, ScopeContent, date, date | None]]) -> None:
    """The one check of what a filing names, for its days, at registration (each of ``scopes``, from ``valid_from``
    to ``valid_until``) and in an amendment (from ``effective_from``, until amended): catalogue entries of its type
    at levels on that type's ladder, each entry in force for the filing (``catalogue.not_fileable``). Each filing
    comes with the prefix its fields are named under (``scopes.0.`` at registration, none in an amendment); 422."""
    await check_scopes_against_catalogue(session, [(prefix, scope) for prefix, scope, _first, _last in filings])
    await check_fileable(
        session,
        [
            FilingDays(f"{prefix}catalogue_codes", scope.catalogue_codes, first, last)
            for prefix, scope, first, last in filings
        ],
    )


async def check_scopes_against_catalogue(session: AsyncSession, scopes: Sequence[tuple[str, ScopeContent]]) -> None:
    """Every filed code must be a catalogue entry of the scope's type, and every level on that type's ladder. Each
    scope comes with the prefix its fields are named under (``scopes.0.`` at registration, none in an amendment)."""
    codes = {code for _prefix, scope in scopes for code in scope.catalogue_codes}
    entries = {
        e.code: e
        for e in (await session.execute(select(CatalogueEntry).where(col(CatalogueEntry.code).in_(codes)))).scalars()
    }
    ladders = await levels_by_type(session)
    errors: list[FieldError] = []
    # What the admin typed is named as typed, unless it holds an identity number (pasted in the wrong box).
    for prefix, scope in scopes:
        cert_type = scope.cert_type.value
        for code in scope.catalogue_codes:
            entry = entries.get(code)
            if entry is None:
                message = _("unknown catalogue entry {code}", code=said_masked(code))
                errors.append(FieldError(field=f"{prefix}catalogue_codes", message=message))
            elif entry.cert_type != cert_type:
                message = _("{code} is not a {cert_type} entry", code=said_masked(code), cert_type=word(cert_type))
                errors.append(FieldError(field=f"{prefix}catalogue_codes", message=message))
        for level in scope.levels:
            if level not in ladders[cert_type]:
                message = _("{level} is not a {cert_type} level", level=said_masked(level), cert_type=word(cert_type))
                errors.append(FieldError(field=f"{prefix}levels", message=message))
    if errors:
        raise InvalidInput(_("the filed scope does not match the catalogue"), errors=errors)


async def set_status(
    session: AsyncSession, *, actor: Actor, code: str, status: IssuerStatus, reason: str
) -> IssuerPublic:
    """Suspend or reinstate a body. Its certificates are untouched: they stay valid unless revoked one by one. Of
    requests at once, the first changes the status and the others find it done (409)."""
    issuer = await _turn_of(session, code)
    if issuer is None:
        raise NotFound(_("no evaluation body {code}", code=said_masked(code)))
    if issuer.status == status:
        raise IllegalTransition(
            _("evaluation body {code} is already {status}", code=said_masked(code), status=_ISSUER_STATUS[status])
        )
    previous, issuer.status = issuer.status, status
    await audit.append(
        session,
        actor=actor,
        action="issuer.suspended" if status is IssuerStatus.suspended else "issuer.reinstated",
        object_type="issuer",
        object_id=code,
        purpose="supervision of evaluation bodies",
        details={"from": previous, "to": status.value, "reason": reason},
    )
    await session.flush()
    return await public_view(session, issuer)


async def rotate_key(
    ctx: RegistryContext, session: AsyncSession, *, actor: Actor, code: str, algorithm: str = DEFAULT_ALGORITHM
) -> SigningKey:
    """New certificates are signed with a new key of ``algorithm`` (Ed25519 or ES256); the old one is retired but
    stays published, so every certificate it signed keeps verifying. Rotations at once all succeed, one after the
    other (``_turn_of``), each retiring the key the one before made, as they would one by one: one key is left
    active."""
    issuer = await _turn_of(session, code)
    if issuer is None:
        raise NotFound(_("no evaluation body {code}", code=said_masked(code)))
    # The old key's retirement (its published valid_until) is dated once the audit chain is held. A download that
    # read the old key as active appends its audit record either before (it has committed, signed before that date)
    # or after this rotation commits, and then sees the date (api.documents, keys.refuse_retired_signer). Dated
    # before the chain was had, say behind a large batch, credentials signed meanwhile fell outside the window.
    await audit.hold_chain(session)
    retired = await keys.retire_active(session, ctx.box, use=KeyUse.certificate, issuer_id=issuer.id)
    # The PDF-signing key rotates with it; its successor is certified when the next PDF is signed.
    retired += await keys.retire_active(session, ctx.box, use=KeyUse.document, issuer_id=issuer.id)
    key = await keys.create_key(
        session, ctx.box, use=KeyUse.certificate, issuer_id=issuer.id, label=issuer.code, algorithm_name=algorithm
    )
    await audit.append(
        session,
        actor=actor,
        action="key.rotated",
        object_type="signing_key",
        object_id=key.kid,
        purpose="key management",
        details={"issuer": code, "algorithm": key.algorithm, "retired": [k.kid for k in retired]},
    )
    return key


async def mark_key_compromised(
    ctx: RegistryContext, session: AsyncSession, *, actor: Actor, code: str, kid: str, since: datetime
) -> SigningKey:
    """Certificates this key signed at or after ``since`` verify as 'unknown' until re-issued; if the key was in use,
    a fresh one takes over at once. The API's route calls this; the rules (a date ahead of now is 422; once marked,
    the date only moves earlier, a later one 409; the document keys cut off with a credential key) have their one
    home in ``registry.keys.compromise``, which the registry's own keys and ``registry keys check|repair`` share."""
    compromise.refuse_future(since)
    issuer = await _turn_of(session, code)  # then the key is read as a rotation beside this one left it
    key = await keys.get_by_kid(session, kid)
    if issuer is None or key is None or key.issuer_id != issuer.id:
        raise NotFound(_("no signing key {kid} for evaluation body {code}", kid=kid, code=said_masked(code)))
    return await compromise.mark(
        session, ctx.keyring, actor=actor, key=key, since=since, owner={"issuer": code}, label=issuer.code
    )
