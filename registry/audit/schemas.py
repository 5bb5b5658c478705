"""What the bureau asks of the audit log (filters and a page) and what it gets back: records as stored, hashes
included, so a reader can check the chain themselves."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from registry.schemas import Moment

_BARE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class AuditFilter(BaseModel):
    """``GET /v1/audit``'s query: every filter given must hold; records come oldest first."""

    actor: str | None = Field(
        default=None, min_length=1, max_length=64, description="exactly this actor, e.g. `client:<id>`, `cli`"
    )
    action: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$",
        description="exactly this action (`certificate.issued`), or every action under a prefix (`certificate.*`)",
    )
    since: Moment | None = Field(
        default=None,
        description="records at or after this moment: an ISO 8601 time with its zone, or a date (00:00 UTC that day)",
    )
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(
        default=None, max_length=256, description="`next_cursor` of the previous page, with the same filters"
    )

    @field_validator("since", mode="before")
    @classmethod
    def _date_means_its_first_moment_in_utc(cls, value: Any) -> Any:
        if isinstance(value, str) and _BARE_DATE.match(value):
            try:
                return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
            except ValueError:
                return value  # not a real day: left for the datetime parser to refuse with its own message
        return value


class AuditRecordPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    purpose: str
    details: dict[str, Any]
    hash: str
    prev_hash: str


class AuditPage(BaseModel):
    data: list[AuditRecordPublic]
    next_cursor: str | None
