"""A disabled client's access tokens stay refused after it is enabled again.

``api_clients.tokens_not_before``: disabling a client sets it to that moment (rounded up to the whole second, as an
access token's ``iat`` is whole seconds), and an access token issued before it is refused (401). Before, a token was
refused only while its client was disabled: enabling the client again, say after rotating a leaked secret, brought
every token minted with the leaked secret back to life until it expired. Enabling leaves the column as it is; rows
kept from before have none, which refuses nothing.

Revision ID: 20261211_0017
Revises: 20261210_0016
Create Date: 2026-12-11 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261211_0017"
down_revision: str | None = "20261210_0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tokens_not_before", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("tokens_not_before")
