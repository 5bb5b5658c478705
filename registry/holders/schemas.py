"""Holder session request and response shapes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from registry.holders.identity import IdType, InvalidIdentityNumber, normalize_id_number
from registry.schemas import StrictInput


class HolderSessionCreate(StrictInput):
    id_type: IdType
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    claim_code: Annotated[str, Field(min_length=12, max_length=20)]

    @field_validator("id_number")
    @classmethod
    def _id_number_is_valid(cls, value: str, info: ValidationInfo) -> str:
        id_type = info.data.get("id_type")
        if id_type is None:
            return value
        try:
            return normalize_id_number(id_type, value)
        except InvalidIdentityNumber as exc:
            raise ValueError(str(exc)) from None


class ExternalSessionCreate(StrictInput):
    id_token: Annotated[str, Field(min_length=20, max_length=8192)]


class HolderSession(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 — the RFC 6749 token type
    expires_in: int
    holder_name: str
    id_masked: str
