"""What a large import (``registry.certificates.imports``) says when the database stops it midway: the chunks before
were committed, so the words of a single request ("nothing was changed: send it again") would not be true. It says
which rows were committed and where their claim codes are, whether the chunk under way was written, and that running
the same command again carries on (each chunk's idempotency key replays what was committed; once those records have
expired, the rows already issued come back as duplicates): no row is issued twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from registry.errors import RegistryError, ServiceUnavailable
from registry.faults import RETRY_AFTER_SECONDS, Fault, database_fault
from registry.i18n import Listing, Message, _

# Why the import stopped, said of the import (registry.faults says it of one request).
_CAUSE = {
    Fault.connection_lost: _("the connection to the database was lost"),
    Fault.unreachable: _("the database cannot be reached"),
    Fault.busy: _("every database connection is busy"),
    Fault.conflict: _("the database rolled the chunk back: it met a concurrent change"),
    Fault.locked: _(
        "the registry is busy with other work on the same records (such as a large batch) and the import could not "
        "take its turn in time"
    ),
}


class Committed(Protocol):
    """What the chunks committed so far add up to (``imports.ImportSummary``)."""

    rows: int
    issued: int
    already_issued: int
    rejected: int
    issued_file: Path | None
    rejected_file: Path | None


@contextmanager
def reported(committed: Committed, *, first_row: int, rows: int) -> Iterator[None]:
    """Around one chunk (rows ``first_row`` on, ``rows`` of them): a database fault becomes ServiceUnavailable saying
    what is true of the whole import. Any other error goes on as it was."""
    try:
        yield
    except RegistryError:
        raise
    except Exception as exc:
        fault = database_fault(exc)
        if fault is None:
            raise
        detail = stopped(fault, committed, first_row=first_row, last_row=first_row + rows - 1)
        raise ServiceUnavailable(detail, retry_after=RETRY_AFTER_SECONDS[fault]) from exc


def stopped(fault: Fault, committed: Committed, *, first_row: int, last_row: int) -> Message:
    """The lines the import stops with, one message: the cause, the rows committed, the chunk under way, a re-run."""
    lines = [_("the import stopped at row {row}: {cause}", row=first_row, cause=_CAUSE[fault])]
    if committed.rows:
        lines.append(
            _(
                "rows 1 to {last} were committed before it ({issued} issued, {already_issued} already issued, "
                "{rejected} rejected): their claim codes are in {issued_file}, the rejected rows in {rejected_file}",
                last=committed.rows,
                issued=committed.issued,
                already_issued=committed.already_issued,
                rejected=committed.rejected,
                issued_file=str(committed.issued_file),
                rejected_file=str(committed.rejected_file),
            )
        )
    if fault is Fault.connection_lost:  # the commit may have been under way: its outcome was never heard
        lines.append(
            _(
                "rows {row} to {last} may or may not have been issued (the connection was lost before their commit "
                "was confirmed); nothing after them was committed",
                row=first_row,
                last=last_row,
            )
        )
    else:  # rolled back (conflict, locked), or never begun: no connection to be had (busy; unreachable: connecting)
        lines.append(_("nothing from row {row} on was committed", row=first_row))
    lines.append(
        _(
            "run the same command again to carry on: no row is issued twice, and this run's files are kept beside the "
            "new ones as numbered backups"
        )
    )
    return Listing(lines, separator="\n  ")
