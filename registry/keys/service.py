"""Creating, loading and publishing signing keys (Ed25519 by default; an evaluation body's may be ES256: see
``registry.keys.signers``)."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import column, select, table, text
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable
from sqlmodel import col

from registry import bulk
from registry.audit import service as audit
from registry.audit.service import Actor
from registry.db import utcnow
from registry.errors import ServiceUnavailable
from registry.i18n import _
from registry.keys.models import KeyStatus, KeyUse, SigningKey
from registry.keys.secrets_box import SecretsBox
from registry.keys.signers import DEFAULT_ALGORITHM, ED25519, KeySigner, PublicKey, SignatureCheck, algorithm

PUBLIC_KEY_CACHE_SECONDS = 5.0  # a compromise marked through one process reaches the others within this
# "rkey": the PostgreSQL advisory lock held by whoever changes which token key of the registry is active, so that it
# has exactly one (a body's keys are guarded by its issuer row instead: ``registry.issuers.service``).
REGISTRY_KEYS_LOCK = 0x726B6579


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
    public_key: PublicKey
    algorithm: str
    valid_from: datetime
    retired_at: datetime | None
    compromised_from: datetime | None

    @property
    def check(self) -> SignatureCheck:
        """What verifies this key's signatures, under the JWS algorithms its stored algorithm allows."""
        return SignatureCheck(algorithm(self.algorithm), self.public_key)


@dataclass
class KeyRing:
    """Per-process cache of parsed keys: PyJWT signs and verifies twice as fast with key objects as with PEM text."""

    box: SecretsBox
    _private: dict[str, KeySigner] = field(default_factory=dict)
    _public: dict[str, tuple[float, PublicKeyInfo]] = field(default_factory=dict)

    def forget(self, kid: str) -> None:
        """Drop a key whose status changed, so this process sees the change at once."""
        self._public.pop(kid, None)
        self._private.pop(kid, None)

    def signer(self, key: SigningKey) -> KeySigner:
        """The key as a ``Signer`` of its stored algorithm: what every certificate, credential and status list is
        signed through."""
        cached = self._private.get(key.kid)
        if cached is None:
            raw = self.box.unwrap_private_key(key.private_key_wrapped, kid=key.kid)
            chosen = algorithm(key.algorithm)
            cached = self._private[key.kid] = KeySigner(key.kid, chosen, chosen.signing_key(raw))
        return cached

    def private_key(self, key: SigningKey) -> Ed25519PrivateKey:
        """The Ed25519 private key of the registry's token key (tokens are signed with PyJWT, as ``EdDSA``)."""
        private = self.signer(key).private_key
        if not isinstance(private, Ed25519PrivateKey):
            raise TypeError(f"key {key.kid} is not an Ed25519 key")
        return private

    async def public_key(self, session: Executes, kid: str) -> PublicKeyInfo | None:
        """Looks ``kid`` up server-side; status changes (retirement, compromise) are seen within the cache window."""
        hit = self._public.get(kid)
        now = time.monotonic()
        if hit is not None and now - hit[0] < PUBLIC_KEY_CACHE_SECONDS:
            return hit[1]
        table = SigningKey.__table__  # type: ignore[attr-defined]
        # A Core select, so the hot verification path can call this on a bare connection too.
        row = (await session.execute(select(table).where(table.c.kid == kid))).first()
        if row is None or row.use not in (KeyUse.access_token, KeyUse.certificate):
            return None  # a PDF-signing key never signs a JWS
        try:
            if not seal_intact(self.box, row):
                return None  # a key row not sealed by this registry (edited in the database) is no key at all
            public_key = algorithm(row.algorithm).public_key(row.public_key)
        except ValueError:
            return None  # an algorithm this registry does not know, or bytes that are no key of it
        info = PublicKeyInfo(
            kid=row.kid,
            use=row.use,
            issuer_id=row.issuer_id,
            status=row.status,
            public_key=public_key,
            algorithm=row.algorithm,
            valid_from=row.valid_from,
            retired_at=row.retired_at,
            compromised_from=row.compromised_from,
        )
        self._public[kid] = (now, info)
        return info


