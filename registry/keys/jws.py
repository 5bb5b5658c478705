"""Compact JWS (RFC 7515) made with a ``registry.keys.signers.Signer`` and checked with a ``SignatureCheck``: for every
algorithm the registry signs with, including RFC 9864's ``Ed25519``, which PyJWT does not name.

The bytes are laid out as PyJWT lays them out (header keys sorted, no spaces), so nothing a verifier sees changes but
the ``alg``. What is refused raises JWSRefused, a ValueError whose ``reason`` says why in the reader's language.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from registry.errors import JWSRefused
from registry.i18n import _
from registry.keys.signers import SignatureCheck, Signer

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def unb64url(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): any other character is an error, not skipped."""
    if _BASE64URL.fullmatch(segment):
        try:
            return base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)
        except binascii.Error:  # a length no base64 has (4n + 1)
            pass
    raise JWSRefused(_("it is not unpadded base64url"))


def protected_header(*, alg: str, kid: str, typ: str, **extra: Any) -> bytes:
    """The base64url protected header: keys sorted, no spaces."""
    header = {"alg": alg, "kid": kid, "typ": typ, **extra}
    return b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


def encode(claims: dict[str, Any], signer: Signer, *, typ: str) -> str:
    """``claims`` signed by ``signer``, its ``alg`` and ``kid`` in the header."""
    signing_input = (
        protected_header(alg=signer.alg, kid=signer.kid, typ=typ)
        + b"."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    return (signing_input + b"." + b64url(signer.sign(signing_input))).decode("ascii")


def unverified_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, unverified; JWSRefused (a ValueError) if there is none."""
    segment = token.strip().split(".", 1)[0]
    try:
        header = json.loads(unb64url(segment))
    except ValueError:  # JWSRefused, binascii.Error, json.JSONDecodeError, UnicodeDecodeError
        raise JWSRefused(_("its header is not base64url JSON")) from None
    if not isinstance(header, dict):
        raise JWSRefused(_("its header is not a JSON object"))
    return header


def decode(token: str, check: SignatureCheck) -> dict[str, Any]:
    """The claims of a compact JWS whose signature ``check`` verifies under the header's ``alg``; JWSRefused (a
    ValueError) saying why not. No ``crit`` extension is understood, so a token naming one is refused (RFC 7515
    §4.1.11)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JWSRefused(_("it is not three base64url parts separated by dots"))
    header = unverified_header(token)
    if "crit" in header:
        raise JWSRefused(_("its header names critical extensions (crit) this verifier does not understand"))
    alg = header.get("alg")
    if alg not in check.algorithm.accepts:
        raise JWSRefused(_("its algorithm {alg!r:.40} is not one this key signs with", alg=alg))
    try:
        signature = unb64url(parts[2])
        payload = json.loads(unb64url(parts[1]))
    except ValueError:  # JWSRefused, binascii.Error, json.JSONDecodeError, UnicodeDecodeError
        raise JWSRefused(_("its payload or signature is not base64url JSON")) from None
    if not check.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"), alg=alg):
        raise JWSRefused(_("its signature does not verify with this key over its header and payload"))
    if not isinstance(payload, dict):
        raise JWSRefused(_("its payload is not a JSON object"))
    return payload
