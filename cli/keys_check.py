"""`registry keys check|repair|compromise`: whether the PDF root's CRL holds what the compromise rule says, bringing it
there, and marking a key compromised on the server's machine — the registry's own token and checkpoint keys
included, which no API route marks.

The rule has one home, ``registry.keys.compromise`` (what a mark cuts off), which ``registry.keys.cut_offs`` reads
to judge and repair the document keys of databases marked under the rule before it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from cli.database import load_settings, run_in_transaction, said
from registry.i18n import _, message_of
from registry.schemas import utc_expressible

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.context import RegistryContext
    from registry.keys.cut_offs import Judgement

CHECK_EXIT_CODES = {
    0: "every document key is in the PDF root's CRL exactly as the compromised keys cut it off",
    1: "some document key is not (each named), or a body's key row fails its seal: `registry keys repair`",
    2: "cannot run as asked: a bad option or configuration",
    4: "the database cannot be reached",
}
REPAIR_EXIT_CODES = {
    0: "the CRL holds what the rule says: repaired, or already so (then nothing is written)",
    1: "a body was not repaired: one of its key rows fails its seal (named): `registry audit verify`",
    2: "cannot run as asked: a bad option or configuration",
    4: "the database cannot be reached",
    5: "not confirmed (no --yes): nothing was written",
}


def _exit_codes(codes: dict[int, str]) -> str:
    return "Exit codes:\n\n" + "\n\n".join(f"{code}  {meaning}" for code, meaning in codes.items())


def _say_unsealed(judgement: Judgement) -> None:
    for code, kid in judgement.unsealed:
        problem = _(
            "{issuer}: the seal of key {kid} does not check out: its body is not judged or repaired (`registry audit "
            "verify`)",
            issuer=code,
            kid=kid,
        )
        typer.echo(said(problem))


def check() -> None:
    """Say which document (PDF-signing) keys are not in the PDF root's CRL as the compromise rule says: listed though
    no compromise cuts them off, left out though one does, or listed from another date. Writes nothing."""
    from registry.keys import cut_offs

    async def read(ctx: RegistryContext, session: AsyncSession) -> Judgement:
        return await cut_offs.judge(session, ctx.box, lock=False)

    judgement = run_in_transaction(load_settings(), read)
    for wrong in judgement.disagreements:
        typer.echo(said(wrong.describe()))
    _say_unsealed(judgement)
    summary = _(
        "{checked} document keys checked: {wrong} not as the compromised keys cut them off, {unsealed} keys whose "
        "seal fails",
        checked=judgement.checked,
        wrong=len(judgement.disagreements),
        unsealed=len(judgement.unsealed),
    )
    typer.echo(said(summary))
    raise typer.Exit(1 if judgement.disagreements or judgement.unsealed else 0)


def _confirmed(question: str) -> bool:
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:  # no answer (end of input): not a yes
        typer.echo("", err=True)
        return False


def repair(yes: Annotated[bool, typer.Option("--yes", help="repair without asking first")] = False) -> None:
    """Put every document key in the PDF root's CRL, or take it out, from the date the compromise rule says, each
    change audited (key.cut_off_repaired, actor cli). A body with a key row whose seal fails is left as it is."""
    from registry.audit.service import Actor
    from registry.keys import cut_offs

    if not yes and not _confirmed(said(_("repair the PDF root's CRL by the compromise rule?"))):
        typer.echo(said(_("not confirmed: nothing was written")), err=True)
        raise typer.Exit(5)

    async def write(ctx: RegistryContext, session: AsyncSession) -> Judgement:
        return await cut_offs.repair(session, ctx.keyring, actor=Actor(id="cli"))

    judgement = run_in_transaction(load_settings(), write)
    for wrong in judgement.disagreements:
        typer.echo(said(_("repaired: {what}", what=wrong.describe())))
    _say_unsealed(judgement)
    if judgement.disagreements:
        summary = _("{count} document keys repaired", count=len(judgement.disagreements))
    else:
        summary = _("the PDF root's CRL already holds what the rule says: nothing written")
    typer.echo(said(summary))
    raise typer.Exit(1 if judgement.unsealed else 0)


def compromise(
    kid: Annotated[str, typer.Argument(help="the key's short kid, as the JWKS lists it")],
    compromised_from: Annotated[
        str, typer.Option("--compromised-from", help="from when (ISO 8601 with a time zone); not after now")
    ],
    issuer: Annotated[str | None, typer.Option(help="evaluation body code: the key is that body's")] = None,
    registry: Annotated[bool, typer.Option("--registry", help="the key is the registry's own")] = False,
) -> None:
    """Mark a key compromised from a date, by the rules of POST /v1/issuers/{code}/keys/{kid}/compromise: the date
    only moves earlier; a key in use is replaced at once. The registry's own (--registry), current or retired: the
    JWKS then lists it compromised, so neither its tokens nor the checkpoints it signed from then are trusted."""
    from registry.audit.service import Actor
    from registry.issuers import service as issuers
    from registry.keys import compromise as compromises

    if registry == (issuer is not None):
        typer.echo(said(_("error: {problem}", problem=_("give either --issuer CODE or --registry"))), err=True)
        raise typer.Exit(2)
    since = _moment(compromised_from)
    code = issuer

    async def mark(ctx: RegistryContext, session: AsyncSession) -> str:
        actor = Actor(id="cli")
        if code is None:
            key = await compromises.mark_registry_key(session, ctx.keyring, actor=actor, kid=kid, since=since)
        else:
            key = await issuers.mark_key_compromised(ctx, session, actor=actor, code=code, kid=kid, since=since)
        assert key.compromised_from is not None  # just marked
        return key.compromised_from.isoformat()

    marked = run_in_transaction(load_settings(), mark)
    typer.echo(said(_("key {kid} is compromised from {since}", kid=kid, since=marked)))


def _moment(text: str) -> datetime:
    """``--compromised-from`` as an aware moment; exit 2 saying what is wrong otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        problem = _("--compromised-from: give an ISO 8601 date and time with a time zone (such as +08:00 or Z)")
        typer.echo(said(_("error: {problem}", problem=problem)), err=True)
        raise typer.Exit(2)
    try:
        return utc_expressible(moment)  # the rule the API's Moment applies: 0001-01-01T00:00+14:00 is not storable
    except ValueError as exc:
        problem = _("{field}: {message}", field="--compromised-from", message=message_of(exc))
        typer.echo(said(_("error: {problem}", problem=problem)), err=True)
        raise typer.Exit(2) from None


def register(keys_app: typer.Typer) -> None:
    """Add these commands to ``registry keys``."""
    keys_app.command("check", epilog=_exit_codes(CHECK_EXIT_CODES))(check)
    keys_app.command("repair", epilog=_exit_codes(REPAIR_EXIT_CODES))(repair)
    keys_app.command("compromise")(compromise)
