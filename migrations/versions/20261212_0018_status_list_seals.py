"""A keyed seal on each status list, so that the bits cannot be changed with SQL alone.

``status_lists.seal``: a keyed MAC (``SecretsBox.seal``, kind ``status-list``) over the list's id, body, purpose, size
and the SHA-256 of its bits, made when the list is opened and at every bit flip. A list served with a missing or broken
seal is rebuilt from its certificates' (sealed) statuses instead of being signed as stored. Lists kept from before have
none: the migration cannot seal them (it does not hold the master key); ``registry migrate`` does, right after this
revision (``status_lists.seal_legacy_lists``), and until then such a list is rebuilt whenever it is served.

Revision ID: 20261212_0018
Revises: 20261211_0017
Create Date: 2026-12-12 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261212_0018"
down_revision: str | None = "20261211_0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("status_lists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seal", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("status_lists", schema=None) as batch_op:
        batch_op.drop_column("seal")
