"""Audit records. Each one carries the hash of its predecessor, so removing or altering a record breaks the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, utcnow


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64)
    purpose: str = Field(max_length=256)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    # Not unique (migration 0014 on PostgreSQL): the chain, not an index, is what shows tampering. SQLite keeps the
    # constraint of migration 0001 (dropping it there rebuilds the table without its triggers): an autogenerate run
    # against SQLite proposes dropping it; leave that out.
    hash: str = Field(max_length=64)
