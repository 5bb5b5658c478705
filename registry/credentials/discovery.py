"""Discovering the registry's issuers and keys: the JWKS of every public key, the registry's token keys and every
evaluation body's certificate-signing keys, current and retired, with their validity, for good. A retired token key is
trusted until the last token it signed has expired; from then the JWKS lists it with ``key_use: checkpoint``
(``keys.CHECKPOINT_KEY_USE``), status ``retired``: it still verifies the checkpoints it signed, which partners keep, and
nothing takes it for a token key (a peer node takes only ``access_token`` keys).

Each body's issuer identifier ``{base}/v1/issuers/{code}`` resolves to its issuer document, which binds its keys to it
with their algorithm and validity (the authoritative binding; the JWKS repeats it in its own members for verifiers
that read only the JWKS). Each key is published under its short kid (certificates' own signatures, credentials signed
before keys had URLs: ``alg`` as those say it, ``EdDSA`` for Ed25519) and under its URL ``{issuer}/keys/{kid}``, the
``kid`` of credentials and status lists signed since, which dereferences to it (``alg`` ``Ed25519`` or ``ES256``).
``/.well-known/jwt-vc-issuer`` metadata (SD-JWT VC) names each issuer's keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import clock
from registry.auth.tokens import token_key_afterlife
from registry.config import Settings
from registry.credentials.status_list import issuer_url
from registry.errors import NotFound, said_masked
from registry.i18n import _
from registry.issuers import service as issuers
from registry.issuers.models import Issuer
from registry.issuers.schemas import IssuerDocument, IssuerKeyPublic
from registry.keys import service as keys
from registry.keys.models import KeyUse, SigningKey
from registry.keys.signers import algorithm


async def jwks(session: AsyncSession, *, settings: Settings) -> dict[str, Any]:
    """Every published key: a body's under both its kids (short, and its URL)."""
    published, now = await _published(session), clock.now()
    return {"keys": [jwk for key, code in published for jwk in _jwks_of(key, code, settings=settings, now=now)]}


async def _published(
    session: AsyncSession, *, issuer_id: int | None = None, use: KeyUse | None = None
) -> list[tuple[SigningKey, str | None]]:
    """The keys the JWKS lists (all, or one body's, or one use's), each with its body's code, oldest first: every key
    that signs a JWS or a checkpoint, however long retired (what it signed may be checked for years)."""
    query = (
        select(SigningKey, col(Issuer.code))
        .outerjoin(Issuer, col(Issuer.id) == col(SigningKey.issuer_id))
        # PDF-signing keys are X.509 certificates (the root is served as PEM), not JWS keys.
        .where(col(SigningKey.use).in_((use,) if use else (KeyUse.access_token, KeyUse.certificate)))
        .order_by(col(SigningKey.id))
    )
    if issuer_id is not None:
        query = query.where(col(SigningKey.issuer_id) == issuer_id)
    return [(key, code) for key, code in (await session.execute(query)).all()]


def _jwks_of(key: SigningKey, code: str | None, *, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    if key.use != KeyUse.certificate or code is None:
        # An outlived token key is published as what it still is: the key of the checkpoints it signed.
        outlived = keys.outlived(key, afterlife=token_key_afterlife(settings), now=now)
        return [keys.to_jwk(key, issuer_code=code, outlived=outlived)]
    return [keys.to_jwk(key, issuer_code=code), key_jwk(key, code, base_url=settings.public_base_url)]


def key_jwk(key: SigningKey, code: str, *, base_url: str) -> dict[str, Any]:
    """A body's key under its URL: what ``GET /v1/issuers/{code}/keys/{kid}`` serves."""
    return keys.to_jwk(key, issuer_code=code, kid=keys.key_url(issuer_url(base_url, code), key.kid))


async def _issuer(session: AsyncSession, code: str) -> Issuer:
    issuer = await issuers.get_by_code(session, code)
    if issuer is None:
        raise NotFound(_("no evaluation body {code}", code=said_masked(code)))
    return issuer


async def issuer_document(session: AsyncSession, code: str, *, base_url: str) -> IssuerDocument:
    """What the body's issuer identifier resolves to: its public view, and every certificate key it has had."""
    issuer = await _issuer(session, code)
    public = await issuers.public_view(session, issuer)
    rows = await session.execute(
        select(SigningKey)
        .where(col(SigningKey.issuer_id) == issuer.id, col(SigningKey.use) == KeyUse.certificate)
        .order_by(col(SigningKey.id))
    )
    bound = []
    for key in rows.scalars():
        jwk = key_jwk(key, issuer.code, base_url=base_url)
        bound.append(
            IssuerKeyPublic(
                id=jwk["kid"],
                kid=key.kid,
                algorithm=algorithm(key.algorithm).name,
                status=key.status,
                valid_from=key.valid_from,
                valid_until=key.retired_at,
                compromised_from=key.compromised_from,
                jwk=jwk,
            )
        )
    return IssuerDocument(**public.model_dump(), id=issuer_url(base_url, issuer.code), keys=bound)


async def key_document(session: AsyncSession, code: str, kid: str, *, base_url: str) -> dict[str, Any]:
    """One of a body's certificate keys, as its URL ``{issuer}/keys/{kid}`` dereferences to: its JWK with validity."""
    issuer = await _issuer(session, code)
    key = await keys.get_by_kid(session, kid)
    if key is None or key.issuer_id != issuer.id or key.use != KeyUse.certificate:
        raise NotFound(_("no signing key {kid} for evaluation body {code}", kid=kid, code=said_masked(code)))
    return key_jwk(key, issuer.code, base_url=base_url)


async def registry_metadata(session: AsyncSession, *, settings: Settings) -> dict[str, Any]:
    """``/.well-known/jwt-vc-issuer``: the registry itself as an issuer (of its tokens and signed statements, its
    checkpoints among them: an outlived token key is listed as their key, as in the JWKS)."""
    published, now = await _published(session, use=KeyUse.access_token), clock.now()
    jwks = [jwk for key, code in published for jwk in _jwks_of(key, code, settings=settings, now=now)]
    return {"issuer": settings.public_base_url, "jwks": {"keys": jwks}}


async def issuer_metadata(session: AsyncSession, code: str, *, settings: Settings) -> dict[str, Any]:
    """``/.well-known/jwt-vc-issuer/v1/issuers/{code}`` (and ``…/issuers/{code}``): SD-JWT VC issuer metadata of a
    body, its keys inline (``jwks``; the registry-wide JWKS holds every body's)."""
    issuer = await _issuer(session, code)
    published, now = await _published(session, issuer_id=issuer.id, use=KeyUse.certificate), clock.now()
    return {
        "issuer": issuer_url(settings.public_base_url, issuer.code),
        "jwks": {"keys": [jwk for key, code in published for jwk in _jwks_of(key, code, settings=settings, now=now)]},
    }
