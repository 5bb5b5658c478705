"""How a credential names its holder: an Open Badges 3.0 ``IdentityObject`` with a salted SHA-256 ``identityHash`` of
the identity number — never the number, clear or masked.

``identityHash`` is ``"sha256$" + hex(sha256(id_number + salt))`` (OB 3.0 IdentityHash). The salt is an HMAC of the
certificate id under a subkey of the master key (the box's secret-hash key, with its own ``kind``), truncated: the same
for every signing of one certificate, so a re-signed credential carries the same hash, different between certificates,
and not computable without the master key.

The JWT's ``sub`` (the subject, beside ``credentialSubject``) is made the same way under a subkey of its own:
``urn:talent-registry:holder:`` + 32 hex digits of an HMAC of the certificate id. It names the holder of this one
certificate, stable across re-signings and unrelated between certificates, so that credentials of one person shown
to different relying parties cannot be joined by it (the salted hash is there for the same reason). Credentials signed
before carry 32 hex digits of the holder's blind index there, the same in all of that person's; they stay verifiable
(``sub`` is a claim nothing reads to verify).

What it protects and what it does not: a national identity number has little entropy (a region code, a birth date,
a sequence and a check character), so whoever holds a credential can recover the number by trying candidates against
the published salt. The credential goes only to its holder and to whomever they choose to show it; the hash is there
so that a relying party who was also shown the identity card can confirm it is the holder's, not to hide the number
from someone who has the credential.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from registry.keys.secrets_box import SecretsBox

SALT_KIND = "credential-identity-salt"
SALT_HEX_CHARS = 32  # 128 bits of the HMAC
SUBJECT_KIND = "credential-subject"
SUBJECT_PREFIX = "urn:talent-registry:holder:"
NATIONAL_ID_TYPE = "resident_id"


@dataclass(frozen=True, slots=True)
class HashedIdentity:
    identity_type: str  # OB IdentifierTypeEnum: ``nationalIdentityNumber``, or ``ext:`` + the registry's document type
    identity_hash: str
    salt: str

    def as_identity_object(self) -> dict[str, Any]:
        return {
            "type": "IdentityObject",
            "identityType": self.identity_type,
            "hashed": True,
            "identityHash": self.identity_hash,
            "salt": self.salt,
        }


def identity_type(id_type: str) -> str:
    """The OB identity type of a registry document type: the resident identity card is OB's national identity number;
    the others (passport, travel permits, permanent-residence card) have no OB name and take the ``ext:`` prefix."""
    return "nationalIdentityNumber" if id_type == NATIONAL_ID_TYPE else f"ext:{id_type}"


def salt_for(box: SecretsBox, certificate_id: str) -> str:
    return box.hash_secret(certificate_id, kind=SALT_KIND)[:SALT_HEX_CHARS]


def subject_for(box: SecretsBox, certificate_id: str) -> str:
    """The credential's ``sub``: the holder of this certificate, not linkable to their other certificates."""
    return SUBJECT_PREFIX + box.hash_secret(certificate_id, kind=SUBJECT_KIND)[:SALT_HEX_CHARS]


def identity_hash(id_number: str, salt: str) -> str:
    return "sha256$" + hashlib.sha256((id_number + salt).encode("utf-8")).hexdigest()


def hashed_identity(box: SecretsBox, *, certificate_id: str, id_type: str, id_number: str) -> HashedIdentity:
    salt = salt_for(box, certificate_id)
    return HashedIdentity(identity_type=identity_type(id_type), identity_hash=identity_hash(id_number, salt), salt=salt)
