"""Certificate request and response shapes, including the public verification answer."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from registry.catalogue.models import CertType
from registry.catalogue.schemas import LevelCode
from registry.certificates.models import Status
from registry.holders.identity import IdType
from registry.holders.schemas import checked_id_number
from registry.schemas import Code, FieldValueError, StrictInput, Text64

# Titles and skill levels of the People's Republic; anything earlier is a typo, not a certificate to digitise.
EARLIEST_AWARD = date(1949, 10, 1)


class HolderIn(StrictInput):
    name: Text64
    id_type: IdType
    id_number: Annotated[str, Field(min_length=1, max_length=32)]

    _id_number_is_valid = field_validator("id_number")(checked_id_number)


class CertificateIssue(StrictInput):
    cert_type: CertType
    catalogue_code: Code
    level: LevelCode
    holder: HolderIn
    awarded_on: date
    valid_until: date | None = None
    evaluation_batch: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w\-./ ]+$")] | None = None

    @field_validator("awarded_on")
    @classmethod
    def _awarded_in_the_registry_era(cls, value: date) -> date:
        if value < EARLIEST_AWARD:
            raise ValueError(f"must be on or after {EARLIEST_AWARD.isoformat()}")
        return value

    @field_validator("valid_until")
    @classmethod
    def _validity_after_award(cls, value: date | None, info: ValidationInfo) -> date | None:
        awarded_on = info.data.get("awarded_on")
        if value is not None and awarded_on is not None and value <= awarded_on:
            raise ValueError("must be after awarded_on")
        return value


class HolderPublic(BaseModel):
    name: str
    id_type: IdType
    id_masked: str


class CertificatePublic(BaseModel):
    """What the issuing body sees of its own certificate (masked identity; no claim code)."""

    id: uuid.UUID
    number: str
    number_display: str
    status: Status
    cert_type: CertType
    catalogue_code: str
    catalogue_version: int
    name_zh: str
    name_en: str
    level: str
    level_name_zh: str
    level_name_en: str
    holder: HolderPublic
    issuer_code: str
    issuer_name: str
    awarded_on: date
    valid_until: date | None
    evaluation_batch: str | None
    issued_at: datetime
    kid: str
    signature: str
    verify_url: str
    qr_token: str
    supersedes: str | None = None
    superseded_by: str | None = None


class CertificateIssued(CertificatePublic):
    claim_code: str = Field(description="Give this to the holder; it is shown only in this response.")


class CertificatePage(BaseModel):
    data: list[CertificatePublic]
    next_cursor: str | None


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
    certificate: VerifiedCertificate
    signature_valid: bool
    checked_at: datetime
    superseded_by: str | None = Field(default=None, description="The corrected successor's number, if superseded.")
    supersedes: str | None = Field(default=None, description="The number this certificate corrected, if any.")


class RevocationReason(StrEnum):
    """Reason codes the public may see; the free-text reason stays with the issuer and the admin."""

    issued_in_error = "issued_in_error"
    fraud = "fraud"  # obtained by deception (e.g. falsified evaluation material)
    disciplinary = "disciplinary"
    holder_request = "holder_request"
    body_withdrawn = "body_withdrawn"  # the evaluation body's filing was withdrawn
    other = "other"


class StatusChange(StrictInput):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Revocation(StrictInput):
    reason_code: RevocationReason
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class CertificateEventPublic(BaseModel):
    event: str
    reason_code: str | None
    reason: str | None
    actor: str
    at: datetime


class Correction(StrictInput):
    """The fields to correct; anything not given is carried over from the certificate being corrected."""

    reason: Annotated[str, Field(min_length=1, max_length=500)]
    holder_name: Text64 | None = None
    catalogue_code: Code | None = None
    level: LevelCode | None = None
    awarded_on: date | None = None
    valid_until: date | None = None
    evaluation_batch: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w\-./ ]+$")] | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Correction:
        if not (self.model_fields_set - {"reason"}):
            raise FieldValueError("reason", "a correction must change at least one field")
        return self


class VerifyByNumber(StrictInput):
    number: Annotated[str, Field(min_length=1, max_length=32)]
    holder_name: Text64
