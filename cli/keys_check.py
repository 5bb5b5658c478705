"""`registry keys check|repair|compromise|confirm-master`: whether the PDF root's CRL holds what the compromise rule
says, bringing it there, marking a key compromised on the server's machine — the registry's own token and checkpoint
keys included, which no API route marks — and confirming the master key of a database an earlier version left with
API clients and nothing sealed (``registry.keys.confirmation``).

The rule has one home, ``registry.keys.compromise`` (what a mark cuts off), which ``registry.keys.cut_offs`` reads
to judge and repair the document keys of databases marked under the rule before it.
"""

from __future__ import annotations

import getpass
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from cli.database import load_settings, run_in_transaction, said
from registry.i18n import _, message_of
from registry.schemas import utc_expressible

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.config import Settings
    from registry.context import RegistryContext
    from registry.keys.confirmation import Confirmation, UncheckedClient
    from registry.keys.cut_offs import Judgement
    from registry.keys.service import MasterKeyState

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
CONFIRM_MASTER_EXIT_CODES = {
    0: "the database is bound to REGISTRY_MASTER_KEY: by this command, or already (then nothing is written)",
    1: "the secret does not open the client under REGISTRY_MASTER_KEY: nothing was bound",
    2: "cannot run as asked: a bad option, no secret, or a master key the database's keys do not open",
    4: "the database cannot be reached",
    5: "not confirmed (--without-proof without --yes): nothing was written",
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


def confirm_master(
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id",
            help="an API client of the database: its secret, read from stdin or a prompt that does not echo (never "
            "from the command line), proves the master key as its token request would",
        ),
    ] = None,
    without_proof: Annotated[
        bool,
        typer.Option(
            "--without-proof",
            help="no client's secret is known: bind the database to REGISTRY_MASTER_KEY on your word that it is the "
            "right key, then give the clients named new secrets",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="with --without-proof: bind without asking first")] = False,
) -> None:
    """Confirm REGISTRY_MASTER_KEY for a database upgraded from a version that made API clients before anything was
    sealed: until then signing answers 503 and `registry clients create|rotate-secret` refuse (409). Binds it as an
    API client's first token would (audited: master_key.confirmed, actor cli); a database bound already is left as
    it is."""
    if without_proof == (client_id is not None):
        problem = _("give either --client-id ID or --without-proof")
        typer.echo(said(_("error: {problem}", problem=problem)), err=True)
        raise typer.Exit(2)
    settings = load_settings()
    if client_id is not None:
        _confirm_with_secret(settings, client_id)
    else:
        _confirm_without_proof(settings, yes=yes)


def _master_key_state(settings: Settings) -> MasterKeyState:
    from registry.keys import service as keys

    async def read(_ctx: RegistryContext, session: AsyncSession) -> MasterKeyState:
        return await keys.master_key_state(session)

    return run_in_transaction(settings, read)


def _nothing_to_confirm(state: MasterKeyState) -> None:
    """Say why there is nothing to confirm, and exit 0, unless the database's master key is unproven."""
    if state == "unproven":
        return
    if state == "bound":
        message = _(
            "this database is already bound to REGISTRY_MASTER_KEY (its signing keys open with it): nothing to confirm"
        )
    else:
        message = _(
            "this database holds no API clients: nothing to confirm, nothing was written (its next start or command "
            "binds it to REGISTRY_MASTER_KEY)"
        )
    typer.echo(said(message))
    raise typer.Exit(0)


def _client_secret(client_id: str) -> str:
    """The client's secret from a prompt that does not echo, or from stdin when it is not a terminal: never from the
    command line or the environment, which other users of the machine can read (ps, /proc)."""
    try:
        if sys.stdin.isatty():
            secret = getpass.getpass(said(_("secret of API client {client_id}", client_id=client_id)) + ": ")
        else:
            secret = sys.stdin.readline().rstrip("\r\n")
    except (EOFError, KeyboardInterrupt):
        secret = ""
    if not secret:
        problem = _("no secret given: type it at the prompt or pass it on stdin, never on the command line")
        typer.echo(said(_("error: {problem}", problem=problem)), err=True)
        raise typer.Exit(2)
    return secret


