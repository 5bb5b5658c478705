"""Evaluation-body request and response shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, ValidationInfo, field_validator

from registry.catalogue.models import CertType
from registry.catalogue.schemas import LevelCode
from registry.config import Region
from registry.errors import InvalidCreditCode
from registry.issuers.credit_code import normalize_credit_code
from registry.issuers.models import IssuerKind, IssuerStatus
from registry.keys.models import SigningKey
from registry.schemas import Code, StrictInput, Text128


class FiledScopeIn(StrictInput):
    cert_type: CertType
    catalogue_codes: Annotated[list[Code], Field(min_length=1, max_length=500)]
    levels: Annotated[list[LevelCode], Field(min_length=1, max_length=8)]
    valid_from: date
    valid_until: date | None = None

    @field_validator("valid_until")
    @classmethod
    def _dates_in_order(cls, value: date | None, info: ValidationInfo) -> date | None:
        valid_from = info.data.get("valid_from")
        if value is not None and valid_from is not None and value < valid_from:
            raise ValueError("is before valid_from")
        return value


class IssuerCreate(StrictInput):
    code: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{2,31}$")]
    name: Text128
    credit_code: Annotated[str, Field(min_length=18, max_length=18)]
    kind: IssuerKind
    region: Region
    scopes: Annotated[list[FiledScopeIn], Field(min_length=1, max_length=50)]

    @field_validator("credit_code", mode="before")
    @classmethod
    def _credit_code_is_valid(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return normalize_credit_code(value)
        except InvalidCreditCode as exc:
            raise ValueError(str(exc)) from None


class KeyCompromise(StrictInput):
    compromised_from: AwareDatetime


class KeyPublic(BaseModel):
    kid: str
    status: str
    valid_from: datetime
    retired_at: datetime | None
    compromised_from: datetime | None

    @classmethod
    def of(cls, key: SigningKey) -> KeyPublic:
        return cls(
            kid=key.kid,
            status=key.status,
            valid_from=key.valid_from,
            retired_at=key.retired_at,
            compromised_from=key.compromised_from,
        )


class FiledScopePublic(BaseModel):
    cert_type: CertType
    catalogue_codes: list[str]
    levels: list[str]
    valid_from: date
    valid_until: date | None


class IssuerPublic(BaseModel):
    code: str
    name: str
    credit_code: str
    kind: IssuerKind
    region: Region
    status: IssuerStatus
    scopes: list[FiledScopePublic]
    signing_keys: list[str]
