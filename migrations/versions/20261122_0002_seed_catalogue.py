"""Seed the catalogue from the shipped data file: levels, title series, basis documents, entries.

Revision ID: 20261122_0002
Revises: 20261122_0001
Create Date: 2026-11-22 08:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "20261122_0002"
down_revision: str | None = "20261122_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# This revision is tied to this exact file; a later catalogue release ships a new file and a new revision.
DATA_FILE = "catalogue-2026-11.json"

levels = sa.table(
    "catalogue_levels",
    sa.column("cert_type", sa.String),
    sa.column("code", sa.String),
    sa.column("rank", sa.Integer),
    sa.column("name_zh", sa.String),
    sa.column("name_en", sa.String),
)
series = sa.table(
    "catalogue_series",
    sa.column("code", sa.String),
    sa.column("name_zh", sa.String),
    sa.column("name_en", sa.String),
    sa.column("levels", sa.JSON),
)
basis_documents = sa.table(
    "catalogue_basis_documents",
    sa.column("code", sa.String),
    sa.column("title_zh", sa.String),
    sa.column("title_en", sa.String),
    sa.column("issued_by", sa.String),
    sa.column("issued_on", sa.Date),
)
entries = sa.table(
    "catalogue_entries",
    sa.column("code", sa.String),
    sa.column("version", sa.Integer),
    sa.column("cert_type", sa.String),
    sa.column("series_code", sa.String),
    sa.column("series_zh", sa.String),
    sa.column("series_en", sa.String),
    sa.column("name_zh", sa.String),
    sa.column("name_en", sa.String),
    sa.column("occupation_code", sa.String),
    sa.column("levels", sa.JSON),
    sa.column("effective_from", sa.Date),
    sa.column("effective_until", sa.Date),
    sa.column("basis", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def _load() -> dict[str, Any]:
    text = resources.files("registry.catalogue").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def upgrade() -> None:
    data = _load()
    now = datetime.now(UTC)
    series_by_code = {item["code"]: item for item in data["series"]}
    op.bulk_insert(
        levels,
        [{key: level[key] for key in ("cert_type", "code", "rank", "name_zh", "name_en")} for level in data["levels"]],
    )
    op.bulk_insert(
        series, [{key: item[key] for key in ("code", "name_zh", "name_en", "levels")} for item in data["series"]]
    )
    op.bulk_insert(
        basis_documents,
        [{**doc, "issued_on": date.fromisoformat(doc["issued_on"])} for doc in data["basis_documents"]],
    )
    rows = []
    for entry in data["entries"]:
        owner = series_by_code.get(entry.get("series", ""))
        rows.append(
            {
                "code": entry["code"],
                "version": 1,
                "cert_type": entry["cert_type"],
                "series_code": owner["code"] if owner else None,
                "series_zh": owner["name_zh"] if owner else None,
                "series_en": owner["name_en"] if owner else None,
                "name_zh": entry["name_zh"],
                "name_en": entry["name_en"],
                "occupation_code": entry.get("occupation_code"),
                "levels": entry["levels"],
                "effective_from": date.fromisoformat(entry["effective_from"]),
                "effective_until": date.fromisoformat(entry["effective_until"])
                if entry.get("effective_until")
                else None,
                "basis": entry.get("basis"),
                "created_at": now,
            }
        )
    op.bulk_insert(entries, rows)


def downgrade() -> None:
    data = _load()
    op.execute(entries.delete().where(entries.c.code.in_([entry["code"] for entry in data["entries"]])))
    op.execute(basis_documents.delete().where(basis_documents.c.code.in_([d["code"] for d in data["basis_documents"]])))
    op.execute(series.delete().where(series.c.code.in_([item["code"] for item in data["series"]])))
    op.execute(levels.delete())
