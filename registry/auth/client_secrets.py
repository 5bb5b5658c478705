"""API client credentials: made once, shown once, stored only as a keyed hash, compared in constant time."""

from __future__ import annotations

import secrets

from registry.keys.secrets_box import SecretsBox

_KIND = "client-secret"


def new_client_credentials() -> tuple[str, str]:
    """A client id and a secret of 256 bits."""
    return f"trc_{secrets.token_hex(10)}", secrets.token_urlsafe(32)


def secret_hash(box: SecretsBox, secret: str) -> str:
    return box.hash_secret(secret, kind=_KIND)


def secret_matches(box: SecretsBox, secret: str, stored_hash: str | None) -> bool:
    """Hashes even when there is nothing to compare with, so response time does not tell which client ids exist."""
    matches = box.secret_matches(secret, stored_hash or "", kind=_KIND)
    return matches and stored_hash is not None
