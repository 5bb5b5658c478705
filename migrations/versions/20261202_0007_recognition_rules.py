"""Recognition rules for 京津冀 mutual recognition, seeded from the shipped data file.

Revision ID: 20261202_0007
Revises: 20261122_0006
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "20261202_0007"
down_revision: str | None = "20261122_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# This revision is tied to this exact file; a later release of the rules ships a new file and a new revision.
DATA_FILE = "rules-2026-12.json"
SEED_ACTOR = "seed:" + DATA_FILE


def _load() -> dict[str, Any]:
    text = resources.files("registry.recognition").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _create_table() -> sa.Table:
    return op.create_table(
        "recognition_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_region", sa.String(length=2), nullable=False),
        sa.Column("to_region", sa.String(length=2), nullable=False),
        sa.Column("cert_type", sa.String(length=8), nullable=False),
        sa.Column("catalogue_codes", sa.JSON(), nullable=False),
        sa.Column("series_code", sa.String(length=32), nullable=True),
        sa.Column("levels", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("equivalent_cert_type", sa.String(length=8), nullable=True),
        sa.Column("equivalent_series_code", sa.String(length=32), nullable=True),
        sa.Column("equivalent_catalogue_code", sa.String(length=48), nullable=True),
        sa.Column("equivalent_level", sa.String(length=32), nullable=True),
        sa.Column("conditions_zh", sa.String(length=500), nullable=True),
        sa.Column("conditions_en", sa.String(length=1000), nullable=True),
        sa.Column("basis_code", sa.String(length=64), nullable=False),
        sa.Column("basis_title", sa.String(length=256), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_until", sa.Date(), nullable=True),
        sa.Column("supersedes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_by", sa.String(length=96), nullable=True),
        sa.Column("retired_reason", sa.String(length=500), nullable=True),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recognition_rules")),
    )


def upgrade() -> None:
    table = _create_table()
    with op.batch_alter_table("recognition_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recognition_rules_from_region"), ["from_region"], unique=False)
        batch_op.create_index(batch_op.f("ix_recognition_rules_to_region"), ["to_region"], unique=False)
    data = _load()
    titles = {doc["code"]: doc["title_zh"] for doc in data["basis_documents"]}
    now = datetime.now(UTC)
    rows = []
    for rule in data["rules"]:
        equivalent = rule.get("equivalent") or {}
        rows.append(
            {
                "kind": rule["kind"],
                "from_region": rule["from_region"],
                "to_region": rule["to_region"],
                "cert_type": rule["cert_type"],
                "catalogue_codes": rule["catalogue_codes"],
                "series_code": rule["series_code"],
                "levels": rule["levels"],
                "decision": rule["decision"],
                "equivalent_cert_type": equivalent.get("cert_type"),
                "equivalent_series_code": equivalent.get("series_code"),
                "equivalent_catalogue_code": equivalent.get("catalogue_code"),
                "equivalent_level": equivalent.get("level"),
                "conditions_zh": rule["conditions_zh"],
                "conditions_en": rule["conditions_en"],
                "basis_code": rule["basis"],
                "basis_title": titles[rule["basis"]],
                "effective_from": date.fromisoformat(rule["effective_from"]),
                "effective_until": date.fromisoformat(rule["effective_until"]) if rule["effective_until"] else None,
                "created_at": now,
                "created_by": SEED_ACTOR,
            }
        )
    op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("recognition_rules")
