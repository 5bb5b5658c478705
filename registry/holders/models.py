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


class HolderLoginThrottle(SQLModel, table=True):
    """Failed claim-code attempts per identity (by blind index, whether or not such a holder exists) and client
    address (by a keyed hash, never the address itself); ``address_index`` ``*`` counts them from every address."""

    __tablename__ = "holder_login_throttle"

    id_index: str = Field(primary_key=True, max_length=64)
    address_index: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    window_started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
