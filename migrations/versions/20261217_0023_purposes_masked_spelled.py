"""Purposes masked again, under the rule that reads numerals and percent escapes and passports' letters typed apart.

Migration 0022 ran the rule of its day over share links' ``purpose_text`` and visits' ``purpose``: an identity number
spelled in Chinese numerals ("一一〇一〇五…"), percent-escaped in a pasted link ("?id=%31%31%30…") or a passport's
number typed apart from its letters ("EA  1234567") stayed in clear, and so did every such purpose kept since. This
revision runs the present rule over them (``registry.recognition.purposes.mask_kept``); masking what is masked changes
nothing, so only those are written. Recognition questions' purposes live in the hash-chained audit log, which is never
rewritten.

Revision ID: 20261217_0023
Revises: 20261216_0022
Create Date: 2026-12-17 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from registry.recognition.purposes import mask_kept

revision: str = "20261217_0023"
down_revision: str | None = "20261216_0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    mask_kept(op.get_bind(), "share_links", "purpose_text")
    mask_kept(op.get_bind(), "verification_visits", "purpose")


def downgrade() -> None:
    """Nothing to undo: the numbers masked are not kept anywhere to put back."""