def _key_fields(key: Any) -> tuple[object, ...]:
    fields: tuple[object, ...] = (
        key.kid,
        key.use,
        key.issuer_id,
        bytes(key.public_key).hex(),
        key.status,
        key.valid_from,
        key.retired_at,
        key.compromised_from,
    )
    # A certificate key's algorithm is sealed too, unless it is Ed25519 (as every key sealed before other algorithms
    # were, whose seals must still match): a row switched to another algorithm in the database is no key at all.
    if key.use == KeyUse.certificate and algorithm(key.algorithm) is not ED25519:
        fields += (algorithm(key.algorithm).name,)
    return fields


def reseal(box: SecretsBox, key: SigningKey) -> None:
    """Call after every change to a key's status or validity."""
    key.seal = box.seal(*_key_fields(key), kind="signing-key")


def seal_intact(box: SecretsBox, key: Any) -> bool:
    return box.seal_matches(key.seal, *_key_fields(key), kind="signing-key")


async def create_key(
    session: AsyncSession,
    box: SecretsBox,
    *,
    use: KeyUse,
    issuer_id: int | None = None,
    label: str,
    algorithm_name: str = DEFAULT_ALGORITHM,
) -> SigningKey:
    """A new active key of ``algorithm_name`` (Ed25519: raw 32-byte public key; ES256: DER SubjectPublicKeyInfo)."""
    chosen = algorithm(algorithm_name)
    private, public = chosen.generate()
    kid = f"{label}-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    key = SigningKey(
        kid=kid,
        use=use,
        issuer_id=issuer_id,
        algorithm=chosen.name,
        public_key=public,
        private_key_wrapped=box.wrap_private_key(private, kid=kid),
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


# The kids of the keys a transaction signed an answer with (``session.info``), for ``refuse_compromised_signers``.
_SIGNED_WITH = "registry.keys.signed_with"
# How soon to ask again when a key was marked compromised while the answer was being signed with it.
RESIGN_RETRY_AFTER_SECONDS = 1


def note_signing_key(session: AsyncSession, kid: str) -> None:
    """Note that this transaction's answer is being signed with ``kid`` (read as the active key, not locked)."""
    session.info.setdefault(_SIGNED_WITH, set()).add(kid)


async def refuse_compromised_signers(session: AsyncSession, *, kids: tuple[str, ...] = ()) -> None:
    """Refuse (503, ask again) an answer signed with a key that is compromised by now: ``kids`` and every key noted
    (``note_signing_key``) in this transaction. Call it once the answer's audit record is appended. Every mark of a
    key appends one too, and the audit chain's lock is held by each to its commit: so a mark either committed before
    this read (and is seen: the answer is refused, and asked again, it is signed with the key that took over) or
    commits after this answer does. No row is locked: a download never holds up, or deadlocks with, a mark, and
    costs one indexed read. (On SQLite every writer holds the database's write lock from BEGIN IMMEDIATE.) An answer
    that records nothing (a transparency checkpoint) calls it once signed: it writes nothing after this read, so a
    mark it does not see commits after the answer was made, as one that came a moment later would."""
    signed = sorted({*kids, *session.info.pop(_SIGNED_WITH, set())})
    if not signed:
        return
    query = select(col(SigningKey.kid)).where(
        col(SigningKey.kid).in_(signed), col(SigningKey.status) == KeyStatus.compromised
    )
    if (await session.execute(query)).first() is not None:
        raise ServiceUnavailable(
            _("a signing key was marked compromised while this answer was being signed with it: ask again"),
            retry_after=RESIGN_RETRY_AFTER_SECONDS,
        )


