"""Finding certificates: one selection (status, entry, level, batch, award dates, one exact holder, one body) that
the list and the CSV export both read, newest first, in keyset pages on (issued_at, id).

New certificates are stamped with the current time, so they land before the first page, never among pages already
handed out: following ``next_cursor`` while a body keeps issuing neither repeats nor skips a certificate that existed
when the first page was read. A cursor carries a fingerprint of the filters it was made for; used with other
filters it is refused (422 naming ``cursor``) rather than answering a page of a different selection.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import service as audit
from registry.auth.principals import Principal
from registry.auth.scopes import Role
from registry.canonical import canonical_json
from registry.catalogue.models import CatalogueEntry, Level
from registry.certificates.models import Certificate
from registry.certificates.records import CertificateRecord, joined_query, to_public
from registry.certificates.schemas import CertificateFilters, CertificateListQuery, CertificatePage
from registry.context import RegistryContext
from registry.errors import Forbidden, InvalidInput, said_masked
from registry.holders.models import Holder
from registry.holders.service import id_index
from registry.i18n import _
from registry.issuers.models import Issuer
from registry.pagination import decode_cursor, encode_cursor
from registry.schemas import one_line, utc_expressible

Row = tuple[Certificate, Issuer, CatalogueEntry, Level, Holder]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which certificates a caller asked for, as the database is asked: the holder by blind index only (the clear
    identity number goes no further than ``selection_for``). ``issuer_id`` is the body's own for a body, None for the
    bureau, which may narrow by ``issuer_code`` instead."""

    issuer_id: int | None
    issuer_code: str | None
    status: str | None
    catalogue_code: str | None
    level: str | None
    evaluation_batch: str | None
    awarded_from: date | None
    awarded_to: date | None
    holder_name: str | None
    holder_index: str | None

    def fingerprint(self) -> str:
        """A short digest of the selection, carried in its cursors."""
        fields = {name: value.isoformat() if isinstance(value, date) else value for name, value in asdict(self).items()}
        return hashlib.sha256(canonical_json(fields)).hexdigest()[:16]

    def audit_details(self) -> dict[str, Any]:
        """The filters as the audit log keeps them: the holder by (a prefix of) blind index, never the number, and an
        evaluation round searched for with an identity number in it masked."""
        details = {
            name: value.isoformat() if isinstance(value, date) else value
            for name, value in asdict(self).items()
            if value is not None and name not in {"issuer_id", "holder_name", "holder_index"}
        }
        if self.holder_index is not None:
            details["holder"] = f"holder:{self.holder_index[:16]}"  # as holder sessions name the holder
        if "evaluation_batch" in details:  # searched as typed: an identity number in it is never kept whole
            details["evaluation_batch"] = said_masked(details["evaluation_batch"])
        return details


def selection_for(ctx: RegistryContext, *, principal: Principal, filters: CertificateFilters) -> Selection:
    """The selection a caller may read: a body only its own certificates; the bureau every body's, for a purpose."""
    if principal.role is Role.admin:
        if filters.purpose is None:
            raise InvalidInput.field("purpose", _("say why the bureau reads these certificates (it is audited)"))
        issuer_id = None
    else:
        if filters.issuer_code not in (None, principal.issuer_code):
            raise Forbidden(_("an evaluation body lists only its own certificates"))
        issuer_id = principal.issuer_id
    holder_index = None
    if filters.holder_id_type is not None and filters.holder_id_number is not None:
        holder_index = id_index(ctx, id_type=filters.holder_id_type, id_number=filters.holder_id_number)
    return Selection(
        issuer_id=issuer_id,
        issuer_code=filters.issuer_code if issuer_id is None else None,
        status=filters.status.value if filters.status is not None else None,
        catalogue_code=filters.catalogue_code,
        level=filters.level,
        evaluation_batch=filters.evaluation_batch,
        awarded_from=filters.awarded_from,
        awarded_to=filters.awarded_to,
        holder_name=filters.holder_name,
        holder_index=holder_index,
    )


