"""The one interface every signature of an evaluation body goes through — the certificate's detached signature, its
credential and its status lists — and its verifying counterpart, chosen by the algorithm stored with the key.

An algorithm is an ``Algorithm``: how to make a key pair, how its public key is stored and published as a JWK, how it
signs and verifies bytes as a JWS signature. ``Ed25519`` (the default; written ``EdDSA`` before RFC 9864, which is still
accepted when verifying) and ``ES256`` (ECDSA P-256 with SHA-256, for relying parties whose validators require it) are
the two today; another (SM2 with SM3, say) is one more entry in ``ALGORITHMS``: issuance only ever sees a ``Signer``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
    load_der_public_key,
)
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey


class SigningAlgorithm(StrEnum):
    """What a body's certificate key may be; the name is the JWS ``alg`` its new signatures carry."""

    ed25519 = "Ed25519"
    es256 = "ES256"


DEFAULT_ALGORITHM = SigningAlgorithm.ed25519


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a base64url string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Algorithm(Protocol):
    """One signature algorithm: key pairs, their storage and JWK form, JWS signatures."""

    @property
    def name(self) -> str:
        """Stored in ``signing_keys.algorithm`` and written as the JWS ``alg`` of every new signature."""
        ...

    @property
    def legacy_alg(self) -> str:
        """The ``alg`` the JWKS lists under a key's short kid, as signatures made before RFC 9864 say."""
        ...

    @property
    def accepts(self) -> frozenset[str]:
        """Every JWS ``alg`` a signature by such a key may carry; anything else is refused (no algorithm confusion)."""
        ...

    def generate(self) -> tuple[bytes, bytes]:
        """A new key pair: (private key bytes to wrap, public key bytes to store)."""
        ...

    def signing_key(self, private: bytes) -> PrivateKey: ...
    def public_key(self, public: bytes) -> PublicKey: ...
    def sign(self, key: PrivateKey, data: bytes) -> bytes: ...
    def signing_function(self, key: PrivateKey) -> Callable[[bytes], bytes]: ...
    def verify(self, key: PublicKey, signature: bytes, data: bytes) -> bool: ...
    def jwk(self, public: bytes) -> dict[str, str]: ...
    def from_jwk(self, jwk: dict[str, Any]) -> PublicKey | None: ...


class _Ed25519:
    name = SigningAlgorithm.ed25519.value
    legacy_alg = "EdDSA"
    accepts = frozenset({"Ed25519", "EdDSA"})

    def generate(self) -> tuple[bytes, bytes]:
        private = Ed25519PrivateKey.generate()
        return (
            private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
            private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        )

    def signing_key(self, private: bytes) -> PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(private)

    def public_key(self, public: bytes) -> PublicKey:
        return Ed25519PublicKey.from_public_bytes(public)

    def sign(self, key: PrivateKey, data: bytes) -> bytes:
        return self.signing_function(key)(data)

    def signing_function(self, key: PrivateKey) -> Callable[[bytes], bytes]:
        """Signing with ``key``, through libsodium (PyNaCl): 20-22 µs a signature here against 35-43 µs through
        OpenSSL (``cryptography``), and the same bytes, Ed25519 being deterministic (RFC 8032). The key's 64-byte
        libsodium form is made once, here, not per signature."""
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError("not an Ed25519 key")
        _public, secret = crypto_sign_seed_keypair(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

        def sign(data: bytes) -> bytes:
            return crypto_sign(data, secret)[:64]  # signed message = signature (64 bytes) + message

        return sign

    def verify(self, key: PublicKey, signature: bytes, data: bytes) -> bool:
        if not isinstance(key, Ed25519PublicKey):
            return False
        try:
            key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def jwk(self, public: bytes) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(public)}

    def from_jwk(self, jwk: dict[str, Any]) -> PublicKey | None:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            return None
        try:
            return Ed25519PublicKey.from_public_bytes(_unb64url(jwk.get("x")))
        except ValueError:
            return None


