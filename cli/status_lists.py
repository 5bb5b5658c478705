"""`registry status-lists`: check the evaluation bodies' sealed status lists, and repair the withheld ones.

A list whose seal does not check out is withheld (503, never signed). ``repair`` rebuilds it from its certificates as a
status change in it would (``status_lists.repair_list``, the one home of that rule) and seals it only when every
certificate of its body carries an intact status seal; a bit set at a slot no certificate holds is kept set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from cli.database import load_settings, run_in_transaction, said
from registry.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.context import RegistryContext

status_lists_app = typer.Typer(
    help="The evaluation bodies' sealed status lists: check their seals, repair the withheld ones.",
    no_args_is_help=True,
)

# What each command exits with (in its --help and the README); 4 is every database command's "cannot reach it".
CHECK_EXIT_CODES = {
    0: "every list's seal checks out, and every bit set in it belongs to a certificate",
    1: "some list's seal does not check out (withheld: answered 503): `registry status-lists repair` rebuilds it",
    2: "cannot run as asked: a bad option or configuration, or no evaluation body with that code",
    3: "every seal checks out, but some list has bits set at slots no certificate holds (a certificate row deleted "
    "from the database?): restore the missing certificates from a backup",
    4: "the database cannot be reached",
}
REPAIR_EXIT_CODES = {
    0: "every list is sealed: repaired, or already fine (then nothing is written)",
    1: "some list was not repaired: certificates of its body fail their status seals (named): restore them from a "
    "backup, then repair again; the other lists were repaired",
    2: "cannot run as asked: a bad option or configuration, or no evaluation body with that code",
    3: "every list is sealed, but some hold bits set at slots no certificate holds: kept set (never cleared without "
    "a certificate that proves it); restore the missing certificates from a backup",
    4: "the database cannot be reached",
    5: "not confirmed (no --yes): nothing was written",
}
SHOWN = 20  # slot indexes shown per list; the count says how many there are
REPAIRED = "status_list.repaired"


@dataclass(frozen=True, slots=True)
class ListState:
    """One list pair as found: which of its rows' seals fail, how many certificates hold a slot, and (withheld lists)
    the certificates whose status seals fail; the slots whose bits are set with no certificate there."""

    issuer: str
    list_id: str
    broken: tuple[str, ...]
    held: int
    size: int
    failing: tuple[str, ...]
    unproven: tuple[int, ...]

    def describe(self) -> list[str]:
        named = {"issuer": self.issuer, "list_id": self.list_id, "held": self.held, "size": self.size}
        if self.broken:
            head = _(
                "{issuer} {list_id}: WITHHELD (seal fails: {purposes}); {held} of {size} slots held",
                **named,
                purposes=", ".join(self.broken),
            )
        else:
            head = _("{issuer} {list_id}: sealed; {held} of {size} slots held", **named)
        lines = [said(head)]
        if self.broken and self.failing:
            failing = _("certificates whose status seals fail: {numbers}", numbers=", ".join(self.failing))
            lines.append("  " + said(failing))
        if self.unproven:
            shown = ", ".join(str(index) for index in self.unproven[:SHOWN])
            if len(self.unproven) > SHOWN:
                shown = said(_("{shown} (and {count} more)", shown=shown, count=len(self.unproven) - SHOWN))
            unproven = _(
                "bits set at {count} slots no certificate holds: {indexes}", count=len(self.unproven), indexes=shown
            )
            lines.append("  " + said(unproven))
        return lines


def _exit_codes(codes: dict[int, str]) -> str:
    return "Exit codes:\n\n" + "\n\n".join(f"{code}  {meaning}" for code, meaning in codes.items())


async def _bodies(session: AsyncSession, code: str | None) -> dict[int, str] | None:
    """Evaluation body id -> code: the one named, or all; None when no body has that code."""
    from sqlalchemy import select
    from sqlmodel import col

    from registry.issuers.models import Issuer

    query = select(col(Issuer.id), col(Issuer.code))
    if code is not None:
        query = query.where(col(Issuer.code) == code)
    found = {issuer_id: code for issuer_id, code in (await session.execute(query)).all() if issuer_id is not None}
    return found or (None if code is not None else {})


async def list_states(ctx: RegistryContext, session: AsyncSession, code: str | None) -> list[ListState] | None:
    """Every list pair of the body (or of all), in the order a repair locks them; None for an unknown body."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from registry.certificates import status_lists
    from registry.certificates.models import Certificate, StatusList

    bodies = await _bodies(session, code)
    if bodies is None:
        return None
    query = select(StatusList).where(col(StatusList.issuer_id).in_(bodies)).order_by(col(StatusList.issuer_id))
    pairs: dict[str, list[StatusList]] = {}
    for row in (await session.execute(query.order_by(col(StatusList.id)))).scalars():
        pairs.setdefault(row.list_id, []).append(row)
    states = []
    for list_id, rows in pairs.items():
        broken = tuple(row.purpose for row in rows if not status_lists.seal_intact(ctx.box, row))
        # Withheld: with the body, as a repair would rebuild it (its certificates elsewhere that fail count too).
        issuer_id = rows[0].issuer_id if broken else None
        rebuilt = await status_lists.rebuild(session, ctx.box, list_id=list_id, issuer_id=issuer_id)
        held = select(func.count()).where(col(Certificate.status_list_id) == list_id)
        states.append(
            ListState(
                issuer=bodies[rows[0].issuer_id],
                list_id=list_id,
                broken=broken,
                held=int((await session.execute(held)).scalar_one()),
                size=max(row.size for row in rows),
                failing=rebuilt.failing,
                unproven=rebuilt.unproven,
            )
        )
    return states


