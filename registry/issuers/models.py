"""Evaluation bodies (评价机构) and the scope each is filed (备案) for."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, utcnow


class IssuerKind(StrEnum):
    title_committee = "title_committee"  # 职称评审委员会
    employer = "employer"  # 用人单位 (self-evaluating employer)
    evaluation_organisation = "evaluation_organisation"  # 社会培训评价组织
    technical_school = "technical_school"  # 技工院校


class IssuerStatus(StrEnum):
    active = "active"
    suspended = "suspended"


class Issuer(SQLModel, table=True):
    __tablename__ = "issuers"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=128)
    credit_code: str = Field(max_length=18, unique=True)
    kind: str = Field(max_length=32)
    region: str = Field(max_length=2)
    status: str = Field(default=IssuerStatus.active, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FiledScope(SQLModel, table=True):
    __tablename__ = "issuer_filed_scopes"

    id: int | None = Field(default=None, primary_key=True)
    issuer_id: int = Field(foreign_key="issuers.id", index=True)
    cert_type: str = Field(max_length=8)
    catalogue_codes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    levels: list[str] = Field(sa_column=Column(JSON, nullable=False))
    valid_from: date
    valid_until: date | None = None
    # an amendment is a new version: its basis (the filing document) and when it was recorded (migration 0012)
    basis: str | None = Field(default=None, max_length=256)
    filed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def covers(self, *, cert_type: str, catalogue_code: str, level: str, on: date) -> bool:
        return (
            self.cert_type == cert_type
            and catalogue_code in self.catalogue_codes
            and level in self.levels
            and self.valid_from <= on
            and (self.valid_until is None or on <= self.valid_until)
        )