def _conditions(selection: Selection) -> list[ColumnElement[bool]]:
    wanted: list[tuple[Any, Any]] = [
        (col(Certificate.issuer_id), selection.issuer_id),
        (col(Issuer.code), selection.issuer_code),
        (col(Certificate.status), selection.status),
        (col(Certificate.catalogue_code), selection.catalogue_code),
        (col(Certificate.level), selection.level),
        (col(Certificate.holder_name), selection.holder_name),
        (col(Holder.id_index), selection.holder_index),
    ]
    conditions = [column == value for column, value in wanted if value is not None]
    if selection.evaluation_batch is not None:  # as typed, or collapsed as issuance now stores it
        labels = {selection.evaluation_batch, str(one_line(selection.evaluation_batch))}
        conditions.append(col(Certificate.evaluation_batch).in_(sorted(labels)))
    if selection.awarded_from is not None:
        conditions.append(col(Certificate.awarded_on) >= selection.awarded_from)
    if selection.awarded_to is not None:
        conditions.append(col(Certificate.awarded_on) <= selection.awarded_to)
    return conditions


Position = tuple[datetime, uuid.UUID]


def _page_query(
    selection: Selection, *, after: Position | None, size: int
) -> Select[Certificate, Issuer, CatalogueEntry, Level, Holder]:
    query = joined_query().where(*_conditions(selection))
    if after is not None:
        issued_at, cert_id = after
        query = query.where(
            or_(
                col(Certificate.issued_at) < issued_at,
                and_(col(Certificate.issued_at) == issued_at, col(Certificate.id) < cert_id),
            )
        )
    return query.order_by(col(Certificate.issued_at).desc(), col(Certificate.id).desc()).limit(size)


async def page(session: AsyncSession, selection: Selection, *, after: Position | None, size: int) -> list[Row]:
    """Up to ``size`` certificates of the selection after ``after`` (or from the newest), newest first."""
    rows = (await session.execute(_page_query(selection, after=after, size=size))).all()
    return [(certificate, issuer, entry, level, holder) for certificate, issuer, entry, level, holder in rows]


def position(certificate: Certificate) -> Position:
    return certificate.issued_at, certificate.id


def _cursor(selection: Selection, at: Position) -> str:
    return encode_cursor([at[0].isoformat(), str(at[1]), selection.fingerprint()])


def _read_cursor(cursor: str, selection: Selection) -> Position:
    def read(position: list[Any]) -> tuple[Position, str]:
        issued_at, cert_id, fingerprint = position
        if not all(isinstance(part, str) for part in position):
            raise TypeError("a certificate cursor holds three strings")
        moment = datetime.fromisoformat(issued_at)
        if moment.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return (utc_expressible(moment), uuid.UUID(cert_id)), fingerprint

    at, fingerprint = decode_cursor(cursor, read)
    if fingerprint != selection.fingerprint():
        raise InvalidInput.field(
            "cursor", _("was returned for other filters: repeat those filters, or start again without a cursor")
        )
    return at


async def audit_bureau_read(
    session: AsyncSession,
    *,
    principal: Principal,
    selection: Selection,
    purpose: str | None,
    action: str,
    returned: list[str] | None = None,
) -> None:
    """The bureau reading bodies' certificates is an access to personal data: recorded with its purpose, the filters
    and (for a page) the numbers it was shown."""
    if principal.role is not Role.admin or purpose is None:
        return
    await audit.append(
        session,
        actor=principal.actor,
        action=action,
        object_type="certificates",
        object_id=selection.issuer_code or "*",
        purpose=purpose,
        details={"filters": selection.audit_details(), **({"returned": returned} if returned is not None else {})},
    )


async def find(
    ctx: RegistryContext, session: AsyncSession, *, principal: Principal, query: CertificateListQuery
) -> CertificatePage:
    """One page of the certificates the caller asked for and may see."""
    selection = selection_for(ctx, principal=principal, filters=query)
    after = _read_cursor(query.cursor, selection) if query.cursor is not None else None
    rows = await page(session, selection, after=after, size=query.limit + 1)
    data = [to_public(ctx, CertificateRecord(*row)) for row in rows[: query.limit]]
    next_cursor = _cursor(selection, position(rows[query.limit - 1][0])) if len(rows) > query.limit else None
    await audit_bureau_read(
        session,
        principal=principal,
        selection=selection,
        purpose=query.purpose,
        action="certificate.listed",
        returned=[certificate.number for certificate in data],
    )
    return CertificatePage(data=data, next_cursor=next_cursor)
