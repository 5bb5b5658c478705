"""Identity numbers in purposes kept before they were masked: masked in place.

A share link's ``purpose_text`` was kept as the holder typed it, identity number and all, and so was the purpose of a
visit made through such a link (``verification_visits.purpose``, "other: 入职核验，身份证号110105…"), as were the
purposes of recognition questions asked before those were masked. New ones are masked when they are kept
(``registry.recognition.purposes``); this revision masks the ones kept before, so that no copy of the database holds
the number in clear — reading them masked would hide it from the pages but not from a backup.

It masks with the registry's own rule (imported, not copied: one rule). Only rows that hold text a purpose could be
masked in are read, a thousand at a time. There is no way back: the downgrade leaves the masked text as it is.

Revision ID: 20261214_0020
Revises: 20261213_0019
Create Date: 2026-12-14 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from registry.recognition.purposes import masked

revision: str = "20261214_0020"
down_revision: str | None = "20261213_0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAGE = 1000


def _mask_column(table: str, column: str) -> None:
    bind = op.get_bind()
    rows = sa.table(table, sa.column("id"), sa.column(column))
    text = rows.c[column]
    last: Any = None
    while True:
        query = sa.select(rows.c.id, text).where(text.is_not(None)).order_by(rows.c.id).limit(_PAGE)
        if last is not None:
            query = query.where(rows.c.id > last)
        page = bind.execute(query).all()
        for row_id, kept in page:
            if masked(kept) != kept:
                bind.execute(sa.update(rows).where(rows.c.id == row_id).values({column: masked(kept)}))
        if len(page) < _PAGE:
            return
        last = page[-1][0]


def upgrade() -> None:
    _mask_column("share_links", "purpose_text")
    _mask_column("verification_visits", "purpose")


def downgrade() -> None:
    """Nothing to undo: the numbers masked are not kept anywhere to put back."""
