"""Creating, loading and publishing Ed25519 signing keys."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import select
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable
from sqlmodel import col

from registry.db import utcnow
from registry.keys.models import KeyStatus, KeyUse, SigningKey
from registry.keys.secrets_box import SecretsBox

PUBLIC_KEY_CACHE_SECONDS = 30.0


class Executes(Protocol):
    """Anything that runs a Core statement: a session, a connection, or verification's reader."""

    async def execute(self, statement: Executable, /) -> Result[Any]: ...


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class PublicKeyInfo:
    """What a verifier needs to know about a key: the key itself and the window in which its signatures count."""

    kid: str
    use: str
    issuer_id: int | None
    status: str
    public_key: Ed25519PublicKey
    valid_from: datetime
    retired_at: datetime | None
    compromised_from: datetime | None


@dataclass
class KeyRing:
    """Per-process cache of parsed keys: PyJWT signs and verifies twice as fast with key objects as with PEM text."""

    box: SecretsBox
    _private: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    _public: dict[str, tuple[float, PublicKeyInfo]] = field(default_factory=dict)

    def forget(self, kid: str) -> None:
        """Drop a key whose status changed, so this process sees the change at once."""
        self._public.pop(kid, None)
        self._private.pop(kid, None)

    def private_key(self, key: SigningKey) -> Ed25519PrivateKey:
        cached = self._private.get(key.kid)
        if cached is None:
            raw = self.box.unwrap_private_key(key.private_key_wrapped, kid=key.kid)
            cached = self._private[key.kid] = Ed25519PrivateKey.from_private_bytes(raw)
        return cached

    async def public_key(self, session: Executes, kid: str) -> PublicKeyInfo | None:
        """Looks ``kid`` up server-side; status changes (retirement, compromise) are seen within the cache window."""
        hit = self._public.get(kid)
        now = time.monotonic()
        if hit is not None and now - hit[0] < PUBLIC_KEY_CACHE_SECONDS:
            return hit[1]
        table = SigningKey.__table__  # type: ignore[attr-defined]
        # A Core select, so the hot verification path can call this on a bare connection too.
        row = (await session.execute(select(table).where(table.c.kid == kid))).first()
        if row is None or not seal_intact(self.box, row):
            return None  # a key row not sealed by this registry (edited in the database) is no key at all
        if row.use not in (KeyUse.access_token, KeyUse.certificate):
            return None  # a PDF-signing key never signs a JWS
        info = PublicKeyInfo(
            kid=row.kid,
            use=row.use,
            issuer_id=row.issuer_id,
            status=row.status,
            public_key=Ed25519PublicKey.from_public_bytes(row.public_key),
            valid_from=row.valid_from,
            retired_at=row.retired_at,
            compromised_from=row.compromised_from,
        )
        self._public[kid] = (now, info)
        return info


def _key_fields(key: Any) -> tuple[object, ...]:
    return (
        key.kid,
        key.use,
        key.issuer_id,
        bytes(key.public_key).hex(),
        key.status,
        key.valid_from,
        key.retired_at,
        key.compromised_from,
    )


def reseal(box: SecretsBox, key: SigningKey) -> None:
    """Call after every change to a key's status or validity."""
    key.seal = box.seal(*_key_fields(key), kind="signing-key")


def seal_intact(box: SecretsBox, key: Any) -> bool:
    return box.seal_matches(key.seal, *_key_fields(key), kind="signing-key")


async def create_key(
    session: AsyncSession, box: SecretsBox, *, use: KeyUse, issuer_id: int | None = None, label: str
) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    kid = f"{label}-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    key = SigningKey(
        kid=kid,
        use=use,
        issuer_id=issuer_id,
        public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        private_key_wrapped=box.wrap_private_key(
            private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()), kid=kid
        ),
        status=KeyStatus.active,
        valid_from=utcnow(),
    )
    reseal(box, key)
    session.add(key)
    await session.flush()
    return key


async def active_key(session: AsyncSession, *, use: KeyUse, issuer_id: int | None = None) -> SigningKey | None:
    query = (
        select(SigningKey)
        .where(
            col(SigningKey.use) == use,
            col(SigningKey.status) == KeyStatus.active,
            col(SigningKey.issuer_id) == issuer_id,
        )
        .order_by(col(SigningKey.valid_from).desc(), col(SigningKey.id).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_by_kid(session: AsyncSession, kid: str) -> SigningKey | None:
    return (await session.execute(select(SigningKey).where(col(SigningKey.kid) == kid))).scalar_one_or_none()


async def retire_active(
    session: AsyncSession, box: SecretsBox, *, use: KeyUse, issuer_id: int | None
) -> list[SigningKey]:
    query = select(SigningKey).where(
        col(SigningKey.use) == use, col(SigningKey.status) == KeyStatus.active, col(SigningKey.issuer_id) == issuer_id
    )
    retired = list((await session.execute(query.with_for_update())).scalars())
    now = utcnow()
    for key in retired:
        key.status = KeyStatus.retired
        key.retired_at = now
        reseal(box, key)
    await session.flush()
    return retired


async def registry_token_key(session: AsyncSession, box: SecretsBox) -> SigningKey:
    """The registry's current access-token key, created on first use."""
    key = await active_key(session, use=KeyUse.access_token)
    if key is None:
        key = await create_key(session, box, use=KeyUse.access_token, label="registry")
    return key


def to_jwk(key: SigningKey, *, issuer_code: str | None = None) -> dict[str, Any]:
    jwk: dict[str, Any] = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(key.public_key),
        "kid": key.kid,
        "alg": "EdDSA",
        "use": "sig",
        "key_use": key.use,
        "status": key.status,
        "valid_from": key.valid_from.isoformat(),
        "valid_until": key.retired_at.isoformat() if key.retired_at else None,
    }
    if issuer_code is not None:
        jwk["issuer_code"] = issuer_code
    if key.compromised_from is not None:
        jwk["compromised_from"] = key.compromised_from.isoformat()
    return jwk
