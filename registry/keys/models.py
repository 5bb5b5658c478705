"""Signing keys: the registry's access-token keys and each evaluation body's certificate-signing keys."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, utcnow


class KeyUse(StrEnum):
    access_token = "access_token"  # noqa: S105 — a key purpose, not a secret
    certificate = "certificate"
    document = "document"  # an evaluation body's PDF-signing (PAdES) key, ECDSA P-256, with an X.509 certificate
    document_root = "document_root"  # the registry's root CA that issues the document keys' certificates


class KeyStatus(StrEnum):
    active = "active"
    retired = "retired"
    compromised = "compromised"


class SigningKey(SQLModel, table=True):
    __tablename__ = "signing_keys"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=64, unique=True)
    use: str = Field(max_length=16, index=True)
    issuer_id: int | None = Field(default=None, foreign_key="issuers.id", index=True)
    # registry.keys.signers: "Ed25519" ("EdDSA" in rows made before RFC 9864) or "ES256"
    algorithm: str = Field(default="EdDSA", max_length=16)
    public_key: bytes  # raw 32-byte Ed25519 public key; for ES256 and document keys the DER SubjectPublicKeyInfo
    private_key_wrapped: bytes  # AES-GCM under a subkey of the master key; never leaves the process in clear
    status: str = Field(default=KeyStatus.active, max_length=16)
    valid_from: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    compromised_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    seal: str | None = Field(default=None, max_length=64)  # SecretsBox.seal over public key, owner and status
    # document and document_root keys: their X.509 certificate (PEM)
    certificate_pem: str | None = Field(default=None, sa_type=Text)
