"""The canonical payload of a certificate and its detached JWS signature (RFC 7515 appendix F)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import jwt

from registry.canonical import canonical_json
from registry.keys import jws
from registry.keys.secrets_box import SecretsBox
from registry.keys.signers import PublicKey, SignatureCheck, Signer, check_for_key

SIGNATURE_TYPE = "tr-cert-sig+jws"  # the certificate record signature; never accepted as an access token
PAYLOAD_VERSION = 1


def canonical_payload(
    *,
    number: str,
    issuer_code: str,
    cert_type: str,
    catalogue_code: str,
    catalogue_version: int,
    level: str,
    holder_name: str,
    holder_id_type: str,
    holder_id_masked: str,
    holder_ref: str,
    awarded_on: date,
    valid_until: date | None,
    evaluation_batch: str | None,
    issued_at: datetime,
) -> bytes:
    """Every field that makes the certificate what it is. Rebuilt from the stored row at every verification, so any
    change to the row — by a bug, an operator, or an attacker with database access — breaks the signature."""
    payload: dict[str, Any] = {
        "v": PAYLOAD_VERSION,
        "number": number,
        "issuer": issuer_code,
        "cert_type": cert_type,
        "catalogue": {"code": catalogue_code, "version": catalogue_version},
        "level": level,
        "holder": {"name": holder_name, "id_type": holder_id_type, "id_masked": holder_id_masked, "ref": holder_ref},
        "awarded_on": awarded_on.isoformat(),
        "valid_until": valid_until.isoformat() if valid_until else None,
        "evaluation_batch": evaluation_batch,
        "issued_at": issued_at.isoformat(timespec="seconds"),
    }
    return canonical_json(payload)


def payload_of(
    certificate: Mapping[str, Any], *, issuer_code: str, holder_id_type: str, holder_id_masked: str, holder_ref: str
) -> bytes:
    """The canonical payload of a certificate given as its row (column names), whoever holds the row: issuance, batch
    issuance and verification all sign or check exactly these bytes."""
    return canonical_payload(
        number=certificate["number"],
        issuer_code=issuer_code,
        cert_type=certificate["cert_type"],
        catalogue_code=certificate["catalogue_code"],
        catalogue_version=certificate["catalogue_version"],
        level=certificate["level"],
        holder_name=certificate["holder_name"],
        holder_id_type=holder_id_type,
        holder_id_masked=holder_id_masked,
        holder_ref=holder_ref,
        awarded_on=certificate["awarded_on"],
        valid_until=certificate["valid_until"],
        evaluation_batch=certificate["evaluation_batch"],
        issued_at=certificate["issued_at"],
    )


# The status seal's kind: version 2 binds the status-list slot too (migration 0019). Version 1 ("certificate-status",
# status fields only) let a slot be moved with SQL, so that a rebuilt list put a revoked certificate's bit elsewhere;
# it is accepted nowhere but in the one re-seal pass ``registry migrate`` makes (``reseal_pass``).
STATUS_SEAL_KIND = "certificate-status-2"
LEGACY_STATUS_SEAL_KIND = "certificate-status"


def status_seal(
    box: SecretsBox,
    *,
    certificate_id: object,
    number: str,
    status: str,
    revocation_reason: str | None,
    superseded_by: str | None,
    status_list_id: str | None,
    status_index: int | None,
) -> str:
    """The status is not in the signed payload (it changes); this keyed MAC makes it just as hard to fake. It covers
    where the certificate's bits are published (status list and index), so a slot moved with SQL fails it."""
    return box.seal(
        certificate_id,
        number,
        status,
        revocation_reason,
        superseded_by,
        status_list_id,
        status_index,
        kind=STATUS_SEAL_KIND,
    )


