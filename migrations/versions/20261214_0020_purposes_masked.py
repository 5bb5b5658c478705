"""Identity numbers in purposes kept before they were masked: masked in place.

A share link's ``purpose_text`` was kept as the holder typed it, identity number and all, and so was the purpose of a
visit made through such a link (``verification_visits.purpose``, "other: 入职核验，身份证号110105…"), as were the
purposes of recognition questions asked before those were masked. New ones are masked when they are kept
(``registry.recognition.purposes``); this revision masks the ones kept before, so that no copy of the database holds
the number in clear — reading them masked would hide it from the pages but not from a backup.

It masks with the registry's own rule and loop (``purposes.mask_kept``, imported, not copied: one rule). Only rows
that hold text are read, a thousand at a time. There is no way back: the downgrade leaves the masked text as it is.

Revision ID: 20261214_0020
Revises: 20261213_0019
Create Date: 2026-12-14 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from registry.recognition.purposes import mask_kept

revision: str = "20261214_0020"
down_revision: str | None = "20261213_0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    mask_kept(op.get_bind(), "share_links", "purpose_text")
    mask_kept(op.get_bind(), "verification_visits", "purpose")


def downgrade() -> None:
    """Nothing to undo: the numbers masked are not kept anywhere to put back."""
