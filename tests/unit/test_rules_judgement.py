"""The verification judgement (``registry.verification.judgement.judge``): what an employer is told, for every answer,
in the order the rules take precedence — signature, signing key, filed scope, revoked, superseded, suspended, expired.

A pure function: every case names its facts; nothing here reads a clock or a database.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TypedDict

import pytest

from registry.certificates.models import Status
from registry.verification.judgement import judge
from registry.verification.schemas import VerificationResult

TODAY = date(2027, 3, 15)
YESTERDAY = TODAY - timedelta(days=1)


class Facts(TypedDict, total=False):
    status: str
    valid_until: date | None
    revocation_reason: str | None
    signature_valid: bool
    key_problem: str | None
    in_scope: bool


def _judge(
    *,
    status: str = Status.active,
    valid_until: date | None = None,
    revocation_reason: str | None = None,
    signature_valid: bool = True,
    key_problem: str | None = None,
    in_scope: bool = True,
) -> tuple[VerificationResult, str | None]:
    return judge(
        status=status,
        valid_until=valid_until,
        revocation_reason=revocation_reason,
        signature_valid=signature_valid,
        key_problem=key_problem,
        in_scope=in_scope,
        today=TODAY,
    )


def test_a_sound_active_certificate_without_an_end_date_is_valid_with_no_reason() -> None:
    assert _judge() == (VerificationResult.valid, None)


def test_a_certificate_whose_last_valid_day_is_today_is_still_valid() -> None:
    assert _judge(valid_until=TODAY) == (VerificationResult.valid, None)


def test_a_certificate_whose_last_valid_day_was_yesterday_is_expired() -> None:
    assert _judge(valid_until=YESTERDAY) == (VerificationResult.expired, "expired")


def test_a_certificate_valid_until_tomorrow_is_valid() -> None:
    assert _judge(valid_until=TODAY + timedelta(days=1)) == (VerificationResult.valid, None)


def test_a_signature_that_does_not_verify_is_unknown_as_signature_invalid() -> None:
    assert _judge(signature_valid=False) == (VerificationResult.unknown, "signature_invalid")


def test_a_signature_by_an_unknown_key_is_unknown_and_names_the_key_problem() -> None:
    assert _judge(signature_valid=False, key_problem="signing_key_unknown") == (
        VerificationResult.unknown,
        "signing_key_unknown",
    )


@pytest.mark.parametrize("key_problem", ["signing_key_compromised", "signing_key_not_valid_then", "status_tampered"])
def test_a_good_signature_by_a_key_the_registry_cannot_vouch_for_is_unknown(key_problem: str) -> None:
    assert _judge(key_problem=key_problem) == (VerificationResult.unknown, key_problem)


def test_a_certificate_awarded_outside_the_bodys_filed_scope_is_unknown() -> None:
    assert _judge(in_scope=False) == (VerificationResult.unknown, "issuer_outside_filed_scope")


def test_a_revoked_certificate_is_revoked_with_its_reason() -> None:
    assert _judge(status=Status.revoked, revocation_reason="key_compromise") == (
        VerificationResult.revoked,
        "key_compromise",
    )


def test_a_revoked_certificate_without_a_recorded_reason_says_revoked() -> None:
    assert _judge(status=Status.revoked) == (VerificationResult.revoked, "revoked")


def test_a_superseded_certificate_is_superseded() -> None:
    assert _judge(status=Status.superseded) == (VerificationResult.superseded, "superseded")


def test_a_suspended_certificate_is_suspended() -> None:
    assert _judge(status=Status.suspended) == (VerificationResult.suspended, "suspended")


def test_a_revocation_reason_left_on_an_active_certificate_changes_nothing() -> None:
    assert _judge(revocation_reason="other") == (VerificationResult.valid, None)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(
            {"signature_valid": False, "key_problem": None, "in_scope": False, "status": Status.revoked},
            (VerificationResult.unknown, "signature_invalid"),
            id="a bad signature outranks scope and revocation",
        ),
        pytest.param(
            {"signature_valid": False, "key_problem": "signing_key_unknown", "in_scope": False},
            (VerificationResult.unknown, "signing_key_unknown"),
            id="an unknown key outranks scope",
        ),
        pytest.param(
            {"key_problem": "signing_key_compromised", "in_scope": False, "status": Status.revoked},
            (VerificationResult.unknown, "signing_key_compromised"),
            id="a compromised key outranks scope and revocation",
        ),
        pytest.param(
            {"in_scope": False, "status": Status.revoked, "revocation_reason": "other", "valid_until": YESTERDAY},
            (VerificationResult.unknown, "issuer_outside_filed_scope"),
            id="out of scope outranks revoked and expired",
        ),
        pytest.param(
            {"status": Status.revoked, "revocation_reason": "other", "valid_until": YESTERDAY},
            (VerificationResult.revoked, "other"),
            id="revoked outranks expired",
        ),
        pytest.param(
            {"status": Status.superseded, "valid_until": YESTERDAY},
            (VerificationResult.superseded, "superseded"),
            id="superseded outranks expired",
        ),
        pytest.param(
            {"status": Status.suspended, "valid_until": YESTERDAY},
            (VerificationResult.suspended, "suspended"),
            id="suspended outranks expired",
        ),
    ],
)
def test_the_stronger_reason_wins(facts: Facts, expected: tuple[VerificationResult, str | None]) -> None:
    assert _judge(**facts) == expected
