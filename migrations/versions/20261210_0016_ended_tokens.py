"""Holder tokens ended early: signing out of ``/holder`` (or ``DELETE /v1/holder/sessions/current``) ends the session
on the server, not only in the browser.

A holder token lives 15 minutes. Before, signing out deleted the cookie and nothing else, so a copy of the token (a
shared computer's cookie jar, a proxy log) stayed good until it expired. Its ``jti`` is now kept in ``ended_tokens``
until then and the token is refused; rows past ``expires_at`` are deleted as new ones arrive, so the table holds at
most 15 minutes' worth of sign-outs.

Revision ID: 20261210_0016
Revises: 20261209_0015
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261210_0016"
down_revision: str | None = "20261209_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ended_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_ended_tokens")),
    )
    op.create_index(op.f("ix_ended_tokens_expires_at"), "ended_tokens", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_ended_tokens_expires_at"), table_name="ended_tokens")
    op.drop_table("ended_tokens")
