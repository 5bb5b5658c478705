"""Holders' share links (a hash of each link's token, its purpose and expiry) and the record of who verified a
holder's certificates (time, channel, purpose, region — never an address).

Revision ID: 20261204_0010
Revises: 20261203_0009
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_0010"
down_revision: str | None = "20261203_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "share_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("certificate_id", sa.Uuid(), nullable=False),
        sa.Column("holder_index", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("purpose_text", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_share_links_certificate_id_certificates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_share_links_token_hash")),
    )
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_share_links_certificate_id"), ["certificate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_share_links_holder_index"), ["holder_index"], unique=False)
    op.create_table(
        "verification_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=240), nullable=True),
        sa.Column("region", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_verification_visits_certificate_id_certificates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_visits")),
    )
    with op.batch_alter_table("verification_visits", schema=None) as batch_op:
        batch_op.create_index("ix_verification_visits_certificate_id_at", ["certificate_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("verification_visits", schema=None) as batch_op:
        batch_op.drop_index("ix_verification_visits_certificate_id_at")
    op.drop_table("verification_visits")
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_links_holder_index"))
        batch_op.drop_index(batch_op.f("ix_share_links_certificate_id"))
    op.drop_table("share_links")
