"""API-client request and response shapes. A secret is shown once, when it is made; nothing else carries it or its
hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from registry.auth.scopes import Role
from registry.config import Region
from registry.errors import FieldValueError
from registry.i18n import _
from registry.schemas import StrictInput, Text128, Text500

IssuerCode = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{2,31}$")]


class ClientCreate(StrictInput):
    role: Role
    name: Text128
    issuer_code: IssuerCode | None = None
    region: Region | None = None

    @model_validator(mode="after")
    def _role_needs_its_binding(self) -> ClientCreate:
        if self.role is Role.holder:
            raise FieldValueError("role", _("holders sign in with a claim code; they are not API clients"))
        if self.role is Role.issuer and self.issuer_code is None:
            raise FieldValueError("issuer_code", _("issuer_code is required for an issuer client"))
        if self.role is not Role.issuer and self.issuer_code is not None:
            raise FieldValueError("issuer_code", _("issuer_code is only for issuer clients"))
        if self.role is Role.partner and self.region is None:
            raise FieldValueError("region", _("region is required for a partner client"))
        return self


class ClientRequest(ClientCreate):
    """``POST /v1/clients``: an evaluation body's or a partner agency's client. An admin client holds every admin
    scope, so it is made only on the server's machine (``registry clients create --role admin``): through the API a
    token narrowed to ``clients:write`` would otherwise mint itself the rest."""

    role: Role = Field(description="`issuer` or `partner`; admin clients are made with `registry clients create`")

    @model_validator(mode="after")
    def _not_an_admin(self) -> ClientRequest:
        if self.role is Role.admin:
            raise FieldValueError(
                "role",
                _("admin clients are made on the server's machine (registry clients create --role admin), not here"),
            )
        return self


class ClientCreated(BaseModel):
    client_id: str
    client_secret: str
    role: Role
    name: str
    issuer_code: str | None
    region: Region | None
    scopes: list[str]


class ClientPublic(BaseModel):
    """What the bureau sees of a client: never its secret, nor the hash of one."""

    client_id: str
    role: Role
    name: str
    issuer_code: str | None
    region: Region | None
    scopes: list[str]
    active: bool
    created_at: datetime
    previous_secret_valid_until: datetime | None = Field(
        description="after a secret rotation: until when the previous secret still opens tokens"
    )


class ClientFilter(BaseModel):
    """``GET /v1/clients``'s query: every filter given must hold; clients come oldest first."""

    role: Role | None = None
    issuer_code: IssuerCode | None = None
    region: Region | None = None
    active: bool | None = None
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(
        default=None, max_length=256, description="`next_cursor` of the previous page, with the same filters"
    )


class ClientPage(BaseModel):
    data: list[ClientPublic]
    next_cursor: str | None


class ClientStatusChange(StrictInput):
    reason: Text500


class ClientSecretRotation(StrictInput):
    """How a secret is rotated; the body is optional (``{}`` or none: an ordinary rotation, with the grace)."""

    grace: bool = Field(
        default=True,
        description=(
            "true (the default): the previous secret still opens tokens for REGISTRY_CLIENT_SECRET_GRACE_SECONDS, "
            "while the client's configuration changes over; false: the previous secret, and every token it opened, "
            "end at once (a leaked secret; the same as `registry clients rotate-secret --no-grace`)"
        ),
    )


class ClientSecretRotated(BaseModel):
    """The new secret, shown this once."""

    client_id: str
    client_secret: str
    previous_secret_valid_until: datetime | None = Field(
        description="the previous secret still opens tokens until then; null: it no longer does"
    )
