"""Certificates as issued, and the idempotency records that make issuing safe to retry."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, new_uuid, utcnow


class Status(StrEnum):
    active = "active"
    suspended = "suspended"
    revoked = "revoked"


class Certificate(SQLModel, table=True):
    __tablename__ = "certificates"
    __table_args__ = (Index("ix_certificates_issuer_id_issued_at_id", "issuer_id", "issued_at", "id"),)

    id: uuid.UUID = Field(default_factory=new_uuid, primary_key=True)
    number: str = Field(max_length=16, unique=True)
    issuer_id: int = Field(foreign_key="issuers.id")
    kid: str = Field(max_length=64)
    cert_type: str = Field(max_length=8)
    catalogue_code: str = Field(max_length=48)
    catalogue_version: int
    level: str = Field(max_length=32)
    holder_id: int = Field(foreign_key="holders.id", index=True)
    holder_name: str = Field(max_length=64)
    awarded_on: date
    valid_until: date | None = None
    evaluation_batch: str | None = Field(default=None, max_length=64)
    status: str = Field(default=Status.active, max_length=16)
    verify_token: str = Field(max_length=64, unique=True)
    claim_code_hash: str = Field(max_length=64)
    signature: str  # detached JWS (EdDSA) over the canonical payload
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("client_id", "operation", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64)
    operation: str = Field(max_length=64)
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int
    # The stored response holds the claim code, so it is encrypted like any other secret at rest.
    response_encrypted: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
