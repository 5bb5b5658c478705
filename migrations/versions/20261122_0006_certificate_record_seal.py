"""Certificate record seal: a keyed MAC over the canonical payload and its signature, made at issuance, so public
verification need not run an Ed25519 verify on every scan. Rows without it (issued before) get the full check.

Revision ID: 20261122_0006
Revises: 20261122_0005
Create Date: 2026-11-22 10:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261122_0006"
down_revision: str | None = "20261122_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_seal", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_column("record_seal")