class _ES256:
    name = SigningAlgorithm.es256.value
    legacy_alg = "ES256"
    accepts = frozenset({"ES256"})
    _size = 32  # bytes of r, s, x and y on P-256

    def generate(self) -> tuple[bytes, bytes]:
        private = ec.generate_private_key(ec.SECP256R1())
        return (
            private.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()),
            private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        )

    def signing_key(self, private: bytes) -> PrivateKey:
        key = load_der_private_key(private, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise TypeError("not a P-256 key")
        return key

    def public_key(self, public: bytes) -> PublicKey:
        key = load_der_public_key(public)
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("not a P-256 public key")
        return key

    def sign(self, key: PrivateKey, data: bytes) -> bytes:
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("not an ECDSA key")
        # Deterministic (RFC 6979), as Ed25519 is: the same list signed twice within its minute gives the same bytes,
        # so its ETag holds for caches.
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)))
        # JWS (RFC 7518 §3.4) wants r and s as fixed-size big-endian integers, not DER.
        return r.to_bytes(self._size, "big") + s.to_bytes(self._size, "big")

    def signing_function(self, key: PrivateKey) -> Callable[[bytes], bytes]:
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("not an ECDSA key")
        return lambda data: self.sign(key, data)

    def verify(self, key: PublicKey, signature: bytes, data: bytes) -> bool:
        if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) != 2 * self._size:
            return False
        r, s = int.from_bytes(signature[: self._size], "big"), int.from_bytes(signature[self._size :], "big")
        try:
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def jwk(self, public: bytes) -> dict[str, str]:
        key = self.public_key(public)
        assert isinstance(key, ec.EllipticCurvePublicKey)  # public_key() returns nothing else
        numbers = key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(self._size, "big")),
            "y": _b64url(numbers.y.to_bytes(self._size, "big")),
        }

    def from_jwk(self, jwk: dict[str, Any]) -> PublicKey | None:
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            return None
        try:
            x, y = _unb64url(jwk.get("x")), _unb64url(jwk.get("y"))
            if len(x) != self._size or len(y) != self._size:
                return None
            numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1())
            return numbers.public_key()
        except ValueError:
            return None


ED25519: Algorithm = _Ed25519()
ES256: Algorithm = _ES256()
ALGORITHMS: dict[str, Algorithm] = {ED25519.name: ED25519, ES256.name: ES256}
# Names a key row may carry for the same algorithm: rows made before RFC 9864 say "EdDSA".
_STORED_ALIASES = {"EdDSA": ED25519}


def algorithm(stored: str) -> Algorithm:
    """The algorithm of a key row (``signing_keys.algorithm``); ValueError for one this registry does not know."""
    found = ALGORITHMS.get(stored) or _STORED_ALIASES.get(stored)
    if found is None:
        raise ValueError(f"unknown signature algorithm {stored!r}")
    return found


class Signer(Protocol):
    """What issuance signs with: the JWS ``alg`` and ``kid`` to put in the header and the signature over bytes."""

    @property
    def alg(self) -> str: ...
    @property
    def kid(self) -> str: ...
    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class KeySigner:
    """A ``Signer`` holding a private key of one ``Algorithm`` (and the algorithm's way of signing with it, made once:
    a batch signs ten thousand times with one key)."""

    kid: str
    algorithm: Algorithm
    private_key: PrivateKey
    _sign: Callable[[bytes], bytes] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._sign is None:
            object.__setattr__(self, "_sign", self.algorithm.signing_function(self.private_key))

    @property
    def alg(self) -> str:
        return self.algorithm.name

    def sign(self, data: bytes) -> bytes:
        assert self._sign is not None, "made in __post_init__"
        return self._sign(data)

    def named(self, kid: str) -> KeySigner:
        """The same key, announcing itself under another kid (its URL, in credentials and status lists)."""
        return KeySigner(kid=kid, algorithm=self.algorithm, private_key=self.private_key, _sign=self._sign)

    def portable(self) -> PortableKey:
        """The key as plain bytes, to sign with in a worker process (``registry.workers``)."""
        if isinstance(self.private_key, Ed25519PrivateKey):
            private = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        else:
            private = self.private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        return PortableKey(kid=self.kid, algorithm=self.algorithm.name, private=private)


@dataclass(frozen=True, slots=True)
class PortableKey:
    """A ``KeySigner`` as picklable bytes, in the form its algorithm's ``signing_key`` reads (never in a repr)."""

    kid: str
    algorithm: str
    private: bytes = field(repr=False)

    def signer(self) -> KeySigner:
        chosen = algorithm(self.algorithm)
        return KeySigner(self.kid, chosen, chosen.signing_key(self.private))


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The verifying counterpart of a ``Signer``: a public key and the algorithm it was stored (or published) with."""

    algorithm: Algorithm
    public_key: PublicKey

    def verify(self, signature: bytes, data: bytes, *, alg: Any) -> bool:
        """Whether ``signature`` over ``data`` verifies and the JWS header's ``alg`` is one this key signs under."""
        return alg in self.algorithm.accepts and self.algorithm.verify(self.public_key, signature, data)


def check_for_key(public_key: PublicKey) -> SignatureCheck:
    """The check for a bare public key object (its type says the algorithm)."""
    return SignatureCheck(ED25519 if isinstance(public_key, Ed25519PublicKey) else ES256, public_key)


def check_for_jwk(jwk: dict[str, Any]) -> SignatureCheck | None:
    """The check for a published JWK, or None if its key type is not one of ours or its ``alg`` member contradicts
    its key type (a JWK saying ``ES256`` over an Ed25519 key is no key at all)."""
    for candidate in ALGORITHMS.values():
        public_key = candidate.from_jwk(jwk)
        if public_key is not None:
            if "alg" in jwk and jwk["alg"] not in candidate.accepts:
                return None
            return SignatureCheck(candidate, public_key)
    return None
