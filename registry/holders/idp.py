"""An external identity provider's tokens as a way for holders to sign in (optional).

Configured with its JWKS URL, issuer, audience and the claim that carries the resident ID number. Keys are fetched
from that URL only (never from token headers), cached, and re-fetched once when an unknown kid appears.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt

from registry.errors import Unauthenticated
from registry.holders.identity import IdType, InvalidIdentityNumber, normalize_id_number

ALGORITHMS = ["EdDSA", "ES256"]
JWKS_CACHE_SECONDS = 300.0


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
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.id_claim = id_claim
        self.id_type_claim = id_type_claim
        self._client = httpx.AsyncClient(transport=transport, timeout=5.0, follow_redirects=False)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = -1e9

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        stale = time.monotonic() - self._fetched > JWKS_CACHE_SECONDS
        if stale or kid not in self._keys:
            try:
                response = await self._client.get(self.jwks_url)
                response.raise_for_status()
                document: dict[str, Any] = response.json()
            except (httpx.HTTPError, ValueError):
                raise Unauthenticated("the identity provider's keys cannot be fetched") from None
            keys: dict[str, jwt.PyJWK] = {}
            for item in document.get("keys", []):
                try:
                    if isinstance(item, dict) and isinstance(item.get("kid"), str):
                        keys[item["kid"]] = jwt.PyJWK(item)
                except jwt.PyJWTError:
                    continue  # a key we cannot use (other type, unsupported curve) just does not count
            self._keys, self._fetched = keys, time.monotonic()
        return self._keys.get(kid)

    async def identity(self, token: str) -> tuple[IdType, str]:
        """(document type, normalised number) from a verified provider token, or 401."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the identity token is malformed") from None
        kid = header.get("kid")
        if header.get("alg") not in ALGORITHMS or not isinstance(kid, str):
            raise Unauthenticated("the identity token's algorithm or key id is not accepted")
        key = await self._key(kid)
        if key is None:
            raise Unauthenticated("the identity token's key is not published by the provider")
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
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the identity token is not valid: {exc}") from None
        raw_type = claims.get(self.id_type_claim) if self.id_type_claim else IdType.RESIDENT_ID.value
        try:
            id_type = IdType(str(raw_type))
            return id_type, normalize_id_number(id_type, str(claims[self.id_claim]))
        except (ValueError, InvalidIdentityNumber):
            raise Unauthenticated("the identity token does not carry a valid identity number") from None

    async def close(self) -> None:
        await self._client.aclose()
