"""The verifier: answers "is this certificate genuine and valid?" by token, by number + name, or for a record already
loaded, with only what the public may see — the holder's name and a masked identity number, never the full one."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from registry import clock
from registry.certificates import numbering
from registry.certificates.records import CertificateRecord
from registry.db import utcnow
from registry.errors import InvalidCertificateNumber, InvalidInput, NotFound
from registry.i18n import _, message_of
from registry.keys.secrets_box import SecretsBox
from registry.keys.service import KeyRing
from registry.metrics import VERIFICATIONS
from registry.schemas import person_name_key
from registry.verification.caches import EntryNames, LevelNames, ReadCaches
from registry.verification.judgement import Judgement, judge_row
from registry.verification.reading import Connection, StatusChange, certificate_row, status_change
from registry.verification.schemas import Verification, VerificationResult, VerifiedCertificate
from registry.verification.visits import Visit, VisitLog

# Tokens are 24 characters (144 random bits); anything far outside that cannot be one and costs no query.
_TOKEN_LENGTHS = range(16, 65)
_QR_SCAN = Visit("qr")
_NUMBER_AND_NAME = Visit("number")
_PEER_QUESTION = Visit("peer")


@dataclass
class Verifier:
    """One per process: the master-key box (seals), the key ring (public keys) and the caches it fills."""

    box: SecretsBox
    keyring: KeyRing
    caches: ReadCaches = field(default_factory=ReadCaches)
    region: str | None = None  # this node's region, named in every answer
    visits: VisitLog | None = None  # who looked, for the holder; None records nothing

    async def by_token(
        self, connection: Connection, *, token: str, channel: str, visit: Visit | None = None
    ) -> Verification:
        row = await certificate_row(connection, "token", token) if len(token) in _TOKEN_LENGTHS else None
        if row is None:
            VERIFICATIONS.labels(result="not_found", channel=channel).inc()
            raise NotFound(_("no certificate for this verification link"))
        return await self.answer(connection, row, channel=channel, visit=visit or _QR_SCAN)

    async def by_number(
        self,
        connection: Connection,
        *,
        number: str,
        holder_name: str,
        channel: str = "number",
        visit: Visit | None = None,
    ) -> Verification:
        try:
            canonical = numbering.normalize_number(number)
        except InvalidCertificateNumber as exc:
            raise InvalidInput.field("number", message_of(exc)) from None
        row = await certificate_row(connection, "number", canonical)
        # A wrong name answers exactly like an unknown number: the endpoint must not confirm that a number exists.
        if row is None or not hmac.compare_digest(
            person_name_key(row["holder_name"]).encode(), person_name_key(holder_name).encode()
        ):
            VERIFICATIONS.labels(result="not_found", channel=channel).inc()
            raise NotFound(_("no certificate with this number and holder name"))
        visit = visit or (_PEER_QUESTION if channel == "peer" else _NUMBER_AND_NAME)
        return await self.answer(connection, row, channel=channel, visit=visit)

    async def of_record(self, connection: Connection, record: CertificateRecord, *, channel: str) -> Verification:
        """The public answer for a certificate already loaded (PDF, holder views, credentials): the same rules."""
        cert, holder, issuer = record.certificate, record.holder, record.issuer
        row = {
            **cert.model_dump(),
            "id_type": holder.id_type,
            "id_masked": holder.id_masked,
            "id_index": holder.id_index,
            "issuer_code": issuer.code,
            "issuer_name": issuer.name,
        }
        return await self.answer(connection, row, channel=channel)

    async def answer(
        self, connection: Connection, row: Mapping[str, Any], *, channel: str, visit: Visit | None = None
    ) -> Verification:
        """The one place a verification answer is made. With ``visit``, somebody other than the holder asked: the
        holder sees it under "who looked" (queued in memory, written in batches: registry.verification.visits)."""
        if visit is not None and self.visits is not None:
            self.visits.record(row["id"], visit)
        scopes = await self.caches.filed_scopes(connection, row["issuer_id"])
        judgement = await judge_row(self.box, self.keyring, connection, row, scopes=scopes, today=clock.today())
        VERIFICATIONS.labels(result=judgement.result.value, channel=channel).inc()
        entry = await self.caches.entry(connection, row["catalogue_code"])
        level = await self.caches.level(connection, row["cert_type"], row["level"])
        change = await _change_of(connection, row, judgement.result)
        return public_answer(row, judgement, entry=entry, level=level, region=self.region, change=change)


async def _change_of(connection: Connection, row: Mapping[str, Any], result: VerificationResult) -> StatusChange | None:
    """When and why the certificate stopped being valid; a second query only for the few that did."""
    if result is VerificationResult.expired and row["valid_until"] is not None:
        return StatusChange(on=row["valid_until"] + timedelta(days=1), reason_code=None)
    if result not in _EVENT_OF:
        return None
    change = await status_change(connection, row["id"], event=_EVENT_OF[result])
    if result is VerificationResult.revoked:
        # The certificate's own column is sealed with its status; the event only dates it.
        return StatusChange(on=change.on if change else None, reason_code=row["revocation_reason"])
    return change


_EVENT_OF = {
    VerificationResult.revoked: "revoked",
    VerificationResult.suspended: "suspended",
    VerificationResult.superseded: "superseded",
}


def public_answer(
    row: Mapping[str, Any],
    judgement: Judgement,
    *,
    entry: EntryNames | None,
    level: LevelNames | None,
    region: str | None = None,
    change: StatusChange | None = None,
) -> Verification:
    """The answer as the public sees it; the identity number only in the masked form stored at issuance."""
    entry = entry or EntryNames(series_zh=None, name_zh=row["catalogue_code"], name_en=row["catalogue_code"])
    level = level or LevelNames(name_zh=row["level"], name_en=row["level"])
    return Verification(
        result=judgement.result,
        reason=judgement.reason,
        signature_valid=judgement.signature_valid,
        checked_at=utcnow(),
        superseded_by=row["superseded_by"],
        supersedes=row["supersedes"],
        answered_by=region,
        status_changed_on=change.on if change else None,
        status_reason=change.reason_code if change else None,
        certificate=VerifiedCertificate(
            number=row["number"],
            number_display=numbering.group_canonical(row["number"]),
            holder_name=row["holder_name"],
            holder_id_masked=row["id_masked"],
            cert_type=row["cert_type"],
            catalogue_code=row["catalogue_code"],
            series_zh=entry.series_zh,
            series_en=entry.series_en,
            name_zh=entry.name_zh,
            name_en=entry.name_en,
            level=row["level"],
            level_name_zh=level.name_zh,
            level_name_en=level.name_en,
            issuer_code=row["issuer_code"],
            issuer_name=row["issuer_name"],
            awarded_on=row["awarded_on"],
            valid_until=row["valid_until"],
        ),
    )
