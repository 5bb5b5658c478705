"""A client's previous secret kept for a grace period after rotation; each filed-scope version carries its basis.

- ``api_clients.previous_secret_hash`` / ``previous_secret_until``: after ``POST /v1/clients/{id}/rotate-secret``
  the old secret still opens tokens until ``previous_secret_until`` (a setting), then never again.
- ``issuer_filed_scopes.basis`` / ``filed_at``: an amendment is a new scope version (its effective date in
  ``valid_from``, the document it rests on in ``basis``), never an in-place edit; rows kept from before have no basis.

Revision ID: 20261206_0012
Revises: 20261205_0011
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_0012"
down_revision: str | None = "20261205_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("issuer_filed_scopes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("basis", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("filed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issuer_filed_scopes", schema=None) as batch_op:
        batch_op.drop_column("filed_at")
        batch_op.drop_column("basis")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_until")
        batch_op.drop_column("previous_secret_hash")
