"""Evaluation-body request and response shapes."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator, model_validator

from registry.catalogue.models import CertType
from registry.catalogue.schemas import LevelCode, RegistryDay
from registry.config import Region
from registry.errors import FieldValueError, InvalidCreditCode
from registry.i18n import _, message_of
from registry.issuers.credit_code import normalize_credit_code
from registry.issuers.models import IssuerKind, IssuerStatus
from registry.keys.models import SigningKey
from registry.keys.signers import DEFAULT_ALGORITHM, SigningAlgorithm, algorithm
from registry.schemas import Code, Day, Moment, StrictInput, Text128, Text256, printed

# What an evaluation body's code can be; a page of bodies ends at one, so a cursor holding anything else is not ours.
BODY_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")


class FiledScopeIn(StrictInput):
    cert_type: CertType
    catalogue_codes: Annotated[list[Code], Field(min_length=1, max_length=500)]
    levels: Annotated[list[LevelCode], Field(min_length=1, max_length=8)]
    valid_from: RegistryDay
    valid_until: RegistryDay | None = None

    @field_validator("valid_until")
    @classmethod
    def _dates_in_order(cls, value: date | None, info: ValidationInfo) -> date | None:
        valid_from = info.data.get("valid_from")
        if value is not None and valid_from is not None and value < valid_from:
            raise ValueError(_("is before valid_from"))
        return value


class IssuerCreate(StrictInput):
    code: Annotated[str, Field(pattern=BODY_CODE.pattern)]
    name: Annotated[Text128, AfterValidator(printed)]  # on the PDF and around its seal
    credit_code: Annotated[str, Field(min_length=18, max_length=18)]
    kind: IssuerKind
    region: Region
    scopes: Annotated[list[FiledScopeIn], Field(min_length=1, max_length=50)]
    key_algorithm: SigningAlgorithm = Field(
        default=DEFAULT_ALGORITHM, description="its first certificate-signing key's algorithm: Ed25519 or ES256"
    )

    @field_validator("credit_code", mode="before")
    @classmethod
    def _credit_code_is_valid(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return normalize_credit_code(value)
        except InvalidCreditCode as exc:
            raise ValueError(message_of(exc)) from None


class ScopeAmendment(StrictInput):
    """A new version of a body's filing for one certificate type, in force from ``effective_from``: it replaces every
    version of that type in force on that day (their last day becomes the day before), whose content stays as filed.
    Empty ``catalogue_codes`` and ``levels`` end the filing for that type from ``effective_from``."""

    cert_type: CertType
    catalogue_codes: Annotated[list[Code], Field(max_length=500)]
    levels: Annotated[list[LevelCode], Field(max_length=8)]
    effective_from: Day = Field(description="the first day of the new version; after today (China Standard Time)")
    basis: Text256 = Field(description="the filing document the amendment rests on, e.g. 津人社备〔2026〕12号")

    @model_validator(mode="after")
    def _withdrawal_is_both_empty(self) -> ScopeAmendment:
        if bool(self.catalogue_codes) != bool(self.levels):
            field = "levels" if self.catalogue_codes else "catalogue_codes"
            raise FieldValueError(field, _("must be empty exactly when the other is (both empty end the filing)"))
        return self


class ScopeWithdrawal(StrictInput):
    """Withdraws a body's scheduled amendment (one not yet in force) of its filing for one certificate type: the
    version it added goes, and the versions it closed run on as they were filed. The latest amendment goes first."""

    cert_type: CertType
    effective_from: Day = Field(description="the first day of the scheduled amendment to withdraw")
    reason: Text256 = Field(description="why it is withdrawn, e.g. the bureau's decision withdrawing the filing")


class IssuerFilter(BaseModel):
    """``GET /v1/issuers``'s query: every filter given must hold; bodies come in code order."""

    kind: IssuerKind | None = None
    region: Region | None = None
    status: IssuerStatus | None = None
    catalogue_code: Code | None = Field(
        default=None, description="bodies with a filing for this entry in force today or scheduled"
    )
    credit_code: Annotated[str, Field(min_length=18, max_length=18)] | None = None
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(
        default=None, max_length=256, description="`next_cursor` of the previous page, with the same filters"
    )


class KeyCompromise(StrictInput):
    compromised_from: Moment


class KeyRotation(StrictInput):
    """``POST /v1/issuers/{code}/keys/rotate``'s optional body."""

    algorithm: SigningAlgorithm = Field(
        default=DEFAULT_ALGORITHM,
        description="the new key's algorithm: Ed25519 (RFC 9864), or ES256 (ECDSA P-256) for relying parties whose "
        "validators require it",
    )


class KeyPublic(BaseModel):
    kid: str
    status: str
    valid_from: datetime
    retired_at: datetime | None
    compromised_from: datetime | None
    algorithm: str = Field(default=DEFAULT_ALGORITHM.value, description="Ed25519 or ES256: the JWS alg it signs with")

    @classmethod
    def of(cls, key: SigningKey) -> KeyPublic:
        return cls(
            kid=key.kid,
            status=key.status,
            valid_from=key.valid_from,
            retired_at=key.retired_at,
            compromised_from=key.compromised_from,
            algorithm=algorithm(key.algorithm).name,
        )


class IssuerKeyPublic(BaseModel):
    """One of a body's certificate-signing keys as its issuer document binds it to the body: the key, its algorithm
    and the window in which its signatures count."""

    id: str = Field(description="the key's URL, the `kid` of credentials and status lists signed since keys have URLs")
    kid: str = Field(description="the short kid, in certificates' own signatures and older credentials")
    algorithm: str = Field(description="the JWS alg of its signatures: Ed25519 (older ones say EdDSA) or ES256")
    status: str
    valid_from: datetime
    valid_until: datetime | None = Field(description="when it was retired: it signs nothing after")
    compromised_from: datetime | None = Field(description="nothing it signed from then on counts")
    jwk: dict[str, Any] = Field(description="the public key (RFC 7517), as `GET {id}` serves it")


class FiledScopePublic(BaseModel):
    cert_type: CertType
    catalogue_codes: list[str]
    levels: list[str]
    valid_from: date
    valid_until: date | None
    basis: str | None = Field(default=None, description="the filing document of an amended version")


class IssuerPublic(BaseModel):
    code: str
    name: str
    credit_code: str
    kind: IssuerKind
    region: Region
    status: IssuerStatus
    scopes: list[FiledScopePublic]
    signing_keys: list[str]


class IssuerDocument(IssuerPublic):
    """``GET /v1/issuers/{code}``: the body as the public sees it, resolving its issuer identifier — the authoritative
    binding of its keys to it, with their validity."""

    id: str = Field(description="the body's issuer identifier: `iss` and `issuer.id` of its credentials")
    keys: list[IssuerKeyPublic] = Field(description="every certificate-signing key it has had, oldest first")


class IssuerPage(BaseModel):
    data: list[IssuerPublic]
    next_cursor: str | None
