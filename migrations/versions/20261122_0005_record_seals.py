"""Record seals: keyed MACs over certificate status and signing-key status, so database writes cannot fake them.

Revision ID: 20261122_0005
Revises: 20261122_0004
Create Date: 2026-11-22 08:25:55.958021
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261122_0005"
down_revision: str | None = "20261122_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_seal", sa.String(length=64), nullable=True))

    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seal", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_column("seal")

    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_column("status_seal")
