"""The per-row cost of each step of batch issuance, in microseconds on one core without a database: the app's own
functions, and indented beneath some of them the way the app did the same before it was made faster (same output).
Printed by ``batch.py`` after its runs."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import bench_common as common
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.dialects import postgresql

from registry.audit import service as audit
from registry.audit.models import AuditRecord
from registry.auth.claim_codes import claim_code_hash, new_claim_code
from registry.certificates import numbering, signing
from registry.certificates.schemas import CertificateIssue
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import utcnow
from registry.holders import service as holders
from registry.holders.identity import mask_id_number
from registry.holders.models import Holder
from registry.keys.signers import ED25519, KeySigner

CLAIM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as registry.auth.claim_codes uses


def _per_row_us(work: Callable[[int], object], count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        work(i)
    return (time.perf_counter() - started) / count * 1e6


def _claim_code_twelve_choices() -> str:
    """How new_claim_code drew its characters before: 12 x secrets.choice, one urandom call each."""
    raw = "".join(secrets.choice(CLAIM_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


# Long: a table of measured steps, one entry each; splitting it would scatter the table.
def step_costs(rows: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Microseconds per row for each step the batch path takes, with the app's functions and, indented, the way the
    app did the same before it was made faster (same output); one core, no database."""
    ctx = RegistryContext.from_settings(
        Settings(database_url="sqlite+aiosqlite:///:memory:", master_key=secrets.token_hex(32), env="test")
    )
    private_key = Ed25519PrivateKey.generate()
    signer = KeySigner("k", ED25519, private_key)
    n = len(rows)
    issued_at = utcnow().replace(microsecond=0)
    requests = [CertificateIssue.model_validate(row) for row in rows]
    indexes = [holders.id_index(ctx, id_type=r.holder.id_type, id_number=r.holder.id_number) for r in requests]

    def payload_of(i: int) -> bytes:
        r = requests[i]
        return signing.canonical_payload(
            number="BJT2026ABCDEFGH1",
            issuer_code=common.ISSUER_CODE,
            cert_type=r.cert_type,
            catalogue_code=r.catalogue_code,
            catalogue_version=1,
            level=r.level,
            holder_name=r.holder.name,
            holder_id_type=r.holder.id_type.value,
            holder_id_masked=mask_id_number(r.holder.id_type, r.holder.id_number),
            holder_ref=indexes[i],
            awarded_on=r.awarded_on,
            valid_until=None,
            evaluation_batch=r.evaluation_batch,
            issued_at=issued_at,
        )

    payloads = [payload_of(i) for i in range(n)]

    def audit_entry(i: int) -> dict[str, Any]:
        return {
            "issuer": common.ISSUER_CODE,
            "catalogue_code": rows[i]["catalogue_code"],
            "level": rows[i]["level"],
            "kid": "k",
            "holder_ref": indexes[i][:16],
        }

    def audit_as_model(i: int) -> object:
        record = AuditRecord(
            at=issued_at,
            actor="client:x",
            action="certificate.issued",
            object_type="certificate",
            object_id="BJT2026ABCDEFGH1",
            purpose="batch issuance",
            details=audit_entry(i),
            prev_hash="0" * 64,
            hash="",
        )
        record.hash = audit.record_hash(record.prev_hash, record)
        return record.model_dump(exclude={"id"})

    def audit_as_dict(i: int) -> object:
        row: dict[str, Any] = {
            "at": issued_at,
            "actor": "client:x",
            "action": "certificate.issued",
            "object_type": "certificate",
            "object_id": "BJT2026ABCDEFGH1",
            "purpose": "batch issuance",
            "details": audit_entry(i),
            "prev_hash": "0" * 64,
        }
        row["hash"] = audit.fields_hash(row["prev_hash"], row)
        return row

    holder_values = [
        {
            "id_type": "resident_id",
            "id_index": indexes[i],
            "id_number_encrypted": b"x" * 48,
            "id_masked": "11**************1X",
            "created_at": issued_at,
        }
        for i in range(min(n, 1000))
    ]
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]

    def compile_multi_values(_: int) -> object:
        statement = postgresql.insert(Holder).values(holder_values).on_conflict_do_nothing(index_elements=["id_index"])
        return statement.compile(dialect=dialect)

    return [
        (
            "CertificateIssue.model_validate (pydantic)",
            _per_row_us(lambda i: CertificateIssue.model_validate(rows[i]), n),
        ),
        (
            "blind index (HMAC-SHA256)",
            _per_row_us(
                lambda i: holders.id_index(
                    ctx, id_type=requests[i].holder.id_type, id_number=requests[i].holder.id_number
                ),
                n,
            ),
        ),
        (
            "encrypt identity number (AES-GCM)",
            _per_row_us(
                lambda i: ctx.box.encrypt(requests[i].holder.id_number.encode(), context=f"holder:{indexes[i]}"), n
            ),
        ),
        (
            "numbering.new_number",
            _per_row_us(lambda i: numbering.new_number(region="BJ", cert_type="title", year=2026), n),
        ),
        ("signing.canonical_payload (+ masking)", _per_row_us(payload_of, n)),
        (
            "signing.sign (detached JWS by hand)",
            _per_row_us(lambda i: signing.sign(payloads[i], signer=signer), n),
        ),
        (
            "  before: PyJWT api_jws.encode",
            _per_row_us(
                lambda i: jwt.api_jws.encode(
                    payloads[i],
                    private_key,
                    algorithm="EdDSA",
                    headers={"kid": "k", "typ": signing.SIGNATURE_TYPE},
                    is_payload_detached=True,
                ),
                n,
            ),
        ),
        ("new_claim_code (one 60-bit draw)", _per_row_us(lambda i: new_claim_code(), n)),
        ("  before: 12 x secrets.choice", _per_row_us(lambda i: _claim_code_twelve_choices(), n)),
        (
            "claim-code hash (HMAC-SHA256)",
            _per_row_us(lambda i: claim_code_hash(ctx.box, "ABCD1234EFGH"), n),
        ),
        ("audit row: plain dict + audit.fields_hash", _per_row_us(audit_as_dict, n)),
        ("  before: AuditRecord model + hash + model_dump", _per_row_us(audit_as_model, n)),
        ("  before: holders INSERT .values(1000 rows) compiled", _per_row_us(compile_multi_values, 20) / 1000),
    ]
