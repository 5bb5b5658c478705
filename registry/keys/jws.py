"""Compact JWS (RFC 7515) made with a ``registry.keys.signers.Signer`` and checked with a ``SignatureCheck``: for every
algorithm the registry signs with, including RFC 9864's ``Ed25519``, which PyJWT does not name.

The bytes are laid out as PyJWT lays them out (header keys sorted, no spaces), so nothing a verifier sees changes but
the ``alg``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from registry.keys.signers import SignatureCheck, Signer

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def unb64url(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): any other character is an error, not skipped."""
    if not _BASE64URL.fullmatch(segment):
        raise ValueError("not unpadded base64url")
    return base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)


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
    """The protected header of a compact JWS, unverified; ValueError if there is none."""
    segment = token.strip().split(".", 1)[0]
    try:
        header = json.loads(unb64url(segment))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"the header is not base64url JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    return header


def decode(token: str, check: SignatureCheck) -> dict[str, Any]:
    """The claims of a compact JWS whose signature ``check`` verifies under the header's ``alg``; ValueError saying
    why not. No ``crit`` extension is understood, so a token naming one is refused (RFC 7515 §4.1.11)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS (three dot-separated parts)")
    header = unverified_header(token)
    if "crit" in header:
        raise ValueError("the header names critical extensions this verifier does not understand")
    alg = header.get("alg")
    if alg not in check.algorithm.accepts:
        raise ValueError(f"algorithm {alg!r} is not one this key signs with")
    try:
        signature = unb64url(parts[2])
        payload = json.loads(unb64url(parts[1]))
    except (ValueError, binascii.Error):
        raise ValueError("the payload or signature is not base64url JSON") from None
    if not check.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"), alg=alg):
        raise ValueError("the signature does not verify")
    if not isinstance(payload, dict):
        raise ValueError("the payload is not a JSON object")
    return payload
