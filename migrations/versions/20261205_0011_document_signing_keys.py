"""PDF-signing keys: the X.509 certificate of each evaluation body's document key and of the registry's root CA.

Revision ID: 20261205_0011
Revises: 20261204_0010
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0011"
down_revision: str | None = "20261204_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch_op:
        batch_op.add_column(sa.Column("certificate_pem", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch_op:
        batch_op.drop_column("certificate_pem")
