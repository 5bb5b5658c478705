"""API client credentials: made once, shown once, stored only as a keyed hash, compared in constant time. After a
rotation the previous secret still opens tokens until its grace period ends."""

from __future__ import annotations

import secrets
from datetime import datetime

from registry.auth.models import ApiClient
from registry.keys.secrets_box import SecretsBox

_KIND = "client-secret"


def new_client_credentials() -> tuple[str, str]:
    """A client id and a secret of 256 bits."""
    return f"trc_{secrets.token_hex(10)}", new_secret()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(box: SecretsBox, secret: str) -> str:
    return box.hash_secret(secret, kind=_KIND)


def secret_matches(box: SecretsBox, secret: str, stored_hash: str | None) -> bool:
    """Hashes even when there is nothing to compare with, so response time does not tell which client ids exist."""
    matches = box.secret_matches(secret, stored_hash or "", kind=_KIND)
    return matches and stored_hash is not None


def opens(box: SecretsBox, client: ApiClient | None, secret: str, *, now: datetime) -> bool:
    """Whether ``secret`` opens ``client``: an active client's current secret, or its previous one until the grace
    period after a rotation ends. Both comparisons run for every caller (unknown, disabled, never rotated), so response
    time does not tell them apart."""
    current: str | None = None
    previous: str | None = None
    if client is not None and client.active:
        current = client.secret_hash
        until = client.previous_secret_until
        if until is not None and now < until:
            previous = client.previous_secret_hash
    matches_current = secret_matches(box, secret, current)
    matches_previous = secret_matches(box, secret, previous)
    return matches_current or matches_previous
