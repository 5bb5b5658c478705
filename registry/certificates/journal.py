"""The two logs a certificate's life is written to, in one step: the audit log (who did it, and for what purpose) and
the public transparency log (what happened, in a provable order, without personal data). Every issuance, correction
and status change goes through ``Journal`` (``record`` for events known at once), so the two logs cannot disagree
about what happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import service as audit
from registry.audit.service import Actor
from registry.transparency import service as transparency


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to a certificate, as each log states it."""

    audit: audit.Entry
    leaf: transparency.Entry


class Journal:
    """Events for both logs, each made ready as it becomes known (``add``: its leaf's data and hash, its audit record's
    canonical bytes but its time) — a batch adds each certificate's as the certificate is sealed, while the database
    stores the rows before it — and written to both logs in one step (``write``): only then is each log's turn taken,
    each audit record dated and chained, and the tree extended."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self._audit: list[audit.Prepared] = []
        self._leaves: list[transparency.Leaf] = []

    def add(self, event: Event) -> None:
        self.add_made(audit.prepare(event.audit, actor=self.actor), transparency.leaf(event.leaf))

    def add_made(self, prepared: audit.Prepared, leaf: transparency.Leaf) -> None:
        """An event whose record and leaf are already made (``audit.Preparing``, ``transparency.Leaves``: a batch's)."""
        self._audit.append(prepared)
        self._leaves.append(leaf)

    async def write(self, session: AsyncSession) -> None:
        """Append every event added, in order, to both logs, in the caller's transaction: one bulk write each,
        however many events (a batch of 10,000 issuances). Audit chain first, then the tree: the order every writer
        takes the locks."""
        await audit.append_prepared(session, actor=self.actor, prepared=self._audit)
        await transparency.append_leaves(session, self._leaves)


async def record(session: AsyncSession, *, actor: Actor, events: Sequence[Event]) -> None:
    """Append every event to both logs, in order, in the caller's transaction (``Journal``)."""
    journal = Journal(actor)
    for event in events:
        journal.add(event)
    await journal.write(session)
