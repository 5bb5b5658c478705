"""Discovering the registry's keys: the JWKS of every public key, the registry's token keys and every evaluation
body's certificate-signing keys, current and retired, with their validity."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.issuers.models import Issuer
from registry.keys import service as keys
from registry.keys.models import KeyUse, SigningKey


async def jwks(session: AsyncSession) -> dict[str, Any]:
    rows = (
        await session.execute(
            select(SigningKey, col(Issuer.code))
            .outerjoin(Issuer, col(Issuer.id) == col(SigningKey.issuer_id))
            # PDF-signing keys are X.509 certificates (the root is served as PEM), not JWS keys.
            .where(col(SigningKey.use).in_((KeyUse.access_token, KeyUse.certificate)))
            .order_by(col(SigningKey.id))
        )
    ).all()
    return {"keys": [keys.to_jwk(key, issuer_code=code) for key, code in rows]}