def status_seal_intact(box: SecretsBox, seal: str | None, row: Mapping[str, Any]) -> bool:
    """Whether a stored certificate's status fields and slot (given as its row) still carry the seal of
    ``status_seal``. A version 1 seal never does."""
    fields = (
        row["id"],
        row["number"],
        row["status"],
        row["revocation_reason"],
        row["superseded_by"],
        row["status_list_id"],
        row["status_index"],
    )
    return box.seal_matches(seal, *fields, kind=STATUS_SEAL_KIND)


def legacy_status_seal_intact(box: SecretsBox, seal: str | None, row: Mapping[str, Any]) -> bool:
    """Whether a row still carries a version 1 seal over its status fields: only the re-seal pass asks."""
    fields = (row["id"], row["number"], row["status"], row["revocation_reason"], row["superseded_by"])
    return box.seal_matches(seal, *fields, kind=LEGACY_STATUS_SEAL_KIND)


def record_seal(box: SecretsBox, *, certificate_id: object, kid: str, payload: bytes, signature: str) -> str:
    """Keyed MAC, made at issuance, binding the canonical payload to the signature the registry made over it.

    Public verification checks this seal (a few microseconds) instead of an Ed25519 verify (about 140 µs here) on every
    scan: both fail for anyone who can write the database but does not hold the master key, which also wraps the
    bodies' private keys. A row whose seal is missing or does not match gets the full signature check, so the seal can
    only save work, never vouch for a row the signature would reject. The JWS stays for offline verifiers.
    """
    return box.seal(certificate_id, kid, hashlib.sha256(payload).hexdigest(), signature, kind="certificate-record")


@functools.lru_cache(maxsize=256)
def _protected_header(kid: str, alg: str) -> bytes:
    """The base64url protected header, exactly as PyJWT writes it for a detached payload: RFC 7797's unencoded
    payload (``"b64": false``, listed in ``crit``), keys sorted, no spaces."""
    return jws.protected_header(alg=alg, kid=kid, typ=SIGNATURE_TYPE, b64=False, crit=["b64"])


def sign(payload: bytes, *, signer: Signer) -> str:
    """Compact JWS with the payload detached: ``header..signature``, under the signer's short kid and its algorithm
    (``Ed25519`` per RFC 9864, or ``ES256``; certificates signed before say ``EdDSA``, and still verify).

    Byte for byte what PyJWT's ``encode(payload, key, algorithm=signer.alg, headers={"kid": kid, "typ":
    SIGNATURE_TYPE}, is_payload_detached=True)`` returns, were the algorithm registered with it (Ed25519 is
    deterministic), without its per-call header JSON and algorithm look-up: batch issuance signs 10,000 at a time.
    """
    if not isinstance(signer.kid, str):
        raise jwt.InvalidTokenError("Key ID header parameter must be a string")  # as PyJWT says it
    header = _protected_header(signer.kid, signer.alg)
    signature = signer.sign(header + b"." + payload)
    return (header + b".." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode("ascii")


def signature_kid(signature: str) -> str | None:
    try:
        kid = jwt.api_jws.get_unverified_header(signature).get("kid")
    except jwt.PyJWTError:
        return None
    return kid if isinstance(kid, str) else None


def verify(signature: str, payload: bytes, *, key: PublicKey | SignatureCheck) -> bool:
    """Whether ``signature`` is this registry's detached JWS over ``payload`` by ``key``, under an algorithm the key
    signs with (an Ed25519 key: ``Ed25519`` or ``EdDSA``; an ES256 key: ``ES256``)."""
    check = key if isinstance(key, SignatureCheck) else check_for_key(key)
    header_segment, separator, encoded_signature = signature.partition("..")
    try:
        header = jws.unverified_header(header_segment)
        raw_signature = jws.unb64url(encoded_signature)
    except (ValueError, binascii.Error):
        return False
    if (
        not separator
        or header.get("typ") != SIGNATURE_TYPE
        or header.get("b64") is not False
        or header.get("crit") != ["b64"]
    ):
        return False
    return check.verify(raw_signature, header_segment.encode("ascii") + b"." + payload, alg=header.get("alg"))
