"""Certificate request and response shapes for evaluation bodies, holders and the bureau."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from registry.catalogue.models import CertType
from registry.catalogue.schemas import LevelCode
from registry.certificates.models import Status
from registry.errors import FieldValueError, InvalidIdentityNumber
from registry.holders.identity import IdType, normalize_id_number
from registry.holders.schemas import checked_id_number
from registry.i18n import _, message_of
from registry.schemas import (
    Code,
    Day,
    HolderName,
    PersonName,
    StrictInput,
    Text256,
    Text500,
    one_line,
    without_identity_number,
)

# A label the body gives its evaluation round; printable, so it can be typed and searched for.
# White space runs become one space and ends are trimmed ("   " is empty; " 2026  X " is "2026 X"), so a round is
# stored, searched and printed the same however it was typed.
# Signed with the certificate and shown to the body, the bureau and the export: never an identity number.
EvaluationBatch = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[\w\-./ ]+$"),
    BeforeValidator(one_line),
    AfterValidator(without_identity_number),
]
# A label asked for in a search, kept as typed: certificates issued before labels were collapsed (4 December 2026)
# store theirs as given, and the label is signed, so it is never rewritten; a search matches both forms.
EvaluationBatchAsGiven = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w\-./ ]+$")]


class HolderIn(StrictInput):
    name: HolderName
    id_type: IdType
    id_number: Annotated[str, Field(min_length=1, max_length=32)]

    _id_number_is_valid = field_validator("id_number")(checked_id_number)


class CertificateIssue(StrictInput):
    cert_type: CertType
    catalogue_code: Code
    level: LevelCode
    holder: HolderIn
    awarded_on: Day
    valid_until: Day | None = None
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


class CertificateFilters(BaseModel):
    """``GET /v1/certificates`` and its CSV export: every filter given must hold. The holder is found exactly (name
    and identity document, by the document's blind index), never by a partial name."""

    status: Status | None = Field(default=None, description="only certificates in this status")
    catalogue_code: Code | None = Field(default=None, description="only this catalogue entry, e.g. `ENG-AI`")
    level: LevelCode | None = Field(default=None, description="only this level, e.g. `associate_senior`")
    evaluation_batch: EvaluationBatchAsGiven | None = Field(
        default=None,
        description="only this evaluation round, as it was given at issuance (white space runs count as one space)",
    )
    awarded_from: Day | None = Field(default=None, description="awarded on or after this day (YYYY-MM-DD)")
    awarded_to: Day | None = Field(default=None, description="awarded on or before this day (YYYY-MM-DD)")
    holder_name: PersonName | None = Field(
        default=None, description="the holder's exact name; with `holder_id_type` and `holder_id_number`"
    )
    holder_id_type: IdType | None = Field(default=None, description="the holder's identity document type")
    holder_id_number: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None, description="the holder's identity document number (checked like at issuance, never stored)"
    )
    issuer_code: Code | None = Field(
        default=None,
        description="admins: only this evaluation body's certificates. An evaluation body may give only its own "
        "code (another body's code: 403)",
    )
    purpose: Text256 | None = Field(
        default=None,
        description="admins: required; why the bureau reads these certificates, recorded in the audit log. "
        "Ignored for an evaluation body reading its own",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CertificateFilters:
        if self.awarded_from and self.awarded_to and self.awarded_from > self.awarded_to:
            raise FieldValueError("awarded_from", _("must not be after awarded_to"))
        holder = {
            "holder_name": self.holder_name,
            "holder_id_type": self.holder_id_type,
            "holder_id_number": self.holder_id_number,
        }
        missing = [name for name, value in holder.items() if value is None]
        if 0 < len(missing) < len(holder):  # a name or a number alone would be a search over people
            raise FieldValueError(
                missing[0], _("give holder_name, holder_id_type and holder_id_number together, or none of them")
            )
        if self.holder_id_type is not None and self.holder_id_number is not None:
            try:
                self.holder_id_number = normalize_id_number(self.holder_id_type, self.holder_id_number)
            except InvalidIdentityNumber as exc:
                raise FieldValueError("holder_id_number", message_of(exc)) from None
        return self


class CertificateListQuery(CertificateFilters):
    """A page of the selection: newest first; follow ``next_cursor`` with the same filters."""

    limit: int = Field(default=50, ge=1, le=200, description="certificates per page")
    cursor: str | None = Field(
        default=None, max_length=256, description="`next_cursor` of the previous page, with the same filters"
    )


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


# Said for a correction that gives no field (here) and for one whose every value is the one on record (lifecycle).
NOTHING_CORRECTED = _("a correction must change at least one field")


class Correction(StrictInput):
    """The fields to correct; anything not given is carried over from the certificate being corrected."""

    reason: Text500
    holder_name: HolderName | None = None
    catalogue_code: Code | None = None
    level: LevelCode | None = None
    awarded_on: Day | None = None
    valid_until: Day | None = None
    evaluation_batch: EvaluationBatch | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Correction:
        if not (self.model_fields_set - {"reason"}):
            raise FieldValueError("reason", NOTHING_CORRECTED)
        for name in _REQUIRED_ON_A_CERTIFICATE & self.model_fields_set:
            if getattr(self, name) is None:  # valid_until and evaluation_batch may be cleared; these may not
                raise FieldValueError(name, _("cannot be removed from a certificate; give the corrected value"))
        return self


_REQUIRED_ON_A_CERTIFICATE = frozenset({"holder_name", "catalogue_code", "level", "awarded_on"})
