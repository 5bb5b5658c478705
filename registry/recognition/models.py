"""Recognition rules. A rule's terms are never edited in place: a revision is a new row that names the one it
supersedes, and the old row points at it and is retired when the revision begins (``registry.recognition.rules``), so
the history of every decision stays readable."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, utcnow


class RuleKind(StrEnum):
    recognition = "recognition"  # the same ladder across regions: is a certificate from A counted in B?
    bridge = "bridge"  # across the ladders (高技能人才参加职称评审 / 专业技术人才参加职业技能评价), for eligibility


class Decision(StrEnum):
    recognised = "recognised"
    conditional = "conditional"
    not_recognised = "not_recognised"


class RecognitionRule(SQLModel, table=True):
    __tablename__ = "recognition_rules"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    from_region: str = Field(max_length=2, index=True)
    to_region: str = Field(max_length=2, index=True)
    cert_type: str = Field(max_length=8)
    # What the rule covers, most specific first: listed catalogue entries, else a whole title series, else the type.
    catalogue_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    series_code: str | None = Field(default=None, max_length=32)
    levels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # empty: every level
    decision: str = Field(max_length=16)
    # The equivalent in the target region; unset parts mean "the same" (same entry, same level).
    equivalent_cert_type: str | None = Field(default=None, max_length=8)
    equivalent_series_code: str | None = Field(default=None, max_length=32)
    equivalent_catalogue_code: str | None = Field(default=None, max_length=48)
    equivalent_level: str | None = Field(default=None, max_length=32)
    conditions_zh: str | None = Field(default=None, max_length=500)
    conditions_en: str | None = Field(default=None, max_length=1000)
    basis_code: str = Field(max_length=64)
    basis_title: str = Field(max_length=256)
    effective_from: date
    effective_until: date | None = None
    supersedes: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(max_length=96)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_by: str | None = Field(default=None, max_length=96)
    retired_reason: str | None = Field(default=None, max_length=500)
    superseded_by: int | None = Field(default=None)

    def in_force_on(self, day: date) -> bool:
        return (
            self.retired_at is None
            and self.effective_from <= day
            and (self.effective_until is None or day <= self.effective_until)
        )
