"""What a peer's answer must agree with before this node passes it on (and, for recognition, signs it as its own).

A peer's statement is checked for who signed it and which question it answers (``peers``); these checks are about what
it says: an answer about another certificate or holder, an unmasked identity number, a "valid" with no certificate or
a bad signature, a "valid" for a certificate whose validity ended before today, or a check made long ago (or in the
future) is not an answer to the question, whoever signed it. Nor is one whose text breaks the rule for text a person
reads (``unreadable_text``): this node shows it to its clients.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from registry import clock
from registry.certificates import numbering
from registry.db import utcnow
from registry.errors import InvalidCertificateNumber
from registry.schemas import (
    MOST_DIGITS_IN_A_NAME,
    FlowingText500,
    FlowingText1000,
    Text64,
    Text128,
    Text256,
    person_name_key,
)
from registry.verification.schemas import Verification, VerificationResult, VerifiedCertificate

# How far two nodes' clocks may disagree about when a peer checked a certificate.
CLOCK_SKEW_SECONDS: Final = 60
# registry.holders.identity.mask_id_number: at most two characters kept at each end, everything between starred.
_MASKED_ID: Final = re.compile(r"[0-9A-Z]{0,2}\*+[0-9A-Z]{0,2}")
_MASKED_ID_LENGTH: Final = 32  # the stored masked form's column


def is_masked(holder_id: str) -> bool:
    """Whether ``holder_id`` is an identity number masked as this software masks it (never a full one)."""
    return len(holder_id) <= _MASKED_ID_LENGTH and _MASKED_ID.fullmatch(holder_id) is not None


def names_no_holder(holder_name: str) -> bool:
    """Whether ``holder_name`` holds more digits than a certificate's holder name may (registry.schemas.HolderName):
    an identity number typed into the name, or beside it. No certificate answers to it, so it is answered here (not
    found) and never sent to a peer node, which would receive the number in clear."""
    return sum(character.isdigit() for character in holder_name) > MOST_DIGITS_IN_A_NAME


def is_fresh(checked_at: datetime, *, max_age_seconds: float) -> bool:
    """Whether a peer's check happened within ``max_age_seconds`` (the answer cache's bound) plus the clock skew."""
    if checked_at.tzinfo is None:
        return False  # every node states its times in UTC with the offset; a bare time is not one of theirs
    age = utcnow() - checked_at
    skew = timedelta(seconds=CLOCK_SKEW_SECONDS)
    return -skew <= age <= timedelta(seconds=max_age_seconds) + skew


def certificate_agrees(
    certificate: VerifiedCertificate | None, result: VerificationResult, *, number: str, holder_name: str
) -> bool:
    """A certificate that is the one asked about (canonical number, the holder asked for), masked as in public output;
    none only where the result is unknown. A ``valid`` one is still valid today, Beijing time: checked when the answer
    is served (a cached answer too), so an honest "valid" given before midnight on the certificate's last day, or a
    peer's "valid" for one that has ended, is not passed on as valid."""
    if certificate is None:
        return result is VerificationResult.unknown
    if result is VerificationResult.valid and not still_valid(certificate):
        return False
    return (
        certificate.number == number
        and person_name_key(certificate.holder_name) == person_name_key(holder_name)
        and is_masked(certificate.holder_id_masked)
    )


def still_valid(certificate: VerifiedCertificate) -> bool:
    """Whether the certificate's own validity runs to today (``valid_until`` is the last day it is valid on)."""
    return certificate.valid_until is None or clock.today() <= certificate.valid_until


def succession_agrees(
    result: VerificationResult, *, number: str, superseded_by: str | None, supersedes: str | None = None
) -> bool:
    """A certificate's place in a chain of corrections as a node could state it: a certificate a correction replaced
    is not valid, and its successor (or the one it corrected) is another certificate of the same region (the same body
    corrects its own), named by its canonical number — not a link, nor another region's number."""
    if superseded_by is not None and result is VerificationResult.valid:
        return False
    return all(other is None or _sibling(other, number) for other in (superseded_by, supersedes))


def _sibling(other: str, number: str) -> bool:
    try:
        canonical = numbering.normalize_number(other)
    except InvalidCertificateNumber:
        return False
    return canonical == other and canonical[:2] == number[:2] and canonical != number


def verification_agrees(
    verification: Verification, *, number: str, holder_name: str, region: str, max_age_seconds: float
) -> bool:
    """A peer's verification answer that can be passed on as the answer to "is ``number`` of ``holder_name`` valid"."""
    if verification.answered_by != region:
        return False
    if verification.result is VerificationResult.valid and (
        verification.certificate is None or not verification.signature_valid
    ):
        return False
    succession = succession_agrees(
        verification.result, number=number, superseded_by=verification.superseded_by, supersedes=verification.supersedes
    )
    return (
        succession
        and certificate_agrees(verification.certificate, verification.result, number=number, holder_name=holder_name)
        and is_fresh(verification.checked_at, max_age_seconds=max_age_seconds)
    )


_SHORT_TEXT: Final = TypeAdapter(Text256)  # a code, a reason, a number, a date: any text the table does not name
# The bounds this registry holds the same text to when a person gives it (holders', bodies' and catalogue names,
# a rule's basis and conditions: registry.*.schemas); a peer running this software answers with what it stored.
_TEXT_RULES: Final[dict[str, TypeAdapter[str]]] = {
    **dict.fromkeys(("holder_name", "series_zh", "name_zh", "level_name_zh", "code"), TypeAdapter(Text64)),
    **dict.fromkeys(("series_en", "name_en", "level_name_en", "issuer_name"), TypeAdapter(Text128)),
    "title": _SHORT_TEXT,
    "zh": TypeAdapter(FlowingText500),
    "en": TypeAdapter(FlowingText1000),
}
# Never passed on: a recognition answer is signed again by this node, a peer's problem said again in its own words.
_NOT_RELAYED: Final = frozenset({"signature", "problem"})


def _readable(text: str, rule: TypeAdapter[str]) -> bool:
    """Whether ``text`` is what this registry would have stored for a person to read: NFC, single spaces, no control,
    invisible or text-direction characters, not blank, within its bound (registry.schemas)."""
    try:
        return rule.validate_python(text) == text
    except ValidationError:
        return False


def unreadable_text(answer: Any) -> str | None:
    """Where a peer's answer holds text this node could not show a person as given — the path of the first such
    string (never the text), or None. Walked without recursion: the answer's depth is the peer's to choose."""
    judged: dict[tuple[str | None, str], bool] = {}  # a bulk answer repeats its names and bases item after item
    pending: list[tuple[str, str | None, Any]] = [("answer", None, answer)]
    while pending:
        path, key, value = pending.pop()
        if isinstance(value, str):
            if (key, value) not in judged:
                judged[key, value] = _readable(value, _TEXT_RULES.get(key or "", _SHORT_TEXT))
            if not judged[key, value]:
                return path
        elif isinstance(value, dict):
            named = [(f"{path}.{name}", str(name), item) for name, item in value.items() if name not in _NOT_RELAYED]
            pending.extend(reversed(named))
        elif isinstance(value, list):
            pending.extend(reversed([(f"{path}[{index}]", key, item) for index, item in enumerate(value)]))
    return None
