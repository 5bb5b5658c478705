"""Certificate request and response shapes for evaluation bodies, holders and the bureau."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, field_validator, model_validator

from registry.catalogue.models import CertType
from registry.catalogue.schemas import LevelCode
from registry.certificates.models import Status
from registry.errors import FieldValueError
from registry.holders.identity import IdType
from registry.holders.schemas import checked_id_number
from registry.schemas import Code, PersonName, StrictInput, Text500

# A label the body gives its evaluation round; printable, so it can be typed and searched for.
EvaluationBatch = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w\-./ ]+$")]


class HolderIn(StrictInput):
    name: PersonName
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
    evaluation_batch: EvaluationBatch | None = None


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


class RevocationReason(StrEnum):
    """Reason codes the public may see; the free-text reason stays with the issuer and the admin."""

    issued_in_error = "issued_in_error"
    fraud = "fraud"  # obtained by deception (e.g. falsified evaluation material)
    disciplinary = "disciplinary"
    holder_request = "holder_request"
    body_withdrawn = "body_withdrawn"  # the evaluation body's filing was withdrawn
    other = "other"


class StatusChange(StrictInput):
    reason: Text500


class Revocation(StrictInput):
    reason: Text500
    reason_code: RevocationReason = Field(
        default=RevocationReason.other,
        description="The public reason code shown to verifiers; `other` when not given.",
    )


class CertificateEventPublic(BaseModel):
    event: str
    reason_code: str | None
    reason: str | None
    actor: str
    at: datetime


class Correction(StrictInput):
    """The fields to correct; anything not given is carried over from the certificate being corrected."""

    reason: Text500
    holder_name: PersonName | None = None
    catalogue_code: Code | None = None
    level: LevelCode | None = None
    awarded_on: date | None = None
    valid_until: date | None = None
    evaluation_batch: EvaluationBatch | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Correction:
        if not (self.model_fields_set - {"reason"}):
            raise FieldValueError("reason", "a correction must change at least one field")
        for name in _REQUIRED_ON_A_CERTIFICATE & self.model_fields_set:
            if getattr(self, name) is None:  # valid_until and evaluation_batch may be cleared; these may not
                raise FieldValueError(name, "cannot be removed from a certificate; give the corrected value")
        return self


_REQUIRED_ON_A_CERTIFICATE = frozenset({"holder_name", "catalogue_code", "level", "awarded_on"})
