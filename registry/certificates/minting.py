"""The CPU-bound part of issuing a certificate — claim-code hash, canonical payload, signature, record seal — as a pure
function over plain values, so that the same code runs in this process or, for a large batch, in the
worker processes of ``registry.workers``, one chunk of rows each, on every core.

Everything random (ids, tokens, claim codes, numbers, status indexes) is drawn by the caller before this runs, and
everything here is deterministic (Ed25519 and ES256 as signed here are), so where it runs changes no stored byte.
The status seal is not made here: it binds the certificate's status-list slot, which a batch handed over early does not
know yet; ``recording`` makes it (one HMAC) as each row is stored.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime

from registry import workers
from registry.auth.claim_codes import claim_code_hash
from registry.certificates import signing
from registry.keys.secrets_box import SecretsBox
from registry.keys.signers import KeySigner, PortableKey, Signer

# What one certificate's cryptography needs, in this order: certificate id (as text), number, claim code, type,
# catalogue code and version, level, holder name, award date, valid until, evaluation batch, and the holder's
# document type, masked number and reference (blind index).
RowFacts = tuple[str, str, str, str, str, int, str, str, date, date | None, str | None, str, str, str]
NUMBER, ID_TYPE, ID_MASKED = 1, 11, 12  # where RowFacts hold what recording may change after a row is handed over
# What it makes: the claim code's keyed hash, the detached JWS, the record seal.
Sealed = tuple[str, str, str]
SEALED_COLUMNS = ("claim_code_hash", "signature", "record_seal")
CHUNK_ROWS = 500  # per task: ~30 ms of work, small enough that the first rows reach COPY early


@dataclass(frozen=True, slots=True)
class Sealing:
    """What every certificate of one recording shares."""

    box: SecretsBox
    signer: Signer | PortableKey
    issuer_code: str
    issued_at: datetime

    def portable(self) -> Sealing | None:
        """The same, picklable for a worker process (only the sealing subkeys go), or None when the signer is not a
        key this process holds (it cannot be handed over)."""
        if not isinstance(self.signer, KeySigner):
            return None
        return replace(self, box=self.box.for_sealing(), signer=self.signer.portable())


def seal_rows(sealing: Sealing, rows: Sequence[RowFacts]) -> list[Sealed]:
    """The cryptography of each row, in order. Runs in a worker process: plain values in, plain values out."""
    signer = sealing.signer.signer() if isinstance(sealing.signer, PortableKey) else sealing.signer
    return [seal_row(sealing, signer, row) for row in rows]


def seal_row(sealing: Sealing, signer: Signer, row: RowFacts) -> Sealed:
    (certificate_id, number, claim_code, cert_type, catalogue_code, catalogue_version, level, holder_name) = row[:8]
    awarded_on, valid_until, evaluation_batch, id_type, id_masked, holder_ref = row[8:]
    box = sealing.box
    payload = signing.canonical_payload(
        number=number,
        issuer_code=sealing.issuer_code,
        cert_type=cert_type,
        catalogue_code=catalogue_code,
        catalogue_version=catalogue_version,
        level=level,
        holder_name=holder_name,
        holder_id_type=id_type,
        holder_id_masked=id_masked,
        holder_ref=holder_ref,
        awarded_on=awarded_on,
        valid_until=valid_until,
        evaluation_batch=evaluation_batch,
        issued_at=sealing.issued_at,
    )
    signature = signing.sign(payload, signer=signer)
    record = signing.record_seal(
        box, certificate_id=certificate_id, kid=signer.kid, payload=payload, signature=signature
    )
    return claim_code_hash(box, claim_code), signature, record


Handed = workers.Handed[RowFacts, list[Sealed]]


def hand_over(pool: ProcessPoolExecutor, sealing: Sealing, rows: Sequence[RowFacts]) -> Handed:
    """Every chunk of ``rows`` handed to the pool at once (``workers.hand_over``); a hand-over that fails leaves the
    rows to be sealed here, in the caller's process."""
    return workers.hand_over(pool, functools.partial(seal_rows, sealing), rows, size=CHUNK_ROWS)


def sealed_chunks(handed: Handed) -> AsyncGenerator[list[Sealed], None]:
    """Each chunk's results in row order, as soon as it and those before it are done (``workers.results``). If the
    pool breaks, the rows not yet sealed are sealed here: the same bytes, more slowly. An error in a row is raised
    here."""
    return workers.results(handed)


async def seal_in_pool(
    pool: ProcessPoolExecutor, sealing: Sealing, rows: Sequence[RowFacts]
) -> AsyncIterator[list[Sealed]]:
    """``hand_over`` then ``sealed_chunks``: each chunk's results in row order."""
    async for chunk in sealed_chunks(hand_over(pool, sealing, rows)):
        yield chunk
