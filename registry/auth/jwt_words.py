"""Why a JWT was refused, in words a reader of either language can act on: the one home for PyJWT's errors.

PyJWT words its errors in English only ("Invalid issuer", "Audience doesn't match", 'Token is missing the "jti"
claim'); put into a problem's detail they reached a Chinese reader as "访问令牌无效：Invalid issuer". Here each of its
error classes is said with a registry.i18n message naming the claim at fault and what to do, for the registry's own
tokens (registry.auth.tokens) and the identity provider's (registry.holder_access.identity_provider) alike; and why a
compact JWS cannot be read at all (``shape_refusal``), for ``registry verify-credential``.
"""

from __future__ import annotations

import re

import jwt
import jwt.exceptions

from registry.auth.numeric_dates import TIME_CLAIMS
from registry.i18n import Message, _

# By PyJWT's error class; a subclass is said as its nearest listed class (InvalidSignatureError before DecodeError).
_REASONS: dict[type[jwt.PyJWTError], Message] = {
    jwt.InvalidIssuerError: _("its iss claim names another issuer: get a new token from the issuer expected here"),
    jwt.InvalidAudienceError: _("its aud claim names another audience: get a token meant for this service"),
    jwt.ExpiredSignatureError: _("it has expired (exp): get a new one"),
    jwt.ImmatureSignatureError: _("it is not valid yet (nbf or iat lies in the future): check the issuer's clock"),
    jwt.InvalidIssuedAtError: _("its iat claim must be a number of seconds since 1970"),
    jwt.exceptions.InvalidSubjectError: _("its sub claim is not valid"),
    jwt.exceptions.InvalidJTIError: _("its jti claim is not valid"),
    jwt.InvalidAlgorithmError: _("its signing algorithm (alg) is not accepted"),
    jwt.InvalidKeyError: _("its signature does not verify with the issuer's key"),
    jwt.InvalidSignatureError: _("its signature does not verify with the issuer's key"),
    jwt.DecodeError: _("it cannot be read as a signed token"),
}
_FALLBACK = _("its claims are not acceptable")
# registry.auth.numeric_dates' own refusal, said in the words it was raised with.
_NOT_NUMERIC = re.compile(r"the (\w+) claim must be a NumericDate")
# Why PyJWT cannot read a token's shape (get_unverified_header), by the start of its words: it raises a DecodeError or
# a bare InvalidTokenError for each, with nothing else to tell them by. Checked in order; any other: its class's.
_SHAPES: tuple[tuple[str, Message], ...] = (
    ("Not enough segments", _("it is not three base64url parts separated by dots")),
    ("Invalid header string: must be a json object", _("its header is not a JSON object")),
    ("Invalid header", _("its header is not base64url JSON")),
    ("Invalid payload padding", _("its payload or signature is not base64url JSON")),
    ("Invalid crypto padding", _("its payload or signature is not base64url JSON")),
    ("Key ID header parameter must be a string", _("its kid header is not a string")),
    ("Invalid 'crit' header", _("its crit header is not a list of the extensions it uses")),
)


def jwt_refusal(error: jwt.PyJWTError) -> Message:
    """Why PyJWT (or ``require_numeric_dates``) refused a token, as a message to put after "the … token is not valid:";
    never PyJWT's English."""
    if isinstance(error, jwt.MissingRequiredClaimError):
        return _("it lacks the {claim} claim", claim=error.claim)
    found = _NOT_NUMERIC.match(str(error))
    if found is not None and found[1] in TIME_CLAIMS:
        return _("the {claim} claim must be a NumericDate (a JSON number), not text", claim=found[1])
    for kind in type(error).__mro__:
        if kind in _REASONS:
            return _REASONS[kind]
    return _FALLBACK


def shape_refusal(error: jwt.PyJWTError) -> Message:
    """Why PyJWT could not read a token's compact form (header, segments, base64url), as a message to put after "not a
    compact JWS:"; never PyJWT's English."""
    said = str(error)
    return next((reason for start, reason in _SHAPES if said.startswith(start)), None) or jwt_refusal(error)
