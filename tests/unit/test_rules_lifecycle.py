"""Which status changes a certificate allows (``lifecycle.TRANSITIONS``, every pair of status and action), what each
resulting status publishes in the two status lists, and what a refused change says."""

from __future__ import annotations

import pytest

from registry.certificates import lifecycle
from registry.certificates.lifecycle import CORRECTABLE, NOT_ALLOWED, STATUS_BITS, STATUS_WORDS, TRANSITIONS
from registry.certificates.models import Status

ACTIONS = ("suspend", "reinstate", "revoke")
ALLOWED = {
    (Status.active, "suspend"): Status.suspended,
    (Status.active, "revoke"): Status.revoked,
    (Status.suspended, "reinstate"): Status.active,
    (Status.suspended, "revoke"): Status.revoked,
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("status", list(Status))
def test_each_status_allows_exactly_the_listed_changes(status: Status, action: str) -> None:
    assert TRANSITIONS.get((status, action)) == ALLOWED.get((status, action))


def test_the_table_holds_nothing_else() -> None:
    assert TRANSITIONS == ALLOWED


@pytest.mark.parametrize("final", [Status.revoked, Status.superseded])
def test_nothing_leaves_a_revoked_or_superseded_certificate(final: Status) -> None:
    assert [action for action in ACTIONS if (final, action) in TRANSITIONS] == []


def test_an_active_certificate_cannot_be_reinstated_and_a_suspended_one_cannot_be_suspended_again() -> None:
    assert (Status.active, "reinstate") not in TRANSITIONS
    assert (Status.suspended, "suspend") not in TRANSITIONS


def test_only_an_active_certificate_can_be_corrected() -> None:
    assert frozenset({Status.active}) == CORRECTABLE


@pytest.mark.parametrize(
    ("status", "revocation_bit", "suspension_bit"),
    [
        (Status.active, False, False),
        (Status.suspended, False, True),
        (Status.revoked, True, False),
        pytest.param(Status.superseded, True, False, id="superseded fails offline checks like revoked"),
    ],
)
def test_each_status_publishes_its_revocation_and_suspension_bits(
    status: Status, revocation_bit: bool, suspension_bit: bool
) -> None:
    assert STATUS_BITS[status] == (revocation_bit, suspension_bit)


@pytest.mark.parametrize(
    ("action", "status", "said"),
    [
        ("suspend", Status.revoked, "a revoked certificate cannot be suspended"),
        ("suspend", Status.suspended, "a suspended certificate cannot be suspended"),
        ("reinstate", Status.active, "the certificate is active: only a suspended certificate can be reinstated"),
        ("reinstate", Status.revoked, "the certificate is revoked: only a suspended certificate can be reinstated"),
        (
            "reinstate",
            Status.superseded,
            "the certificate is superseded: only a suspended certificate can be reinstated",
        ),
        ("revoke", Status.revoked, "a revoked certificate cannot be revoked"),
        ("revoke", Status.superseded, "a superseded certificate cannot be revoked"),
    ],
)
def test_a_refused_change_says_which_status_refused_which_action(action: str, status: Status, said: str) -> None:
    assert NOT_ALLOWED[action](STATUS_WORDS[status]) == said


@pytest.mark.parametrize(
    ("action", "event"), [("suspend", "suspended"), ("reinstate", "reinstated"), ("revoke", "revoked")]
)
def test_each_change_is_recorded_as_the_event_it_makes(action: str, event: str) -> None:
    assert lifecycle._past(action) == event


def test_an_action_the_registry_does_not_know_records_no_event() -> None:
    with pytest.raises(KeyError):
        lifecycle._past("delete")
