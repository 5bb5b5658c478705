"""API clients: who may call the registry, in which role and with which scopes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, utcnow


class Role(StrEnum):
    admin = "admin"
    issuer = "issuer"
    partner = "partner"
    holder = "holder"  # only ever from a holder session, never an API client


class Scope(StrEnum):
    catalogue_write = "catalogue:write"
    issuers_write = "issuers:write"
    clients_write = "clients:write"
    certificates_issue = "certificates:issue"
    certificates_revoke = "certificates:revoke"
    certificates_read = "certificates:read"
    recognition_read = "recognition:read"
    recognition_write = "recognition:write"
    audit_read = "audit:read"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.admin: frozenset(
        {
            Scope.catalogue_write,
            Scope.issuers_write,
            Scope.clients_write,
            Scope.certificates_read,
            Scope.certificates_revoke,
            Scope.recognition_read,
            Scope.recognition_write,
            Scope.audit_read,
        }
    ),
    Role.issuer: frozenset({Scope.certificates_issue, Scope.certificates_revoke, Scope.certificates_read}),
    Role.partner: frozenset({Scope.recognition_read}),
    Role.holder: frozenset(),
}


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
