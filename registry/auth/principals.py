"""The authenticated caller of one request, and the one check of its role and scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from registry.audit.service import Actor
from registry.auth.scopes import Role, Scope
from registry.errors import Forbidden
from registry.i18n import _, word


@dataclass(frozen=True, slots=True)
class HolderSessionId:
    """A holder token's ``jti`` and expiry: what signing out keeps, for as long as the token would be good."""

    jti: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API client (admin, evaluation body, partner agency) or a signed-in holder."""

    client_id: str
    role: Role
    scopes: frozenset[str]
    issuer_id: int | None
    issuer_code: str | None
    region: str | None
    holder_index: str | None = None  # holder sessions only: the holder's blind index
    session: HolderSessionId | None = None  # holder sessions only: which token, to end it at sign-out
    # Holder sessions opened with a claim code only: the body that issued it, the one whose certificates they see
    # (a session through the identity provider proved the identity and sees every body's: None).
    holder_issuer_id: int | None = None

    @property
    def actor(self) -> Actor:
        if self.holder_index is not None:
            return Actor(id=f"holder:{self.holder_index[:16]}")
        return Actor(id=f"client:{self.client_id}")


def require(principal: Principal, *, scope: Scope, roles: frozenset[Role] | None = None) -> Principal:
    if roles is not None and principal.role not in roles:
        raise Forbidden(_("this endpoint is not for {role} clients", role=word(principal.role)))
    if scope not in principal.scopes:
        raise Forbidden(_("the access token lacks the {scope} scope", scope=scope))
    return principal
