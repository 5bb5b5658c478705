"""The time claims of a JWT are NumericDates (RFC 7519 §2): JSON numbers of seconds, never strings.

PyJWT turns ``exp``, ``iat`` and ``nbf`` into numbers with ``int()`` before comparing them, so ``"exp": "9999999999"``
passes its checks (and ``true`` counts as 1). Every token the registry checks — its own access and holder tokens, an
identity provider's tokens, a peer node's service tokens and statements — goes through ``require_numeric_dates``
after ``jwt.decode``, inside the same ``except jwt.PyJWTError`` that refuses a token for any other flaw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jwt

TIME_CLAIMS = ("exp", "iat", "nbf")


def is_numeric_date(value: object) -> bool:
    """A JSON number (integer or not) that is finite; not a string, not a boolean."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def require_numeric_dates(claims: Mapping[str, Any]) -> None:
    """jwt.InvalidTokenError unless every time claim present is a NumericDate."""
    for name in TIME_CLAIMS:
        if name in claims and not is_numeric_date(claims[name]):
            raise jwt.InvalidTokenError(f"the {name} claim must be a NumericDate (a JSON number), not text")
