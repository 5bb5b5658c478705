"""Whether a certificate's status history is one the lifecycle could have written, and whether its three records of
that history agree entry for entry. ``registry audit verify`` runs it (see ``integrity``).

Each status change is written three times in one transaction: a ``certificate_events`` row, an audit record and a
transparency leaf. A status written back together with a forged entry appended to each of them (none is keyed) ends
all three in the status written back, so comparing their last entries is not enough: a history is replayed from its
issuance through the lifecycle's transitions (``lifecycle.TRANSITIONS``; revoked and superseded are final, only a
suspended certificate is reinstated, only an active one is corrected), and the three must hold the same status
changes in the same order, so that an entry deleted from one of them shows too. Histories are entry names
("issued", "suspended", …): nothing personal.
"""

from __future__ import annotations

from collections.abc import Sequence

from registry.certificates.lifecycle import CORRECTABLE, TAKEOVERS, TRANSITIONS
from registry.certificates.models import Status
from registry.errors import IllegalHistory

ISSUED = "issued"
# The lifecycle action each status-change entry records; a correction supersedes the certificate it corrects.
ACTIONS: dict[str, str] = {"suspended": "suspend", "reinstated": "reinstate", "revoked": "revoke"}
SUPERSEDED = "superseded"
_SHOWN = 40  # at most this much of an unknown entry's name is repeated in a message


def replay(history: Sequence[str], *, begins_with_issuance: bool = True) -> Status:
    """The status ``history`` leaves a certificate in, replayed from its issuance (active) through the lifecycle's
    transitions. With ``begins_with_issuance`` false the history holds the status changes only (the audit log's, whose
    issuance records are not read). Raises IllegalHistory naming the first entry the lifecycle forbids."""
    changes = history
    if begins_with_issuance:
        if not history:
            raise IllegalHistory("is empty")
        if history[0] != ISSUED:
            raise IllegalHistory(f"begins with {_shown(history[0])}, not with its issuance")
        changes = history[1:]
    status = Status.active
    for entry in changes:
        status = _step(status, entry)
    return status


def _step(status: Status, entry: str) -> Status:
    if entry == SUPERSEDED:
        target: Status | None = Status.superseded if status in CORRECTABLE else None
    elif entry in ACTIONS:
        change = (status, ACTIONS[entry])
        target = TRANSITIONS.get(change) or TAKEOVERS.get(change)  # the bureau's hold over a body's suspension too
    elif entry == ISSUED:
        target = None
    else:
        raise IllegalHistory(f"has an unknown entry {_shown(entry)}")
    if target is None:
        raise IllegalHistory(f"has {entry} after {status.value}")
    return target


def first_disagreement(histories: Sequence[tuple[str, Sequence[str]]]) -> str | None:
    """Where the first of ``histories`` (each a source's name and its status changes, issuance left out) and another
    differ: in their number of status changes, else in the first change that differs; None when all agree."""
    if not histories:
        return None
    first_name, first = histories[0]
    for name, other in histories[1:]:
        if len(other) != len(first):
            return f"{first_name} has {_changes(len(first))}, but {name} has {len(other)}"
        for position, (mine, theirs) in enumerate(zip(first, other, strict=True), start=1):
            if mine != theirs:
                return f"status change {position} is {_shown(mine)} in {first_name}, but {_shown(theirs)} in {name}"
    return None


def leaf_entry(event: str, status: str, stated: dict[str, Status]) -> str:
    """A transparency leaf as a history entry: its event, when the status it states is the one that event leaves a
    certificate in (``stated``: event -> status); else a name no replay accepts."""
    expected = stated.get(event)
    if expected is not None and expected.value == status:
        return event
    return f"{event} stating {status}"


def _changes(count: int) -> str:
    return "1 status change" if count == 1 else f"{count} status changes"


def _shown(entry: str) -> str:
    return repr(entry[:_SHOWN]) if entry not in ACTIONS and entry not in (ISSUED, SUPERSEDED) else entry