async def refuse_retired_signer(session: AsyncSession, *, kid: str, signed_at: datetime) -> None:
    """Refuse (503, ask again) an answer signed at ``signed_at`` (as its verifier reads it) with a key retired before
    then: read as active while a rotation was retiring it, so outside the validity window the JWKS publishes for it,
    and never valid offline. Call it once the answer's audit record is appended, as ``refuse_compromised_signers``:
    a rotation dates the retirement while it holds the audit chain (``registry.issuers.service.rotate_key``), so it
    either committed before this read (and is seen) or dated the retirement after this answer commits."""
    query = select(col(SigningKey.retired_at)).where(col(SigningKey.kid) == kid)
    retired_at = (await session.execute(query)).scalar_one_or_none()
    if retired_at is not None and signed_at > retired_at:
        raise ServiceUnavailable(
            _("the signing key was retired while this answer was being signed with it: ask again"),
            retry_after=RESIGN_RETRY_AFTER_SECONDS,
        )


async def lock_registry_keys(session: AsyncSession) -> None:
    """Until the transaction ends, no one else changes the registry's own keys. ``retire_active``'s ``FOR UPDATE``
    alone cannot keep two rotations apart: it locks the active keys it sees, not the one a concurrent rotation is
    inserting, so each retired the same old key and both new ones stayed active. Once this lock is held, the next
    statement sees what the previous holder committed. On SQLite every writer already holds the database's write
    lock from BEGIN IMMEDIATE."""
    if bulk.is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REGISTRY_KEYS_LOCK})


async def retire_active(
    session: AsyncSession, box: SecretsBox, *, use: KeyUse, issuer_id: int | None
) -> list[SigningKey]:
    """Retire the owner's active keys of ``use``. The caller holds the owner's turn first (``lock_registry_keys``,
    or the body's issuer row locked), or a rotation running beside it leaves a second key active."""
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


# API clients by their table alone: registry.auth already imports this package (the secrets box).
_API_CLIENTS = table("api_clients", column("id"))
# How soon to ask again while a database's master key is unproven (``refuse_unproven_first_key``).
UNPROVEN_KEY_RETRY_AFTER_SECONDS = 60


# How a database stands to its master key (``master_key_state``).
MasterKeyState = Literal["bound", "unproven", "unbound"]


async def master_key_state(reader: Executes) -> MasterKeyState:
    """``bound`` once the database holds a signing key (sealed under its master key, which start-up checks; keys are
    retired, never deleted, so it stays bound); ``unproven`` while it holds API clients and no signing key
    (``master_key_unproven``); ``unbound`` while it holds neither (the next start or command binds it)."""
    if (await reader.execute(select(col(SigningKey.id)).limit(1))).first() is not None:
        return "bound"
    if (await reader.execute(select(_API_CLIENTS.c.id).limit(1))).first() is not None:
        return "unproven"
    return "unbound"


async def master_key_unproven(reader: Executes) -> bool:
    """Whether the database holds API clients and no signing key: clients made before a database was bound to the
    master key of its first start (``registry.keys.key_check``). Nothing in it tells whether the running master key
    is theirs (a keyed hash says nothing without the secret), and the first key sealed under it binds the database:
    under the wrong key, the right one would be locked out."""
    return await master_key_state(reader) == "unproven"


async def refuse_unproven_first_key(session: AsyncSession) -> None:
    """Refuse (503, ask again later) to seal the database's first key under a master key no one has proved
    (``master_key_unproven``): only an API client whose secret opened its keyed hash proves it (its token request,
    ``registry.auth.tokens.issue_access_token``), and its key binds the database. Call it where the key is made, with
    the owner's turn held (``lock_registry_keys``), so a key made meanwhile is seen."""
    if await master_key_unproven(session):
        raise ServiceUnavailable(
            _(
                "the registry cannot sign yet: its master key has not been confirmed since an upgrade "
                "(an API client's first token, or `registry keys confirm-master` on the server, confirms it); "
                "ask again later"
            ),
            retry_after=UNPROVEN_KEY_RETRY_AFTER_SECONDS,
        )


