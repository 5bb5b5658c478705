"""An external identity provider's tokens as a way for holders to sign in (optional).

Configured with its JWKS URL, issuer, audience and the claim that carries the identity number; its keys come through
``registry.auth.jwks.RemoteKeySet`` (that URL only, cached, re-fetched once when an unknown kid appears). A provider
out of reach (or answering with no key set) is a 503 to try again; a key set read whose keys under the token's kid are
all unusable, or none, is the token's 401, saying why — it does not resolve by trying again.

Only an OpenID Connect ID token issued to this registry signs a holder in (OIDC Core 3.1.3.7, RFC 8725): signed with
the published key of its kid in that key's own algorithm (EdDSA, ES256, or RS256 or PS256 over an RSA key of at least
2048 bits; never none or HMAC: ``_signs_with``), ``aud`` naming this registry and, when it names several parties or
``azp`` is present, ``azp`` naming it too (a token the provider issued to another relying party that merely lists this
one must not sign in here); ``exp`` and ``iat`` present, ``nbf`` and ``iat`` not in the future (5 s of leeway); a
``typ`` header, when set, ``JWT`` (RFC 7515 4.1.9: any case, ``application/`` optional) — an access token
(``at+jwt``), a logout token (``logout+jwt``, or untyped with ``events``) or any other kind is refused; the identity
number (and its type) a JSON string, never ``str()`` of whatever the claim holds.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from registry.auth.jwks import MIN_REFETCH_SECONDS, RemoteKeySet, Unusable
from registry.auth.jwt_words import jwt_refusal
from registry.auth.numeric_dates import require_numeric_dates
from registry.config import Settings
from registry.errors import InvalidIdentityNumber, KeySetUnavailable, ServiceUnavailable, Unauthenticated
from registry.holders.identity import IdType, normalize_id_number
from registry.i18n import Listing, Message, _

# What a provider may sign an ID token with (RFC 7518 3), each with the type of key it is checked with: most public
# providers sign with RS256, some with PS256. Never none, nor HMAC: the published key must never be a shared secret.
_KEY_TYPES = {"EdDSA": "OKP", "ES256": "EC", "RS256": "RSA", "PS256": "RSA"}
ALGORITHMS = list(_KEY_TYPES)
# NIST SP 800-131A: an RSA key shorter than this is refused whatever the token; a provider with one must rotate it.
MIN_RSA_BITS = 2048
# Nor longer than this, nor with an even modulus or an exponent of 2^31 or more (as Go's crypto/rsa; ``cryptography``
# refuses an even one): no provider signs with such a key, and each sign-in would pay for it (a huge exponent costs a
# modular exponentiation in full).
MAX_RSA_BITS = 8192
_MAX_RSA_EXPONENT = (1 << 31) - 1
_NOT_ITS_ALGORITHM = _("the identity token's algorithm or key id is not accepted")
# RFC 7515 4.1.9: typ is a media type, compared without regard to case, its "application/" prefix optional.
_ID_TOKEN_TYPES = frozenset({"jwt", "application/jwt"})
_NOT_AN_ID_TOKEN = _(
    "its typ header or its claims say it is not an ID token (an access or logout token, say): sign in with the ID "
    "token the provider issued for this service"
)
# Why the provider's keys under the token's kid check no signature (``registry.auth.jwks.Unusable``).
_UNUSABLE: dict[Unusable, Message] = {
    "encryption": _("it is published for encryption only"),
    "other-use": _('its "use" is not "sig"'),
    "no-verify": _('its "key_ops" leave out "verify"'),
    "kty": _('its "kty" is not a key type as RFC 7518 writes one (RSA, EC, OKP)'),
    "alg": _('its "alg" is not one algorithm name as RFC 7518 writes it (RS256, PS256, ES256, EdDSA)'),
    "key": _("its members make no valid public key (an RSA exponent of 1 or 2, say)"),
}


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
        # A set read but of no usable key is the token's 401, not a fetch that failed (``_key``).
        self.keys = RemoteKeySet(jwks_url, transport=transport, empty_fails=False)

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
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS or not isinstance(kid, str):  # asks nothing of the provider for HS256 or none
            raise Unauthenticated(_NOT_ITS_ALGORITHM)
        key = await self._key(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=5,
                options={"require": ["iss", "aud", "exp", "iat", self.id_claim], "verify_nbf": True},
            )
            require_numeric_dates(claims)
            _require_issued_to(claims, self.audience)
        except jwt.PyJWTError as exc:
            raise _refused(jwt_refusal(exc)) from None
        if not _is_id_token(header, claims):
            raise _refused(_NOT_AN_ID_TOKEN)
        return self._identity_of(claims)

    async def _key(self, kid: str, alg: str) -> Any:
        """The provider's published key of ``kid``, to check a token signed with ``alg``: 401 when it publishes no such
        key, or only keys unusable to check signatures (why, said), when ``alg`` is not the key's own (``_signs_with``)
        or the key proves nothing (``_untrustworthy``); 503 when its keys are out of reach."""
        try:
            published = await self.keys.published(kid)
        except KeySetUnavailable:
            # The provider is out of reach, not the holder's token at fault: try again soon, as the key set is.
            raise ServiceUnavailable(
                _("the identity provider's keys cannot be fetched; try again shortly"),
                retry_after=int(MIN_REFETCH_SECONDS),
            ) from None
        if not published:
            raise Unauthenticated(_unpublished(self.keys.unusable(kid)))
        # Keys of different types may share a kid (RFC 7517 4.5): the one whose own algorithm ``alg`` is checks it.
        jwk, key = next(((jwk, key) for jwk, key in published if _signs_with(jwk, key, alg)), published[0])
        if not _signs_with(jwk, key, alg):
            raise Unauthenticated(_NOT_ITS_ALGORITHM)
        if (why := _untrustworthy(jwk, key)) is not None:
            raise Unauthenticated(why)
        return key.key

    def _identity_of(self, claims: dict[str, Any]) -> tuple[IdType, str]:
        """The claims' document type and number, each a JSON string: ``str()`` of a list or a number is no identity."""
        raw_type = claims.get(self.id_type_claim) if self.id_type_claim else IdType.RESIDENT_ID.value
        raw_number = claims[self.id_claim]
        try:
            if not isinstance(raw_type, str) or not isinstance(raw_number, str):
                raise ValueError("not a JSON string")
            id_type = IdType(raw_type)
            return id_type, normalize_id_number(id_type, raw_number)
        except (ValueError, InvalidIdentityNumber):
            raise Unauthenticated(_("the identity token does not carry a valid identity number")) from None

    async def close(self) -> None:
        await self.keys.close()


