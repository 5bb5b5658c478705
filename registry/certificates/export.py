"""The certificates a search selects, as a CSV file a spreadsheet opens safely: read page by page (so the
largest export takes no more memory than one page), every cell neutralised (registry.spreadsheets),
the identity number only ever masked.

The file is UTF-8 and starts with a byte-order mark: without it Excel reads a CSV in the system's legacy code page
and shows Chinese names as mojibake; every other reader skips the mark.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from registry import clock
from registry.auth.principals import Principal
from registry.certificates import search
from registry.certificates.schemas import CertificateFilters
from registry.context import RegistryContext
from registry.faults import Reads
from registry.spreadsheets import SafeWriter

PAGE_SIZE = 500
BYTE_ORDER_MARK = "\ufeff"
COLUMNS = (
    "number",
    "status",
    "holder_name",
    "holder_id_type",
    "holder_id_masked",
    "cert_type",
    "catalogue_code",
    "name_zh",
    "level",
    "level_name_zh",
    "awarded_on",
    "valid_until",
    "evaluation_batch",
    "issuer_code",
    "issued_at",
)


async def open_export(
    ctx: RegistryContext, session: AsyncSession, *, principal: Principal, filters: CertificateFilters
) -> search.Selection:
    """Check the request and, for the bureau, record the export with its purpose — in the request's transaction,
    so the audit record is stored before the first row leaves."""
    selection = search.selection_for(ctx, principal=principal, filters=filters)
    await search.audit_bureau_read(
        session, principal=principal, selection=selection, purpose=filters.purpose, action="certificate.exported"
    )
    return selection


def filename(principal: Principal, selection: search.Selection) -> str:
    """``certificates-<body>-<date>.csv`` (the Beijing date); ``all`` for the bureau's export across bodies."""
    body = principal.issuer_code if selection.issuer_id is not None else selection.issuer_code
    return f"certificates-{body or 'all'}-{clock.today().isoformat()}.csv"


def _cells(row: search.Row) -> list[object]:
    certificate, issuer, entry, level, holder = row
    return [
        certificate.number,
        certificate.status,
        certificate.holder_name,
        holder.id_type,
        holder.id_masked,
        certificate.cert_type,
        certificate.catalogue_code,
        entry.name_zh,
        certificate.level,
        level.name_zh,
        certificate.awarded_on.isoformat(),
        certificate.valid_until.isoformat() if certificate.valid_until is not None else "",
        certificate.evaluation_batch or "",
        issuer.code,
        certificate.issued_at.isoformat(),
    ]


async def csv_chunks(reads: Reads, selection: search.Selection) -> AsyncIterator[bytes]:
    """The file, one chunk per page. Each page is read on its own (``reads``: a short session, no lock held while
    the client downloads); keyset pages make the pages one consistent walk even as certificates are issued."""
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    buffer.write(BYTE_ORDER_MARK)
    writer.writerow(COLUMNS)
    after: search.Position | None = None
    while True:

        async def next_page(session: AsyncSession, after: search.Position | None = after) -> list[search.Row]:
            return await search.page(session, selection, after=after, size=PAGE_SIZE)

        rows = await reads(next_page)
        writer.writerows(_cells(row) for row in rows)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < PAGE_SIZE:
            return
        after = search.position(rows[-1][0])
