"""Holder login throttle: failed claim-code attempts per identity, for the 5-strikes lockout.

Revision ID: 20261122_0003
Revises: 20261122_0002
Create Date: 2026-11-22 07:24:15.784254
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261122_0003"
down_revision: str | None = "20261122_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "holder_login_throttle",
        sa.Column("id_index", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id_index", name=op.f("pk_holder_login_throttle")),
    )


def downgrade() -> None:
    op.drop_table("holder_login_throttle")
