"""A body's Bitstring Status Lists as signed credentials, and a certificate's status entry pointing into them.

The bits themselves, and which certificate has which index, are kept by ``registry.certificates.status_lists``; the
two-bit ``message`` list a credential names is composed from them by ``registry.credentials.message_list``.

Freshness: a list is signed valid for ``REGISTRY_STATUS_LIST_VALIDITY_SECONDS`` (an hour by default) from the minute
it is served, and says ``ttl`` = the HTTP ``Cache-Control`` max-age (``CACHE_SECONDS``, never longer than the validity),
as the recommendation asks of publishers: a cache serves a revocation within ``ttl``; an offline verifier holding a
saved list trusts it until its ``validUntil`` and then answers UNKNOWN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from registry import clock
from registry.certificates.status_lists import Purpose, encode
from registry.credentials import message_list

# Short enough that a revocation reaches verifiers behind a cache within a minute; long enough for a CDN to absorb
# scan storms. The lists' ``ttl`` says the same in milliseconds.
CACHE_SECONDS = 60
VALID_FROM_ROUNDING = 60  # seconds: validFrom is the minute a list is served in
VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
LIST_PURPOSES = frozenset({*(purpose.value for purpose in Purpose), message_list.PURPOSE})


@dataclass(frozen=True, slots=True)
class ListName:
    """``{list_id}-{purpose}``: a stored one-bit list (revocation, suspension) or the composed two-bit message list."""

    list_id: str
    purpose: str

    @property
    def stored(self) -> Purpose | None:
        return Purpose(self.purpose) if self.purpose in Purpose.__members__ else None


def cache_seconds(validity: timedelta) -> int:
    """How long caches may keep a list: never longer than the list stays valid once served. Its validity counts from
    the minute (``list_credential_claims``), so up to 59 s of it may be gone when it is served: a list valid for a
    minute is not cached at all."""
    return max(0, min(CACHE_SECONDS, int(validity.total_seconds()) - VALID_FROM_ROUNDING))


def issuer_url(base_url: str, issuer_code: str) -> str:
    """The issuer identifier of an evaluation body in credentials and status lists."""
    return f"{base_url}/v1/issuers/{issuer_code}"


def list_url(base_url: str, issuer_code: str, name: ListName) -> str:
    return f"{base_url}/v1/status-lists/{issuer_code}/{name.list_id}-{name.purpose}"


def parse_list_name(name: str) -> ListName | None:
    list_id, _, purpose = name.rpartition("-")
    if not list_id or purpose not in LIST_PURPOSES:
        return None
    return ListName(list_id=list_id, purpose=purpose)


def list_credential_claims(
    *, url: str, issuer_id: str, purpose: str, bits: bytes, validity: timedelta
) -> dict[str, Any]:
    """Valid for ``validity`` from the minute it is served: an offline verifier can tell a current list from a stale
    one, and within a minute the bytes (and ETag) stay the same for caches. ``ttl`` (milliseconds) is how long the
    registry lets caches keep it. The JWT claims (iss, jti, iat) are the JOSE layer, not JSON-LD terms."""
    valid_from = clock.now().replace(second=0, microsecond=0)
    return {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer_id,
        "validFrom": valid_from.isoformat(),
        "validUntil": (valid_from + validity).isoformat(),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": encode(bits),
            "ttl": cache_seconds(validity) * 1000,
        },
        "iss": issuer_id,
        "jti": url,
        "iat": int(valid_from.timestamp()),
    }


def entry_for(*, base_url: str, issuer_code: str, list_id: str, index: int) -> dict[str, Any]:
    """The ``credentialStatus`` of a certificate's credential: one entry (Open Badges 3.0 allows no more) in the
    two-bit message list, which carries both revocation and suspension."""
    name = ListName(list_id=list_id, purpose=message_list.PURPOSE)
    return message_list.entry(url=list_url(base_url, issuer_code, name), index=index)