def _states_or_exit(code: str | None) -> list[ListState]:
    async def read(ctx: RegistryContext, session: AsyncSession) -> list[ListState] | None:
        return await list_states(ctx, session, code)

    states = run_in_transaction(load_settings(), read)
    if states is None:
        typer.echo(said(_("error: {problem}", problem=_("no evaluation body {code}", code=code))), err=True)
        raise typer.Exit(2)
    return states


_ISSUER_HELP = "evaluation body code (default: every body)"


@status_lists_app.command("check", epilog=_exit_codes(CHECK_EXIT_CODES))
def check(issuer: Annotated[str | None, typer.Option(help=_ISSUER_HELP)] = None) -> None:
    """Say for each status list whether its seal checks out and how many slots it holds; for a withheld one, which
    certificates' status seals fail (by number); and any bits set at slots no certificate holds. Writes nothing."""
    states = _states_or_exit(issuer)
    for state in states:
        for line in state.describe():
            typer.echo(line)
    withheld = sum(1 for state in states if state.broken)
    unproven = sum(1 for state in states if state.unproven)
    summary = _(
        "{lists} lists: {withheld} withheld, {unproven} with bits set at slots no certificate holds",
        lists=len(states),
        withheld=withheld,
        unproven=unproven,
    )
    typer.echo(said(summary))
    raise typer.Exit(1 if withheld else 3 if unproven else 0)


@dataclass(frozen=True, slots=True)
class Outcome:
    list_id: str
    sealed: tuple[str, ...]  # purposes sealed by this repair (none: already fine, or refused)
    failing: tuple[str, ...]  # certificates whose status seals fail: the list was not repaired
    unproven: tuple[int, ...]


