"""Holder sign-in request and response shapes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from registry.holders.identity import IdType
from registry.holders.schemas import checked_id_number
from registry.schemas import StrictInput


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
