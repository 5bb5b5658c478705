"""Everything the master key protects: AES-GCM encryption at rest, blind indexes and keyed hashes of secrets.

Each use gets its own subkey derived with HKDF, so one purpose's output can never be replayed as another's.
"""

from __future__ import annotations

import functools
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from registry.errors import DecryptionError

NONCE_BYTES = 12
CIPHERTEXT_VERSION = b"\x01"


def _derive(master_key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"talent-registry/v1", info=purpose).derive(master_key)


@dataclass(frozen=True, slots=True)
class SecretsBox:
    encryption_key: bytes
    blind_index_key: bytes
    secret_hash_key: bytes
    key_wrapping_key: bytes
    record_seal_key: bytes

    @classmethod
    def from_master_key(cls, master_key: bytes) -> SecretsBox:
        return cls(
            encryption_key=_derive(master_key, b"personal-data-encryption"),
            blind_index_key=_derive(master_key, b"identity-blind-index"),
            secret_hash_key=_derive(master_key, b"secret-hash"),
            key_wrapping_key=_derive(master_key, b"private-key-wrapping"),
            record_seal_key=_derive(master_key, b"record-seal"),
        )

    def for_sealing(self) -> SecretsBox:
        """The box a minting worker gets: the keyed hash and record-seal keys, none that decrypts or unwraps."""
        return SecretsBox(
            encryption_key=b"",
            blind_index_key=b"",
            secret_hash_key=self.secret_hash_key,
            key_wrapping_key=b"",
            record_seal_key=self.record_seal_key,
        )

    # --- encryption at rest -------------------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, *, context: str) -> bytes:
        """AES-256-GCM; ``context`` is bound as associated data, so a ciphertext cannot be moved to another row."""
        return _seal(self.encryption_key, plaintext, context)

    def decrypt(self, ciphertext: bytes, *, context: str) -> bytes:
        return _open(self.encryption_key, ciphertext, context)

    def wrap_private_key(self, private_key: bytes, *, kid: str) -> bytes:
        return _seal(self.key_wrapping_key, private_key, f"signing-key:{kid}")

    def unwrap_private_key(self, wrapped: bytes, *, kid: str) -> bytes:
        return _open(self.key_wrapping_key, wrapped, f"signing-key:{kid}")

    # --- look-ups and secrets -----------------------------------------------------------------------------------

    def blind_index(self, value: str, *, kind: str) -> str:
        """Deterministic keyed digest for equality look-ups of a value we never store in clear."""
        return _hmac_sha256(self.blind_index_key, f"{kind}\x00{value}".encode())

    def hash_secret(self, secret: str, *, kind: str) -> str:
        """Keyed hash of a high-entropy secret (client secret, claim code): a database dump cannot test guesses."""
        return _hmac_sha256(self.secret_hash_key, f"{kind}\x00{secret}".encode())

    def seal(self, *fields: object, kind: str) -> str:
        """Keyed MAC over the fields of a record that verification trusts but no signature covers (a certificate's
        status, a key's status and validity): someone who can write the database cannot forge it."""
        # A list, not a generator, and text taken as it is: a batch seals every row (the same text either way).
        text = "\x1f".join([f if f.__class__ is str else _field_text(f) for f in fields])
        return _hmac_sha256(self.record_seal_key, f"{kind}\x00{text}".encode())

    def seal_matches(self, seal: str | None, *fields: object, kind: str) -> bool:
        return seal is not None and hmac.compare_digest(self.seal(*fields, kind=kind), seal)

    def secret_matches(self, secret: str, stored_hash: str, *, kind: str) -> bool:
        return hmac.compare_digest(self.hash_secret(secret, kind=kind), stored_hash)


def _field_text(field: object) -> str:
    return "" if field is None else field.isoformat() if hasattr(field, "isoformat") else str(field)


@functools.lru_cache(maxsize=16)
def _keyed(key: bytes) -> hmac.HMAC:
    """HMAC-SHA256 with ``key`` set up, made once per key: each use takes a copy."""
    return hmac.new(key, digestmod="sha256")


def _hmac_sha256(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 of ``message`` in hex: the bytes of ``hmac.digest(key, message, "sha256").hex()`` in two thirds of
    its time (a copy of the keyed HMAC, where the one-shot call sets the key up again on each of a batch's rows)."""
    keyed = _keyed(key).copy()
    keyed.update(message)
    return keyed.hexdigest()


@functools.lru_cache(maxsize=16)
def _aead(key: bytes) -> AESGCM:
    """One cipher object per key, made once: making it costs twice what encrypting an identity number does, and a
    batch encrypts 10,000 of them. (Not kept in SecretsBox, which must stay picklable for the minting workers.)"""
    return AESGCM(key)


def _seal(key: bytes, plaintext: bytes, context: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return CIPHERTEXT_VERSION + nonce + _aead(key).encrypt(nonce, plaintext, context.encode())


def _open(key: bytes, blob: bytes, context: str) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != CIPHERTEXT_VERSION:
        raise DecryptionError("ciphertext has an unknown format")
    nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        return _aead(key).decrypt(nonce, body, context.encode())
    except Exception as exc:  # cryptography raises InvalidTag; anything else is equally fatal here
        raise DecryptionError("ciphertext does not open with this key") from exc
