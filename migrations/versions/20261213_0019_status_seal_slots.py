"""Status seals bind the status-list slot; seal upgrades made by ``registry migrate`` are marked done.

A certificate's status seal (``signing.status_seal``) was a keyed MAC over its id, number, status, revocation reason and
successor only: its ``status_list_id`` and ``status_index`` could be changed with SQL, and a status list rebuilt from
its certificates then put a revoked certificate's bit at an index its credential does not name. Version 2 (kind
``certificate-status-2``) covers the slot too. The migration cannot re-seal the rows kept from before (it does not hold
the master key): ``registry migrate`` does, right after this revision, once (``registry.certificates.seal_upgrade``),
re-sealing every row whose version 1 seal is intact and leaving any other as it is (read as tampered).

``seal_upgrades``: one row per such pass done (``certificate-status-2``; ``status-list-seals`` for the sealing of lists
kept from before migration 0018), so that later starts skip them with one look-up. Until the pass has run, rows with a
version 1 seal verify as 'unknown' (status_tampered): ``registry serve`` migrates before it serves.

Revision ID: 20261213_0019
Revises: 20261212_0018
Create Date: 2026-12-13 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261213_0019"
down_revision: str | None = "20261212_0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seal_upgrades",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("seal_upgrades")