def _confirm_with_secret(settings: Settings, client_id: str) -> None:
    from registry.auth import tokens
    from registry.keys import confirmation

    _nothing_to_confirm(_master_key_state(settings))
    secret = _client_secret(client_id)

    async def confirm(ctx: RegistryContext, session: AsyncSession) -> Confirmation:
        def check() -> Awaitable[object]:  # the token request's check of the secret
            return tokens.client_opened_by(ctx, session, client_id=client_id, client_secret=secret)

        proof = confirmation.SecretProof(client_id=client_id, check=check)
        return await confirmation.confirm(session, ctx.box, proof=proof)

    confirmed = run_in_transaction(settings, confirm)
    _nothing_to_confirm(confirmed.state)  # bound meanwhile, by a client's token
    bound = _(
        "REGISTRY_MASTER_KEY is confirmed: API client {client_id}'s secret opened its keyed hash, and the database is "
        "now bound to it (the registry's token key {kid} is sealed under it); signing, `registry clients create` and "
        "`registry clients rotate-secret` work again",
        client_id=client_id,
        kid=confirmed.kid,
    )
    typer.echo(said(bound))


def _confirm_without_proof(settings: Settings, *, yes: bool) -> None:
    from registry.keys import confirmation

    if not yes:

        async def look(_ctx: RegistryContext, session: AsyncSession) -> tuple[MasterKeyState, tuple[str, ...]]:
            state = await confirmation.master_key_state(session)
            return state, tuple(client.client_id for client in await confirmation.unproven_clients(session))

        state, client_ids = run_in_transaction(settings, look)
        _nothing_to_confirm(state)
        question = _(
            "no secret has proved REGISTRY_MASTER_KEY to be the key the secrets of API clients {clients} were hashed "
            "under; if it is not, they will never open again and each needs a new secret. Bind this database to "
            "REGISTRY_MASTER_KEY without proof?",
            clients=", ".join(client_ids),
        )
        if not _confirmed(said(question)):
            typer.echo(said(_("not confirmed: nothing was written")), err=True)
            raise typer.Exit(5)

    async def bind(ctx: RegistryContext, session: AsyncSession) -> Confirmation:
        return await confirmation.confirm(session, ctx.box, proof=None)

    confirmed = run_in_transaction(settings, bind)
    _nothing_to_confirm(confirmed.state)
    bound = _(
        "the database is now bound to REGISTRY_MASTER_KEY, without proof (the registry's token key {kid} is sealed "
        "under it); signing, `registry clients create` and `registry clients rotate-secret` work again",
        kid=confirmed.kid,
    )
    typer.echo(said(bound))
    _say_unchecked(confirmed.unchecked)


def _say_unchecked(unchecked: tuple[UncheckedClient, ...]) -> None:
    """The clients whose secrets no longer open if the key was not theirs, one a line, and what to do."""
    if not unchecked:
        return
    advice = _(
        "if REGISTRY_MASTER_KEY is not the key these API clients' secrets were hashed under, their secrets can no "
        "longer be checked (every token request with them is refused): give each a new secret with `registry "
        "clients rotate-secret CLIENT_ID`"
    )
    typer.echo(said(advice))
    for client in unchecked:
        typer.echo(f"  {client.client_id}  {client.role}  {client.name}")


def register(keys_app: typer.Typer) -> None:
    """Add these commands to ``registry keys``."""
    keys_app.command("check", epilog=_exit_codes(CHECK_EXIT_CODES))(check)
    keys_app.command("repair", epilog=_exit_codes(REPAIR_EXIT_CODES))(repair)
    keys_app.command("compromise")(compromise)
    keys_app.command("confirm-master", epilog=_exit_codes(CONFIRM_MASTER_EXIT_CODES))(confirm_master)
