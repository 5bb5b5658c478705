"""Certificates without a status seal are found by an index, so that every ``registry migrate`` can name them.

A certificate has no status seal only when something took it away: a downgrade below migration 0005 dropped the seal
columns, and the upgrade after it brought them back empty. Those certificates verify as 'unknown' until the backup is
restored, and ``registry migrate`` must say so at every run, not only at the one whose re-seal pass found them
(``cli.database``). A partial index holds exactly those rows: empty in a sound registry, so it costs nothing to keep,
and the question "which are they?" reads it instead of the whole table.

Revision ID: 20261215_0021
Revises: 20261214_0020
Create Date: 2026-12-15 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261215_0021"
down_revision: str | None = "20261214_0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNSEALED = sa.text("status_seal IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_certificates_unsealed",
        "certificates",
        ["number"],
        postgresql_where=_UNSEALED,
        sqlite_where=_UNSEALED,
    )


def downgrade() -> None:
    op.drop_index("ix_certificates_unsealed", table_name="certificates")
