"""The public verification answer: only what an employer may see (a masked identity number, never the full one)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from registry.catalogue.models import CertType
from registry.schemas import NameToMatch, StrictInput


class VerificationResult(StrEnum):
    valid = "valid"
    revoked = "revoked"
    suspended = "suspended"
    expired = "expired"
    unknown = "unknown"
    superseded = "superseded"


class VerifiedCertificate(BaseModel):
    number: str
    number_display: str
    holder_name: str
    holder_id_masked: str
    cert_type: CertType
    catalogue_code: str
    series_zh: str | None
    series_en: str | None = Field(default=None, description="The title series in English (titles only).")
    name_zh: str
    name_en: str
    level: str
    level_name_zh: str
    level_name_en: str
    issuer_code: str
    issuer_name: str
    awarded_on: date
    valid_until: date | None


class Verification(BaseModel):
    result: VerificationResult
    reason: str | None = Field(default=None, description="Why the result is not 'valid', where the public may know.")
    certificate: VerifiedCertificate | None = Field(
        description="Absent only when a peer node that holds the certificate could not be asked (result unknown)."
    )
    signature_valid: bool
    checked_at: datetime
    superseded_by: str | None = Field(default=None, description="The corrected successor's number, if superseded.")
    supersedes: str | None = Field(default=None, description="The number this certificate corrected, if any.")
    answered_by: str | None = Field(
        default=None, description="The region whose registry node answered (BJ, TJ, HE): this node's, or a peer's."
    )
    status_changed_on: date | None = Field(
        default=None,
        description="When the certificate stopped being valid (China Standard Time): the day it was revoked, "
        "suspended or corrected, or the first day after its validity for 'expired'. Absent while valid or unknown.",
    )
    status_reason: str | None = Field(
        default=None,
        description="The public reason code of that change (revoked: the revocation reason; suspended: the "
        "suspension's reason code, 'bureau' when the bureau suspended it), where one was given.",
    )


class VerifyByNumber(StrictInput):
    number: Annotated[str, Field(min_length=1, max_length=32)]
    holder_name: NameToMatch
