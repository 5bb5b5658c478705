"""Why a credential or a status list could not be read, in the reader's language: registry.keys.jws says its refusals
as messages (JWSRefused), registry.certificates.status_lists in English, which never reaches the report.
"""

from __future__ import annotations

import binascii
from typing import Any

from registry.errors import JWSRefused
from registry.i18n import _


def jws_reason(refused: ValueError) -> str:
    """Why registry.keys.jws refused a token, to put after "not a compact JWS:" or "signature does not verify:"."""
    return refused.reason if isinstance(refused, JWSRefused) else _("it cannot be read as a signed token")


def undecodable(url: str, refused: Exception, list_claims: dict[str, Any], *, most: int) -> str:
    """Why a status list's ``encodedList`` (multibase base64url of gzip, at most ``most`` bytes inflated) could not be
    decoded, for the error reading it raised (registry.certificates.status_lists.decode words its own in English)."""
    subject = list_claims.get("credentialSubject")
    encoded = subject.get("encodedList") if isinstance(subject, dict) else None
    if not isinstance(refused, ValueError) or not isinstance(encoded, str):
        return _("status list {url} cannot be decoded", url=url)
    if not encoded.startswith("u"):
        reason = _("its encodedList is not multibase base64url (a 'u' prefix)")
    elif isinstance(refused, binascii.Error) or not encoded.isascii():
        reason = _("its encodedList is not base64url")
    elif "inflates" in str(refused):  # decode's bare ValueError for a list past ``most``, told apart by its words
        reason = _("its encodedList inflates to more than {most:,} bytes", most=most)
    else:
        reason = _("its encodedList is not one whole gzip member of at most {most:,} bytes", most=most)
    return _("status list {url} cannot be decoded: {reason}", url=url, reason=reason)
