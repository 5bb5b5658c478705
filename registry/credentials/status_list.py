"""A body's Bitstring Status List as a signed credential, and a certificate's entries pointing into it.

The bits themselves, and which certificate has which index, are kept by ``registry.certificates.status_lists``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from registry.certificates.models import StatusList
from registry.certificates.status_lists import Purpose, encode
from registry.db import utcnow

LIST_VALIDITY = timedelta(days=1)
VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"


def issuer_url(base_url: str, issuer_code: str) -> str:
    """The issuer identifier of an evaluation body in credentials and status lists."""
    return f"{base_url}/v1/issuers/{issuer_code}"


def list_url(base_url: str, issuer_code: str, list_id: str, purpose: Purpose) -> str:
    return f"{base_url}/v1/status-lists/{issuer_code}/{list_id}-{purpose.value}"


def parse_list_name(name: str) -> tuple[str, Purpose] | None:
    list_id, _, purpose = name.rpartition("-")
    if not list_id or purpose not in Purpose.__members__:
        return None
    return list_id, Purpose(purpose)


def list_credential_claims(*, url: str, issuer_id: str, purpose: Purpose, row: StatusList) -> dict[str, Any]:
    """Valid for a day from the minute it is served: an offline verifier can tell a current list from a stale one,
    and within a minute the bytes (and ETag) stay the same for caches."""
    valid_from = utcnow().replace(second=0, microsecond=0)
    return {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer_id,
        "validFrom": valid_from.isoformat(),
        "validUntil": (valid_from + LIST_VALIDITY).isoformat(),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose.value,
            "encodedList": encode(row.bits),
        },
        "iss": issuer_id,
        "jti": url,
        "iat": int(valid_from.timestamp()),
    }


def entries_for(*, base_url: str, issuer_code: str, list_id: str, index: int) -> list[dict[str, Any]]:
    """The ``credentialStatus`` entries of a certificate's credential, one per purpose."""
    return [
        {
            "id": f"{list_url(base_url, issuer_code, list_id, purpose)}#{index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": purpose.value,
            "statusListIndex": str(index),
            "statusListCredential": list_url(base_url, issuer_code, list_id, purpose),
            "status_list_url": list_url(base_url, issuer_code, list_id, purpose),
            "index": index,
        }
        for purpose in Purpose
    ]
