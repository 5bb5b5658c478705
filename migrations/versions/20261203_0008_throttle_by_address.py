"""Holder login throttle per identity and client address: a stranger's wrong claim codes no longer lock the holder out.
Rows kept from before become the identity's count from every address (``address_index`` ``*``).

Revision ID: 20261203_0008
Revises: 20261202_0007
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_0008"
down_revision: str | None = "20261202_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ANY_ADDRESS = "*"


def upgrade() -> None:
    with op.batch_alter_table("holder_login_throttle", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("address_index", sa.String(length=64), nullable=False, server_default=ANY_ADDRESS)
        )
        batch_op.drop_constraint("pk_holder_login_throttle", type_="primary")
        batch_op.create_primary_key("pk_holder_login_throttle", ["id_index", "address_index"])
    with op.batch_alter_table("holder_login_throttle", schema=None) as batch_op:
        batch_op.alter_column("address_index", server_default=None)


def downgrade() -> None:
    # One row per identity again: the per-address counts go, the count from every address stays.
    op.execute(sa.text("DELETE FROM holder_login_throttle WHERE address_index <> :any").bindparams(any=ANY_ADDRESS))
    with op.batch_alter_table("holder_login_throttle", schema=None) as batch_op:
        batch_op.drop_constraint("pk_holder_login_throttle", type_="primary")
        batch_op.create_primary_key("pk_holder_login_throttle", ["id_index"])
        batch_op.drop_column("address_index")
