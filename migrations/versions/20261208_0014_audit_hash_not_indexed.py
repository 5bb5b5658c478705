"""The audit log's ``hash`` loses its unique index on PostgreSQL.

What makes the log tamper-evident is the chain: each record's ``prev_hash`` is the ``hash`` of the record before it,
and ``registry audit verify`` walks it in id order, naming the first record altered or out of line. A unique index on
``hash`` adds nothing to that: two records share a hash only if they share their predecessor and every field (a
SHA-256 collision aside), and a second record appended to a predecessor that already has one breaks the chain at that
record, which the walk names. Appenders cannot fork the chain in the first place: each takes the chain's head under
an advisory lock held to the end of its transaction (``registry.audit.service``).

The index was the largest per certificate (125 of 2,868 bytes at 1,000,000 certificates, docs/scale.md), and its
random inserts cost the database about 100 ms per 10,000 audit records at that size, as much as the rest of the
records' insert (benchmarks/README.md, "Where a batch's time goes"). SQLite keeps the constraint: dropping it there
rebuilds the table, which would take the log's append-only triggers with it, and the embedded default never holds a
million records.

Revision ID: 20261208_0014
Revises: 20261207_0013
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261208_0014"
down_revision: str | None = "20261207_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.drop_constraint("uq_audit_log_hash", "audit_log", type_="unique")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.create_unique_constraint("uq_audit_log_hash", "audit_log", ["hash"])
