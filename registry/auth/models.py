"""API clients: who may call the registry, in which role, with which scopes, and the keyed hash of their secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, utcnow


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_clients"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64, unique=True)
    secret_hash: str = Field(max_length=64)
    role: str = Field(max_length=16)
    name: str = Field(max_length=128)
    issuer_id: int | None = Field(default=None, foreign_key="issuers.id", index=True)
    region: str | None = Field(default=None, max_length=2)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # after a rotation the old secret still opens tokens until previous_secret_until (migration 0012)
    previous_secret_hash: str | None = Field(default=None, max_length=64)
    previous_secret_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # access tokens issued before this moment are refused, even once the client is enabled again (migration 0017)
    tokens_not_before: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EndedToken(SQLModel, table=True):
    """A holder token its holder signed out of before it expired (migration 0016): refused from then on. A row is
    only needed while the token would still be good, so rows past ``expires_at`` are deleted as new ones arrive."""

    __tablename__ = "ended_tokens"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
