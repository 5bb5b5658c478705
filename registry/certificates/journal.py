"""The two logs a certificate's life is written to, in one step: the audit log (who did it, and for what purpose) and
the public transparency log (what happened, in a provable order, without personal data). Every issuance, correction
and status change goes through ``record``, so the two logs cannot disagree about what happened."""

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


async def record(session: AsyncSession, *, actor: Actor, events: Sequence[Event]) -> None:
    """Append every event to both logs, in order, in the caller's transaction: one bulk write each, however many
    events (a batch of 10,000 issuances). Audit chain first, then the tree: the order every writer takes the locks."""
    await audit.append_many(session, actor=actor, entries=[event.audit for event in events])
    await transparency.append(session, [event.leaf for event in events])
