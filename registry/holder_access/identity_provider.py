"""An external identity provider's tokens as a way for holders to sign in (optional).

Configured with its JWKS URL, issuer, audience and the claim that carries the identity number; its keys come through
``registry.auth.jwks.RemoteKeySet`` (that URL only, cached, re-fetched once when an unknown kid appears).
"""

from __future__ import annotations

import httpx
import jwt

from registry.auth.jwks import MIN_REFETCH_SECONDS, RemoteKeySet
from registry.auth.jwt_words import jwt_refusal
from registry.auth.numeric_dates import require_numeric_dates
from registry.config import Settings
from registry.errors import InvalidIdentityNumber, KeySetUnavailable, ServiceUnavailable, Unauthenticated
from registry.holders.identity import IdType, normalize_id_number
from registry.i18n import _

ALGORITHMS = ["EdDSA", "ES256"]


class IdentityProvider:
    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        id_claim: str,
        id_type_claim: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.id_claim = id_claim
        self.id_type_claim = id_type_claim
        self.keys = RemoteKeySet(jwks_url, transport=transport)

    @classmethod
    def configured(cls, settings: Settings) -> IdentityProvider | None:
        """The provider of ``REGISTRY_HOLDER_IDP_*``, or None when it is not (fully) configured."""
        if not (settings.holder_idp_jwks_url and settings.holder_idp_issuer and settings.holder_idp_audience):
            return None
        return cls(
            jwks_url=settings.holder_idp_jwks_url,
            issuer=settings.holder_idp_issuer,
            audience=settings.holder_idp_audience,
            id_claim=settings.holder_idp_id_claim,
            id_type_claim=settings.holder_idp_id_type_claim,
        )

    async def identity(self, token: str) -> tuple[IdType, str]:
        """(document type, normalised number) from a verified provider token, or 401."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated(_("the identity token is malformed")) from None
        kid = header.get("kid")
        if header.get("alg") not in ALGORITHMS or not isinstance(kid, str):
            raise Unauthenticated(_("the identity token's algorithm or key id is not accepted"))
        try:
            key = await self.keys.key(kid)
        except KeySetUnavailable:
            # The provider is out of reach, not the holder's token at fault: try again soon, as the key set is.
            raise ServiceUnavailable(
                _("the identity provider's keys cannot be fetched; try again shortly"),
                retry_after=int(MIN_REFETCH_SECONDS),
            ) from None
        if key is None:
            raise Unauthenticated(_("the identity token's key is not published by the provider"))
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=5,
                options={"require": ["iss", "aud", "exp", "iat", self.id_claim]},
            )
            require_numeric_dates(claims)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(_("the identity token is not valid: {reason}", reason=jwt_refusal(exc))) from None
        raw_type = claims.get(self.id_type_claim) if self.id_type_claim else IdType.RESIDENT_ID.value
        try:
            id_type = IdType(str(raw_type))
            return id_type, normalize_id_number(id_type, str(claims[self.id_claim]))
        except (ValueError, InvalidIdentityNumber):
            raise Unauthenticated(_("the identity token does not carry a valid identity number")) from None

    async def close(self) -> None:
        await self.keys.close()