async def repair_lists(ctx: RegistryContext, session: AsyncSession, withheld: list[ListState]) -> list[Outcome]:
    """Repair each list (``status_lists.repair_list``: locked as a flip locks it, sealed only when trustworthy), and
    audit each one repaired, in the same transaction. The audit records are chained once every list is done: the
    chain's lock is taken last, as every other writer takes it (list rows first, then the chain). Taken after the
    first list, it made a status change or an issuance in a later list deadlock with the repair, and held every
    audited write of the registry waiting while the remaining lists were rebuilt."""
    from registry.audit import service as audit
    from registry.certificates import status_lists

    outcomes, entries = [], []
    for state in withheld:
        rebuilt, sealed = await status_lists.repair_list(session, ctx.box, list_id=state.list_id)
        if rebuilt is None:  # its seals check out now (a status change in it rebuilt it since): nothing to do
            outcomes.append(Outcome(state.list_id, (), (), state.unproven))
            continue
        outcomes.append(Outcome(state.list_id, tuple(sealed), rebuilt.failing, rebuilt.unproven))
        if sealed:
            details = {"issuer": state.issuer, "purposes": sealed, "kept_without_certificate": len(rebuilt.unproven)}
            entries.append(
                audit.Entry(
                    action=REPAIRED,
                    object_type="status_list",
                    object_id=state.list_id,
                    purpose="repair of a withheld status list",
                    details=details,
                )
            )
    await audit.append_many(session, actor=audit.Actor(id="cli"), entries=entries)
    return outcomes


def _said(outcome: Outcome) -> str:
    list_id = outcome.list_id
    if outcome.failing:
        refused = _(
            "{list_id}: NOT repaired: {count} certificates of its body fail their status seals: {numbers}. Restore "
            "them from a backup (`registry audit verify` names what each disagrees with), then run `registry "
            "status-lists repair` again.",
            list_id=list_id,
            count=len(outcome.failing),
            numbers=", ".join(outcome.failing),
        )
        return said(refused)
    if not outcome.sealed:
        return said(_("{list_id}: already sealed, nothing written", list_id=list_id))
    purposes = ", ".join(outcome.sealed)
    if outcome.unproven:
        kept = _(
            "{list_id}: repaired, rebuilt from its certificates and sealed ({purposes}); {count} bits at slots no "
            "certificate holds kept set",
            list_id=list_id,
            purposes=purposes,
            count=len(outcome.unproven),
        )
        return said(kept)
    return said(
        _(
            "{list_id}: repaired, rebuilt from its certificates and sealed ({purposes})",
            list_id=list_id,
            purposes=purposes,
        )
    )


def _confirmed(question: str) -> bool:
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:  # no answer (end of input): not a yes
        typer.echo("", err=True)  # end the prompt's line
        return False


@status_lists_app.command("repair", epilog=_exit_codes(REPAIR_EXIT_CODES))
def repair(
    issuer: Annotated[str | None, typer.Option(help=_ISSUER_HELP)] = None,
    yes: Annotated[bool, typer.Option("--yes", help="repair without asking first")] = False,
) -> None:
    """Rebuild each withheld status list from its certificates, as a status change in it would, and seal it, only
    when every certificate of its body carries an intact status seal; else name those certificates (restore them from
    a backup). Bits set at slots no certificate holds stay set. Each list repaired is audited; a list whose seal
    checks out is left as it is."""
    states = _states_or_exit(issuer)
    withheld = [state for state in states if state.broken]
    for state in withheld:
        for line in state.describe():
            typer.echo(line)
    unproven = any(state.unproven for state in states)
    if not withheld:
        typer.echo(said(_("{lists} lists: none withheld, nothing to repair", lists=len(states))))
        raise typer.Exit(3 if unproven else 0)
    if not yes and not _confirmed(said(_("repair {count} withheld lists?", count=len(withheld)))):
        typer.echo(said(_("not confirmed: nothing was written")), err=True)
        raise typer.Exit(5)

    async def write(ctx: RegistryContext, session: AsyncSession) -> list[Outcome]:
        return await repair_lists(ctx, session, withheld)

    outcomes = run_in_transaction(load_settings(), write)
    for outcome in outcomes:
        typer.echo(_said(outcome))
    refused = sum(1 for outcome in outcomes if outcome.failing)
    typer.echo(
        said(_("{sealed} of {count} withheld lists sealed", sealed=len(outcomes) - refused, count=len(outcomes)))
    )
    raise typer.Exit(1 if refused else 3 if unproven or any(outcome.unproven for outcome in outcomes) else 0)
