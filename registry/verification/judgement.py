"""What "valid" means: the one judgement every verification makes, whoever asks (scan, number + name, page, PDF,
holder view, credential).

The record is really checked: the canonical payload is rebuilt from the row and its record seal (a keyed MAC made at
issuance over payload and signature) must match — or, failing that, the signature must verify with the body's key as
it stood when the certificate was signed, under an algorithm that key signs with (Ed25519 — ``EdDSA`` before RFC 9864 —
or ES256). The status — and the status-list slot where it is published — is protected by its own seal (version 2;
a version 1 seal, over the status alone, is read as tampered), and the body must have been in its filed scope on the
award date. Anything the registry cannot vouch for is 'unknown', never 'valid'.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from registry.certificates import signing
from registry.certificates.models import Status
from registry.issuers.models import FiledScope
from registry.keys.models import KeyStatus, KeyUse
from registry.keys.secrets_box import SecretsBox
from registry.keys.service import KeyRing
from registry.verification.reading import Connection
from registry.verification.schemas import VerificationResult


@dataclass(frozen=True, slots=True)
class Judgement:
    result: VerificationResult
    reason: str | None
    signature_valid: bool


async def judge_row(
    box: SecretsBox,
    keyring: KeyRing,
    connection: Connection,
    row: Mapping[str, Any],
    *,
    scopes: list[FiledScope],
    today: date,
) -> Judgement:
    """The judgement of one stored certificate (a row of ``reading``'s query) on ``today``."""
    signature_valid, key_problem = await check_signature(box, keyring, connection, row)
    if signature_valid and key_problem is None and not signing.status_seal_intact(box, row["status_seal"], row):
        key_problem = "status_tampered"
    in_scope = any(
        s.covers(
            cert_type=row["cert_type"], catalogue_code=row["catalogue_code"], level=row["level"], on=row["awarded_on"]
        )
        for s in scopes
    )
    result, reason = judge(
        status=row["status"],
        valid_until=row["valid_until"],
        revocation_reason=row["revocation_reason"],
        signature_valid=signature_valid,
        key_problem=key_problem,
        in_scope=in_scope,
        today=today,
    )
    return Judgement(result=result, reason=reason, signature_valid=signature_valid)


async def check_signature(
    box: SecretsBox, keyring: KeyRing, connection: Connection, row: Mapping[str, Any]
) -> tuple[bool, str | None]:
    """Rebuild the canonical payload from the stored values and check it against the record seal made at issuance;
    without a matching seal, verify the detached JWS with the body's key (the seal only ever saves that work)."""
    kid: str = row["kid"]
    info = await keyring.public_key(connection, kid)
    if info is None or info.use != KeyUse.certificate or info.issuer_id != row["issuer_id"]:
        return False, "signing_key_unknown"
    payload = signing.payload_of(
        row,
        issuer_code=row["issuer_code"],
        holder_id_type=row["id_type"],
        holder_id_masked=row["id_masked"],
        holder_ref=row["id_index"],
    )
    signature: str = row["signature"]
    sealed = row["record_seal"]
    if sealed is None or not hmac.compare_digest(
        sealed, signing.record_seal(box, certificate_id=row["id"], kid=kid, payload=payload, signature=signature)
    ):
        if signing.signature_kid(signature) != kid:
            return False, "signing_key_unknown"
        if not signing.verify(signature, payload, key=info.check):
            return False, None
    issued_at: datetime = row["issued_at"]
    if info.status == KeyStatus.compromised and (info.compromised_from is None or issued_at >= info.compromised_from):
        return True, "signing_key_compromised"
    # A signature dated outside its key's working life was not made by the registry in the ordinary course.
    if issued_at < info.valid_from.replace(microsecond=0) or (
        info.retired_at is not None and issued_at > info.retired_at
    ):
        return True, "signing_key_not_valid_then"
    return True, None


def judge(
    *,
    status: str,
    valid_until: date | None,
    revocation_reason: str | None,
    signature_valid: bool,
    key_problem: str | None,
    in_scope: bool,
    today: date,
) -> tuple[VerificationResult, str | None]:
    """Fail closed: anything the registry cannot vouch for is 'unknown', never 'valid'."""
    if not signature_valid:
        return VerificationResult.unknown, key_problem or "signature_invalid"
    if key_problem is not None:
        return VerificationResult.unknown, key_problem
    if not in_scope:
        return VerificationResult.unknown, "issuer_outside_filed_scope"
    if status == Status.revoked:
        return VerificationResult.revoked, revocation_reason or "revoked"
    if status == Status.superseded:
        return VerificationResult.superseded, "superseded"
    if status == Status.suspended:
        return VerificationResult.suspended, "suspended"
    if valid_until is not None and valid_until < today:
        return VerificationResult.expired, "expired"
    return VerificationResult.valid, None
