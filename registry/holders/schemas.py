"""Holder session request and response shapes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from registry.holders.identity import IdType, InvalidIdentityNumber, normalize_id_number
from registry.schemas import StrictInput


def checked_id_number(value: str, info: ValidationInfo) -> str:
    """Field validator for ``id_number`` beside an ``id_type`` field: normalised, or a ValueError naming why."""
    id_type = info.data.get("id_type")
    if id_type is None:
        return value  # id_type already failed and is reported on its own
    try:
        return normalize_id_number(id_type, value)
    except InvalidIdentityNumber as exc:
        raise ValueError(str(exc)) from None


class HolderSessionCreate(StrictInput):
    id_type: IdType
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    claim_code: Annotated[str, Field(min_length=12, max_length=20)]

    _id_number_is_valid = field_validator("id_number")(checked_id_number)


class ExternalSessionCreate(StrictInput):
    id_token: Annotated[str, Field(min_length=20, max_length=8192)]


class HolderSession(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 — the RFC 6749 token type
    expires_in: int
    holder_name: str
    id_masked: str