async def registry_token_key(session: AsyncSession, box: SecretsBox, *, master_key_proved: bool = False) -> SigningKey:
    """The registry's current access-token key, created on first use (by one of the requests that find none). The
    first key of a database holding only API clients is made only by a caller that ``master_key_proved`` (an API
    client's secret matched): any other is refused, 503 (``refuse_unproven_first_key``)."""
    key = await active_key(session, use=KeyUse.access_token)
    if key is None:
        await lock_registry_keys(session)
        key = await active_key(session, use=KeyUse.access_token)  # made while this request waited its turn
    if key is None:
        if not master_key_proved:
            await refuse_unproven_first_key(session)
        key = await create_key(session, box, use=KeyUse.access_token, label="registry")
    return key


async def rotate_registry_token_key(
    session: AsyncSession, keyring: KeyRing, *, actor: Actor
) -> tuple[SigningKey, list[SigningKey]]:
    """New tokens are signed with a new key (returned with the keys it replaces); the old one is retired, trusted until
    the last token it signed has expired (``outlived``), and published for good (``to_jwk``). Rotations at once are
    taken one after the other, each retiring the key the one before made: every one succeeds, as it would one by one
    (a rotation asks for a new key, not for a given one to be replaced), and one key is left active. Nor does it make
    the first key of a database holding only API clients (``refuse_unproven_first_key``): a client's token does."""
    await lock_registry_keys(session)
    await refuse_unproven_first_key(session)
    retired = await retire_active(session, keyring.box, use=KeyUse.access_token, issuer_id=None)
    key = await create_key(session, keyring.box, use=KeyUse.access_token, label="registry")
    for old in retired:
        keyring.forget(old.kid)
    await audit.append(
        session,
        actor=actor,
        action="key.rotated",
        object_type="signing_key",
        object_id=key.kid,
        purpose="key management",
        details={"registry": True, "retired": [old.kid for old in retired]},
    )
    return key, retired


# What the JWKS says (``key_use``) of a registry token key once its last token has expired: it verifies only the
# checkpoints it signed (partners keep them for years), never a token — and a peer node takes only ``access_token``.
CHECKPOINT_KEY_USE = "checkpoint"


def outlived(key: SigningKey | PublicKeyInfo, *, afterlife: timedelta, now: datetime) -> bool:
    """A retired registry token key whose last token has expired (``afterlife``: the longest life of anything it
    signed): no longer trusted for a token. It stays published, for the checkpoints it signed, with ``key_use``
    ``CHECKPOINT_KEY_USE``. Retired certificate keys never are outlived: their certificates last."""
    return key.use == KeyUse.access_token and key.retired_at is not None and now >= key.retired_at + afterlife


def key_url(issuer_id: str, kid: str) -> str:
    """Where a body's key is published on its own (``GET /v1/issuers/{code}/keys/{kid}``): the ``kid`` new credentials
    and status lists carry, under the body's issuer identifier ``{base}/v1/issuers/{code}``."""
    return f"{issuer_id}/keys/{kid}"


def to_jwk(
    key: SigningKey, *, issuer_code: str | None = None, kid: str | None = None, outlived: bool = False
) -> dict[str, Any]:
    """The key's public JWK with its validity. Under its short kid (the default) the ``alg`` is the one signatures
    made before RFC 9864 carry (``EdDSA`` for Ed25519); under another ``kid`` (its URL, as new credentials name it) the
    algorithm's own name (``Ed25519``, ``ES256``) — strict JOSE libraries match the JWK's ``alg`` to the header's.
    ``outlived`` (see ``outlived``): a token key published only for its checkpoints (``CHECKPOINT_KEY_USE``)."""
    chosen = algorithm(key.algorithm)
    jwk: dict[str, Any] = {
        **chosen.jwk(key.public_key),
        "kid": kid or key.kid,
        "alg": chosen.name if kid else chosen.legacy_alg,
        "use": "sig",
        "key_use": CHECKPOINT_KEY_USE if outlived else key.use,
        "status": key.status,
        "valid_from": key.valid_from.isoformat(),
        "valid_until": key.retired_at.isoformat() if key.retired_at else None,
    }
    if issuer_code is not None:
        jwk["issuer_code"] = issuer_code
    if key.compromised_from is not None:
        jwk["compromised_from"] = key.compromised_from.isoformat()
    return jwk
