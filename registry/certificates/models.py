"""Certificates as issued, and the idempotency records that make issuing safe to retry."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, new_uuid, utcnow


class Status(StrEnum):
    active = "active"
    suspended = "suspended"
    revoked = "revoked"
    superseded = "superseded"  # replaced by a corrected successor


class Certificate(SQLModel, table=True):
    __tablename__ = "certificates"
    __table_args__ = (
        Index("ix_certificates_issuer_id_issued_at_id", "issuer_id", "issued_at", "id"),
        # Random status-list indexes: the constraint, not luck, keeps two certificates off one bit.
        UniqueConstraint("status_list_id", "status_index"),
        # Empty in a sound registry: the certificates whose status seal was taken away (migration 0021).
        Index(
            "ix_certificates_unsealed",
            "number",
            postgresql_where=text("status_seal IS NULL"),
            sqlite_where=text("status_seal IS NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_uuid, primary_key=True)
    number: str = Field(max_length=16, unique=True)
    # issuer_id, holder_id (and certificate_events.certificate_id): foreign keys on SQLite; on PostgreSQL checked once
    # per statement by triggers of the same names, the rows referred to never deleted (migration 0013).
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
    signature: str = Field(sa_type=Text)  # detached JWS (Ed25519, EdDSA before RFC 9864, or ES256) over the payload
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    supersedes: str | None = Field(default=None, max_length=16)
    superseded_by: str | None = Field(default=None, max_length=16)
    revocation_reason: str | None = Field(default=None, max_length=32)  # the public reason code
    # signing.status_seal: a keyed MAC over the status fields and the status-list slot (version 2, migration 0019)
    status_seal: str | None = Field(default=None, max_length=64)
    record_seal: str | None = Field(default=None, max_length=64)  # signing.record_seal, made at issuance
    status_list_id: str | None = Field(default=None, max_length=64)
    status_index: int | None = None


class CertificateEvent(SQLModel, table=True):
    """One entry of a certificate's status history."""

    __tablename__ = "certificate_events"

    id: int | None = Field(default=None, primary_key=True)
    certificate_id: uuid.UUID = Field(foreign_key="certificates.id", index=True)
    event: str = Field(max_length=16)
    reason_code: str | None = Field(default=None, max_length=32)
    reason: str | None = Field(default=None, max_length=500)
    actor: str = Field(max_length=96)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StatusList(SQLModel, table=True):
    """One W3C Bitstring Status List of an evaluation body, for one purpose (revocation or suspension)."""

    __tablename__ = "status_lists"
    __table_args__ = (UniqueConstraint("list_id", "purpose"),)

    id: int | None = Field(default=None, primary_key=True)
    list_id: str = Field(max_length=64)
    issuer_id: int = Field(foreign_key="issuers.id", index=True)
    purpose: str = Field(max_length=16)
    size: int
    bits: bytes = Field(sa_type=LargeBinary)
    used: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # status_lists.list_seal over list_id, issuer, purpose, size and the bits' SHA-256. None on a list made before
    # migration 0018 until `registry migrate` seals it, once (seal_upgrade); after that None is a broken seal, and a
    # list with a broken seal is not served (503) until a flip rebuilds it from certificates whose seals all hold.
    seal: str | None = Field(default=None, max_length=64)


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
