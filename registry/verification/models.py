"""The record of who verified a certificate, for its holder to see."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime


class VerificationVisit(SQLModel, table=True):
    """One answered verification of a certificate: when, by which channel, for what purpose and region. Never the
    verifier's address or anything else that identifies them."""

    __tablename__ = "verification_visits"
    __table_args__ = (Index("ix_verification_visits_certificate_id_at", "certificate_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    # A foreign key on SQLite; on PostgreSQL checked per statement by a trigger of the same name, without the row lock
    # on the certificate a foreign key takes for every visit (migration 0015).
    certificate_id: uuid.UUID = Field(foreign_key="certificates.id")
    at: datetime = Field(sa_type=UTCDateTime)
    channel: str = Field(max_length=16)
    purpose: str | None = Field(default=None, max_length=240)
    region: str | None = Field(default=None, max_length=8)
