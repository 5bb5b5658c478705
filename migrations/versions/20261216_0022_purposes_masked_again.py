"""Purposes masked again, under the rule that finds identity numbers typed with wider gaps.

Migration 0020 masked the identity numbers kept in share links' ``purpose_text`` and in visits' ``purpose``, with
the rule of its day: it joined a number's groups only across a single separator, so one typed as
``1101  0519  4912  3100  2X`` or ``110105 - 19491231 - 002X`` stayed partly or wholly in clear, and so did every
such purpose kept since (the same rule masked them as they were written). This revision runs the present rule over
them (``registry.recognition.purposes.mask_kept``): masking what is masked changes nothing, so only those are
written. What the earlier rule starred that was no identity number (a date, an amount) cannot be brought back.
Recognition questions' purposes live in the hash-chained audit log, which is never rewritten.

Revision ID: 20261216_0022
Revises: 20261215_0021
Create Date: 2026-12-16 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from registry.recognition.purposes import mask_kept

revision: str = "20261216_0022"
down_revision: str | None = "20261215_0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    mask_kept(op.get_bind(), "share_links", "purpose_text")
    mask_kept(op.get_bind(), "verification_visits", "purpose")


def downgrade() -> None:
    """Nothing to undo: the numbers masked are not kept anywhere to put back."""
