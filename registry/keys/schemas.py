"""What the bureau is told about the registry's own token key after rotating it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from registry.keys.models import SigningKey
from registry.keys.service import to_jwk


class RetiredTokenKey(BaseModel):
    kid: str
    retired_at: datetime
    published_until: datetime = Field(
        description="until then the tokens it signed are honoured and the JWKS lists it as a token key; from then it "
        "is listed for good with key_use checkpoint, for the checkpoints it signed, and verifies no token"
    )


class TokenKeyRotated(BaseModel):
    """The new key (public parts only, as the JWKS lists it) and the keys it replaced."""

    kid: str
    valid_from: datetime
    jwk: dict[str, Any]
    retired: list[RetiredTokenKey]

    @classmethod
    def of(cls, key: SigningKey, retired: list[SigningKey], *, afterlife: timedelta) -> TokenKeyRotated:
        return cls(
            kid=key.kid,
            valid_from=key.valid_from,
            jwk=to_jwk(key),
            retired=[
                RetiredTokenKey(kid=old.kid, retired_at=old.retired_at, published_until=old.retired_at + afterlife)
                for old in retired
                if old.retired_at is not None
            ],
        )
