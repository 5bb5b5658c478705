"""Holders: a person's identity document, stored only encrypted, found through a keyed blind index."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, utcnow


class Holder(SQLModel, table=True):
    __tablename__ = "holders"

    id: int | None = Field(default=None, primary_key=True)
    id_type: str = Field(max_length=32)
    id_index: str = Field(max_length=64, unique=True)  # HMAC of (type, number): look-ups without the clear number
    id_number_encrypted: bytes  # AES-GCM, bound to this holder's blind index
    id_masked: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
