"""Token response shapes."""

from __future__ import annotations

from pydantic import BaseModel


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 — the RFC 6749 token type, not a secret
    expires_in: int
    scope: str
