"""API-client request and response shapes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from registry.auth.scopes import Role
from registry.config import Region
from registry.errors import FieldValueError
from registry.schemas import StrictInput, Text128


class ClientCreate(StrictInput):
    role: Role
    name: Text128
    issuer_code: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{2,31}$")] | None = None
    region: Region | None = None

    @model_validator(mode="after")
    def _role_needs_its_binding(self) -> ClientCreate:
        if self.role is Role.holder:
            raise FieldValueError("role", "holders sign in with a claim code; they are not API clients")
        if self.role is Role.issuer and self.issuer_code is None:
            raise FieldValueError("issuer_code", "issuer_code is required for an issuer client")
        if self.role is not Role.issuer and self.issuer_code is not None:
            raise FieldValueError("issuer_code", "issuer_code is only for issuer clients")
        if self.role is Role.partner and self.region is None:
            raise FieldValueError("region", "region is required for a partner client")
        return self


class ClientCreated(BaseModel):
    client_id: str
    client_secret: str
    role: Role
    name: str
    issuer_code: str | None
    region: Region | None
    scopes: list[str]