def _refused(reason: Message) -> Unauthenticated:
    return Unauthenticated(_("the identity token is not valid: {reason}", reason=reason))


def _unpublished(unusable: list[Unusable]) -> Message:
    """No key of the token's kid checks signatures: none published, or each unusable (every reason said once)."""
    if not unusable:
        return _("the identity token's key is not published by the provider")
    why = Listing(_UNUSABLE[reason] for reason in dict.fromkeys(unusable))
    return _("the identity token's key is not published by the provider as a usable signing key: {why}", why=why)


def _signs_with(jwk: dict[str, Any], key: jwt.PyJWK, alg: str) -> bool:
    """The one home of the algorithm rule (RFC 8725 2.1, 3.1): ``alg``, from the token's header, is an accepted one
    for this type of key and the key's own — the ``alg`` its JWK states; without one, what its type says (RS256 or
    PS256 over an RSA key, ES256 over P-256, EdDSA over Ed25519: PyJWK's reading). So an Ed25519 key is never read as
    a P-256 one, a key published for RS256 never checks PS256, and no published key is ever an HMAC secret."""
    if _KEY_TYPES.get(alg) != key.key_type:
        return False
    if "alg" in jwk:
        return bool(jwk["alg"] == alg)
    return key.key_type == "RSA" or key.algorithm_name == alg


def _untrustworthy(jwk: dict[str, Any], key: jwt.PyJWK) -> Message | None:
    """Why a published key, in its own algorithm, still proves nothing: an RSA key too short to resist factoring, or a
    key whose private half is published with it (RFC 7517 6.3's ``d``: anyone could sign with it; PyJWT would also
    try to verify with an RSA private key and fail with a 500)."""
    if "d" in jwk:
        return _("the identity provider publishes this key's private half, so anyone could have signed the token")
    if not isinstance(key.key, RSAPublicKey):
        return None
    if key.key.key_size < MIN_RSA_BITS:
        return _(
            "the identity provider signs with an RSA key of {bits} bits, shorter than the {least} bits accepted: it "
            "must sign with a longer key",
            bits=key.key.key_size,
            least=MIN_RSA_BITS,
        )
    numbers = key.key.public_numbers()
    if key.key.key_size > MAX_RSA_BITS or numbers.n % 2 == 0 or numbers.e > _MAX_RSA_EXPONENT:
        return _(
            "the identity provider signs with an RSA key the registry does not check signatures with: at most {most} "
            "bits, an odd modulus and an odd public exponent below 2^31 are accepted",
            most=MAX_RSA_BITS,
        )
    return None


def _require_issued_to(claims: dict[str, Any], audience: str) -> None:
    """OIDC Core 3.1.3.7: beyond ``aud`` containing this registry (PyJWT's check), a token for several audiences must
    name it as the authorised party, and ``azp``, whenever present, must be it. Said as the aud refusal."""
    aud, azp = claims["aud"], claims.get("azp")
    several = isinstance(aud, list) and len(set(aud)) > 1
    if (several and azp is None) or ("azp" in claims and azp != audience):
        raise jwt.InvalidAudienceError("issued to another party (azp)")


def _is_id_token(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    """RFC 8725 3.11: no typ (OIDC sets none) or JWT; not an access token (at+jwt, RFC 9068), nor a logout token
    (logout+jwt, or any security event token: it carries ``events``, OIDC Back-Channel Logout 2.4)."""
    if "typ" in header:
        typ = header["typ"]
        if not isinstance(typ, str) or typ.lower() not in _ID_TOKEN_TYPES:
            return False
    return "events" not in claims
