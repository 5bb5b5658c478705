"""The no-HTTP floor of ``batch.py``: the same rows made into holders and certificates in this process, with the
registry's own functions — blind index, AES-GCM encryption and masking of the identity number, canonical payload and
Ed25519 signature, claim code and its keyed hash, number and token — then ``COPY`` (asyncpg) into ``holders`` and
``certificates``, one transaction per batch, on one core. No HTTP, no validation, no events, audit or idempotency."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import bench_common as common
import load

from registry.auth.claim_codes import claim_code_hash, new_claim_code
from registry.certificates import numbering, signing
from registry.context import RegistryContext
from registry.db import session_factory, transaction, utcnow
from registry.holders import service as holders
from registry.holders.identity import IdType, mask_id_number
from registry.issuers.models import Issuer
from registry.keys import service as keys
from registry.keys.models import KeyUse
from registry.keys.signers import Signer

HOLDER_COLUMNS = ("id", "id_type", "id_index", "id_number_encrypted", "id_masked", "created_at")
CERTIFICATE_COLUMNS = (
    "id",
    "number",
    "issuer_id",
    "kid",
    "cert_type",
    "catalogue_code",
    "catalogue_version",
    "level",
    "holder_id",
    "holder_name",
    "awarded_on",
    "valid_until",
    "evaluation_batch",
    "status",
    "verify_token",
    "claim_code_hash",
    "signature",
    "issued_at",
)


@dataclass(frozen=True, slots=True)
class Timing:
    rows: int
    seconds: float
    # CPU seconds the batch took: the service's processes (serving, batch workers) or the floor's one process, and
    # the PostgreSQL server's (0 when it does not run on this machine). None when batches overlapped.
    cpu_service: float | None = None
    cpu_database: float | None = None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


# Long: the floor's rows are made exactly as the app makes them, one field after another, in one place to compare.
def floor_records(
    ctx: RegistryContext,
    rows: list[dict[str, Any]],
    *,
    issuer: Issuer,
    key_kid: str,
    signer: Signer,
    versions: dict[str, int],
    ids: list[int],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Holder and certificate records for COPY: every secret and signature the registry would make, nothing else."""
    now = utcnow()
    issued_at = now.replace(microsecond=0)
    holder_records: list[tuple[Any, ...]] = []
    certificate_records: list[tuple[Any, ...]] = []
    awarded_on = date.fromisoformat(rows[0]["awarded_on"])
    for row, holder_id in zip(rows, ids, strict=True):
        holder = row["holder"]
        id_type = IdType(holder["id_type"])
        id_number: str = holder["id_number"]
        index = holders.id_index(ctx, id_type=id_type, id_number=id_number)
        masked = mask_id_number(id_type, id_number)
        encrypted = ctx.box.encrypt(id_number.encode(), context=f"holder:{index}")
        holder_records.append((holder_id, id_type.value, index, encrypted, masked, now))
        number = numbering.new_number(region=issuer.region, cert_type=row["cert_type"], year=awarded_on.year)
        payload = signing.canonical_payload(
            number=number,
            issuer_code=issuer.code,
            cert_type=row["cert_type"],
            catalogue_code=row["catalogue_code"],
            catalogue_version=versions[row["catalogue_code"]],
            level=row["level"],
            holder_name=holder["name"],
            holder_id_type=id_type.value,
            holder_id_masked=masked,
            holder_ref=index,
            awarded_on=awarded_on,
            valid_until=None,
            evaluation_batch=row["evaluation_batch"],
            issued_at=issued_at,
        )
        claim_hash = claim_code_hash(ctx.box, new_claim_code())
        certificate_records.append(
            (
                uuid.uuid4(),
                number,
                issuer.id,
                key_kid,
                row["cert_type"],
                row["catalogue_code"],
                versions[row["catalogue_code"]],
                row["level"],
                holder_id,
                holder["name"],
                awarded_on,
                None,
                row["evaluation_batch"],
                "active",
                secrets.token_urlsafe(18),
                claim_hash,
                signing.sign(payload, signer=signer),
                issued_at,
            )
        )
    return holder_records, certificate_records


class Floor:
    """The floor's database (created fresh by ``open``) and its one connection; ``batch`` times one batch."""

    def __init__(
        self, ctx: RegistryContext, issuer: Issuer, kid: str, signer: Signer, connection: Any, versions: dict[str, int]
    ) -> None:
        self.ctx, self.issuer, self.kid, self.signer = ctx, issuer, kid, signer
        self.connection, self.versions = connection, versions
        self.database_pid: int | None = None
        self.written = 0

    @classmethod
    async def open(cls, url: str, key: str) -> Floor:
        ctx, engine, issuer = await load.fresh_registry(url, key)
        try:
            async with transaction(session_factory(engine)) as session:
                signing_key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
            assert signing_key is not None
            signer = ctx.keyring.signer(signing_key)
        finally:
            await engine.dispose()
        connection = await asyncpg.connect(common.driver_dsn(url))
        found = await connection.fetch(
            "SELECT code, version FROM catalogue_entries WHERE code = ANY($1::text[])", list(common.CATALOGUE_CODES)
        )
        floor = cls(ctx, issuer, signing_key.kid, signer, connection, {r["code"]: r["version"] for r in found})
        floor.database_pid = await common.postmaster_pid(url)
        return floor

    def cpu(self) -> tuple[float, float]:
        database = common.tree_cpu_seconds(self.database_pid) if self.database_pid is not None else 0.0
        return time.process_time(), database

    async def batch(self, rows: list[dict[str, Any]]) -> Timing:
        connection = self.connection
        started, before = time.perf_counter(), self.cpu()
        async with connection.transaction():
            sequence = "SELECT nextval('holders_id_seq') FROM generate_series(1, $1)"
            ids = [r[0] for r in await connection.fetch(sequence, len(rows))]
            holder_records, certificate_records = floor_records(
                self.ctx,
                rows,
                issuer=self.issuer,
                key_kid=self.kid,
                signer=self.signer,
                versions=self.versions,
                ids=ids,
            )
            await connection.copy_records_to_table("holders", records=holder_records, columns=HOLDER_COLUMNS)
            await connection.copy_records_to_table(
                "certificates", records=certificate_records, columns=CERTIFICATE_COLUMNS
            )
        seconds, after = time.perf_counter() - started, self.cpu()
        self.written += len(rows)
        print(
            f"  floor batch of {len(rows):,}: {seconds:6.2f} s  {len(rows) / seconds:8,.0f} certificates/s", flush=True
        )
        return Timing(len(rows), seconds, after[0] - before[0], after[1] - before[1])

    async def close(self) -> None:
        """Closes the connection once every batch written is known to be stored."""
        try:
            count: int = await self.connection.fetchval("SELECT count(*) FROM certificates")
        finally:
            await self.connection.close()
        if count != self.written:
            raise RuntimeError(f"the floor wrote {count} certificates, expected {self.written}")
