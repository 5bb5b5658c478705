"""Catalogue tables: levels, title series, basis documents and the entries certificates are issued against."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, utcnow


class CertType(StrEnum):
    title = "title"  # type: ignore[assignment]  # str.title is a method; the member shadows it on purpose
    skill = "skill"


class Level(SQLModel, table=True):
    __tablename__ = "catalogue_levels"
    __table_args__ = (UniqueConstraint("cert_type", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    cert_type: str = Field(max_length=8)
    code: str = Field(max_length=32)
    rank: int
    name_zh: str = Field(max_length=64)
    name_en: str = Field(max_length=64)


class Series(SQLModel, table=True):
    __tablename__ = "catalogue_series"

    code: str = Field(primary_key=True, max_length=32)
    name_zh: str = Field(max_length=64)
    name_en: str = Field(max_length=128)
    levels: list[str] = Field(sa_column=Column(JSON, nullable=False))


class BasisDocument(SQLModel, table=True):
    __tablename__ = "catalogue_basis_documents"

    code: str = Field(primary_key=True, max_length=64)
    title_zh: str = Field(max_length=256)
    title_en: str = Field(max_length=256)
    issued_by: str = Field(max_length=128)
    issued_on: date


class CatalogueEntry(SQLModel, table=True):
    __tablename__ = "catalogue_entries"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=48, unique=True)
    version: int = 1
    cert_type: str = Field(max_length=8, index=True)
    series_code: str | None = Field(default=None, max_length=32)
    series_zh: str | None = Field(default=None, max_length=64)
    series_en: str | None = Field(default=None, max_length=128)
    name_zh: str = Field(max_length=64)
    name_en: str = Field(max_length=128)
    occupation_code: str | None = Field(default=None, max_length=16)
    levels: list[str] = Field(sa_column=Column(JSON, nullable=False))
    effective_from: date
    effective_until: date | None = None
    basis: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_until is None or day <= self.effective_until)
