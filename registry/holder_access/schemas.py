"""Holder request and response shapes: sign-in, own certificates, share links, who looked."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from registry.auth.claim_codes import claim_code_problem
from registry.certificates.models import Status
from registry.certificates.schemas import CertificatePublic
from registry.errors import FieldValueError
from registry.holders.identity import IdType
from registry.holders.schemas import checked_id_number
from registry.i18n import _
from registry.recognition.schemas import Purpose, PurposeText
from registry.schemas import StrictInput
from registry.verification.schemas import VerificationResult

DEFAULT_SHARE_DAYS = 30
MAX_SHARE_DAYS = 365


class HolderSessionCreate(StrictInput):
    id_type: IdType
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    claim_code: Annotated[str, Field(min_length=12, max_length=20)]

    _id_number_is_valid = field_validator("id_number")(checked_id_number)

    @field_validator("claim_code")
    @classmethod
    def _claim_code_is_one(cls, value: str) -> str:
        problem = claim_code_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class ExternalSessionCreate(StrictInput):
    id_token: Annotated[str, Field(min_length=20, max_length=8192)]


class HolderSession(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 — the RFC 6749 token type
    expires_in: int
    holder_name: str
    id_masked: str
    certificates_of: str | None = Field(
        default=None,
        description="A session opened with a claim code reads only the certificates of the evaluation body that "
        "issued the code: that body's code. Null for a session through the identity provider, which reads every "
        "body's. Certificates from other bodies appear after signing in with that body's claim code.",
    )
    notice: str | None = Field(
        default=None,
        description="When `certificates_of` is set: why other bodies' certificates are not listed, and how to see "
        "them, in the reader's language (Accept-Language, ?lang=).",
    )


class ShareLinkCreate(StrictInput):
    number: Annotated[str, Field(min_length=1, max_length=32)]
    purpose: Purpose
    purpose_text: PurposeText | None = Field(default=None, description="required when purpose is other")
    # A JSON number, whole: true, "2" and 1.0 were taken as days before (pydantic's lax mode).
    expires_in_days: Annotated[int, Field(ge=1, le=MAX_SHARE_DAYS, strict=True)] = DEFAULT_SHARE_DAYS

    @model_validator(mode="after")
    def _other_says_what(self) -> ShareLinkCreate:
        if self.purpose is Purpose.other and self.purpose_text is None:
            raise FieldValueError("purpose_text", _("say what the link is for when the purpose is other"))
        return self


class ShareLinkPublic(BaseModel):
    id: uuid.UUID
    number: str
    purpose: Purpose
    purpose_text: str | None
    created_at: datetime
    expires_at: datetime
    withdrawn_at: datetime | None
    state: Literal["active", "expired", "withdrawn"]


class ShareLinkCreated(ShareLinkPublic):
    url: str  # shown once: only a hash of its token is stored


class HolderCertificate(CertificatePublic):
    """One of the holder's certificates: as its body records it (``status``), and as anybody verifying it today is
    told (``result`` onwards: the answer of ``GET /v1/verify/{qr_token}`` at this moment)."""

    status: Status = Field(
        description="The stored lifecycle status, as the issuing body recorded it. It stays `active` past "
        "`valid_until` and whatever the registry can vouch for: `result` says what a verifier is told."
    )
    result: VerificationResult = Field(
        description="What public verification answers for this certificate now: valid, expired, suspended, revoked, "
        "superseded, or unknown when the registry cannot vouch for it (a compromised signing key, for one)."
    )
    reason: str | None = Field(default=None, description="Verification's `reason`: why the result is not 'valid'.")
    status_changed_on: date | None = Field(
        default=None, description="Verification's `status_changed_on`: when the certificate stopped being valid."
    )
    status_reason: str | None = Field(
        default=None, description="Verification's `status_reason`: the public reason code of that change."
    )
    result_text: str = Field(description="What `result` means, in the reader's language (Accept-Language, ?lang=).")
    reason_text: str | None = Field(default=None, description="Why, in the reader's language, where it says more.")
