"""The ``registry`` command: serve, migrate, manage clients, export the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from cli.database import (
    load_settings,
    migrate_database,
    run_in_transaction,
    with_database,
)
from registry.config import Region, Settings, default_batch_workers

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.certificates.imports import ImportSummary
    from registry.context import RegistryContext
    from registry.i18n import Language
    from registry.keys.schemas import TokenKeyRotated

_T = TypeVar("_T")

app = typer.Typer(
    help="Talent Registry — professional-title and skill-level certificates. Every command that uses the database "
    "says so in one line and exits 4 when the database cannot be reached (or is busy): run it again later.",
    no_args_is_help=True,
)
clients_app = typer.Typer(help="API clients (admin, evaluation body, partner agency).", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
keys_app = typer.Typer(help="Signing keys of evaluation bodies and the registry's token key.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@app.command()
def migrate() -> None:
    """Apply every pending migration to REGISTRY_DATABASE_URL (exit 4 when the database cannot be reached)."""
    with_database(migrate_database(load_settings()))
    typer.echo("database is at the latest revision", err=True)


def share_signing_workers(settings: Settings, *, serving_processes: int) -> None:
    """With ``REGISTRY_BATCH_WORKERS`` unset, tell every serving process (through the environment, which each reads)
    its share of the cores for signing workers, rather than each taking them all: ``--workers 16`` on 16 cores makes
    32 signing workers, not 256 (``registry.config.default_batch_workers``)."""
    if settings.batch_workers is None:
        os.environ["REGISTRY_BATCH_WORKERS"] = str(default_batch_workers(serving_processes))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Apply migrations, then serve the API (SQLite in ./.registry/ when nothing is configured). Logs are JSON lines
    on standard output (api/logs.py); request heads are bounded (api/server.py)."""
    import logging
    import logging.config

    import uvicorn

    from api.logs import log_config
    from api.server import BoundedHttpToolsProtocol

    settings = load_settings()
    derived = settings.base_url_for_serving(host, port)
    if derived is not None:  # the app (and every worker) reads its settings from the environment
        os.environ["REGISTRY_PUBLIC_BASE_URL"] = derived
        settings = load_settings()
    share_signing_workers(settings, serving_processes=workers)
    logging_settings = log_config(settings.log_level)
    logging.config.dictConfig(logging_settings)  # migrations and start-up lines are JSON too
    with_database(migrate_database(settings))
    settings.master_key_bytes  # noqa: B018 — create the development key once, before workers race to do it
    database = settings.database_url.split("@")[-1]
    logging.getLogger("registry.serve").info(
        "serving on http://%s:%d (public base URL %s; database: %s)", host, port, settings.public_base_url, database
    )
    uvicorn.run(
        "api.main:app",
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=logging_settings,
        access_log=False,  # RequestLogMiddleware writes the access log, with route templates instead of paths
        http=BoundedHttpToolsProtocol,
        proxy_headers=True,
        server_header=False,
    )


@clients_app.command("create")
def clients_create(
    role: Annotated[str, typer.Option(help="admin, issuer or partner")],
    name: Annotated[str, typer.Option(help="who the client is for")],
    issuer: Annotated[str | None, typer.Option(help="evaluation body code (issuer clients)")] = None,
    region: Annotated[Region | None, typer.Option(help="region (partner clients)")] = None,
) -> None:
    """Create an API client and print {"client_id", "client_secret"}; the secret is shown only this once."""
    from pydantic import ValidationError

    from registry.audit.service import Actor
    from registry.clients import service as clients
    from registry.clients.schemas import ClientCreate
    from registry.errors import field_errors

    settings = load_settings()
    try:
        body = ClientCreate(role=role, name=name, issuer_code=issuer, region=region)
    except ValidationError as exc:
        for error in field_errors(exc.errors(), whole="options"):
            typer.echo(f"{error.field}: {error.message}", err=True)
        raise typer.Exit(2) from None

    async def create(ctx: RegistryContext, session: AsyncSession) -> dict[str, str]:
        created = await clients.create(ctx, session, actor=Actor(id="cli"), body=body)
        return {"client_id": created.client_id, "client_secret": created.client_secret}

    result = run_in_transaction(settings, create)
    typer.echo(json.dumps(result))


@clients_app.command("disable")
def clients_disable(
    client_id: Annotated[str, typer.Argument(help="the client to disable")],
    reason: Annotated[str, typer.Option(help="why, for the audit log")],
) -> None:
    """Disable an API client, an admin client included (through the API an admin client disables only itself): it
    gets no token, and every token it holds is refused from now on, also once it is enabled again."""
    _set_client_active(client_id, active=False, reason=reason)


@clients_app.command("enable")
def clients_enable(
    client_id: Annotated[str, typer.Argument(help="the client to enable")],
    reason: Annotated[str, typer.Option(help="why, for the audit log")],
) -> None:
    """Enable a disabled API client again (the tokens it held before stay refused)."""
    _set_client_active(client_id, active=True, reason=reason)


def _set_client_active(client_id: str, *, active: bool, reason: str) -> None:
    from pydantic import ValidationError

    from registry.clients import service as clients
    from registry.clients.schemas import ClientStatusChange
    from registry.errors import field_errors

    try:
        body = ClientStatusChange(reason=reason)  # judged as the API judges it
    except ValidationError as exc:
        for error in field_errors(exc.errors(), whole="options"):
            typer.echo(f"{error.field}: {error.message}", err=True)
        raise typer.Exit(2) from None

    async def change(ctx: RegistryContext, session: AsyncSession) -> str:
        changed = await clients.set_active(
            session, caller=clients.SERVER_MACHINE, client_id=client_id, active=active, reason=body.reason
        )
        return changed.model_dump_json()

    typer.echo(run_in_transaction(load_settings(), change))


@clients_app.command("rotate-secret")
def clients_rotate_secret(client_id: Annotated[str, typer.Argument(help="the client whose secret to replace")]) -> None:
    """Print a new secret for an API client, an admin client included, shown only this once; the old one keeps
    opening tokens for REGISTRY_CLIENT_SECRET_GRACE_SECONDS."""
    from registry.clients import service as clients

    async def rotate(ctx: RegistryContext, session: AsyncSession) -> str:
        rotated = await clients.rotate_secret(ctx, session, caller=clients.SERVER_MACHINE, client_id=client_id)
        return rotated.model_dump_json()

    typer.echo(run_in_transaction(load_settings(), rotate))


@keys_app.command("rotate")
def keys_rotate(
    issuer: Annotated[str | None, typer.Option(help="evaluation body code: rotate its signing key")] = None,
    registry: Annotated[bool, typer.Option("--registry", help="rotate the registry's own token key")] = False,
    algorithm: Annotated[
        str, typer.Option(help="with --issuer: the new key's algorithm, Ed25519 or ES256 (ECDSA P-256)")
    ] = "Ed25519",
) -> None:
    """Retire a signing key and start a new one. An evaluation body's (--issuer CODE [--algorithm ES256]): the old key
    stays published for older certificates. The registry's token key (--registry, always Ed25519): its tokens are
    honoured until the last one it signed has expired; it stays published for good, for the checkpoints it signed."""
    from registry.audit.service import Actor
    from registry.issuers import service as issuers
    from registry.keys.signers import SigningAlgorithm

    if registry == (issuer is not None):
        raise typer.BadParameter("give either --issuer CODE or --registry")
    if algorithm not in {choice.value for choice in SigningAlgorithm} or (registry and algorithm != "Ed25519"):
        raise typer.BadParameter("--algorithm is Ed25519 or ES256, and only with --issuer")
    settings = load_settings()
    if issuer is None:
        rotated = run_in_transaction(settings, _rotate_registry_key)
        typer.echo(json.dumps({"registry": True, **rotated.model_dump(mode="json")}))
        return
    code = issuer

    async def rotate(ctx: RegistryContext, session: AsyncSession) -> str:
        return (await issuers.rotate_key(ctx, session, actor=Actor(id="cli"), code=code, algorithm=algorithm)).kid

    kid = run_in_transaction(settings, rotate)
    typer.echo(json.dumps({"issuer": issuer, "kid": kid, "algorithm": algorithm}))


async def _rotate_registry_key(ctx: RegistryContext, session: AsyncSession) -> TokenKeyRotated:
    from registry.audit.service import Actor
    from registry.auth import tokens

    return await tokens.rotate_key(ctx, session, actor=Actor(id="cli"))


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain and the transparency log's tree, and check every certificate's status
    against its seal and its history and every status list against its certificates; exit 1 naming the first record,
    leaf, certificate or list that does not check out."""
    from registry.audit import service as audit
    from registry.certificates import integrity as statuses
    from registry.transparency import integrity

    settings = load_settings()

    async def check(ctx: RegistryContext, session: AsyncSession) -> tuple[list[str], int, int]:
        broken = [
            await audit.first_broken_record(session),
            await integrity.first_broken_leaf(session),
            await statuses.first_status_break(session, ctx.box),
        ]
        found = [problem.describe() for problem in broken if problem is not None]
        return found, await audit.count_records(session), await integrity.count_leaves(session)

    problems, records, leaves = run_in_transaction(settings, check)
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"audit chain intact: {records} records")
    typer.echo(f"transparency log intact: {leaves} leaves")
    typer.echo("certificate statuses agree with their history and status lists")


# What `registry import` exits with (listed in its --help); 2 is also what a bad option or configuration exits with.
IMPORT_EXIT_CODES = {
    0: "every row issued (or issued by an earlier run of the same file)",
    1: "the evaluation body is unknown or may not issue (e.g. suspended); checked before the first row, so nothing "
    "is written",
    2: "cannot run as asked: a bad option or configuration, a file that cannot be read, or a header without the "
    "batch columns (the missing and unexpected ones are named); nothing is written",
    3: "some rows were rejected: they are in FILE.rejected.csv with their reasons, the other rows were issued",
    4: "the database cannot be reached; re-run the same command to carry on where it stopped",
    5: "another import of the same file (or of the same rows, or of a file with the same outputs, as roll.txt and "
    "roll.csv share roll.issued.csv) is running: this one stopped without writing over anything; once the other has "
    "ended, re-run the same command to carry on",
}


def _exit_codes_help(codes: dict[int, str]) -> str:
    return "Exit codes:\n\n" + "\n\n".join(f"{code}  {meaning}" for code, meaning in codes.items())


def reader_language(chosen: str | None, environ: Mapping[str, str] = os.environ) -> Language:
    """The language a command speaks in: ``--lang`` (zh or en, zh-CN and the like too), else the locale's, as gettext
    reads it (the first of LC_ALL, LC_MESSAGES and LANG that is set: zh_CN.UTF-8 is Chinese), else English."""
    from registry.i18n import language_of

    if chosen is not None:
        language = language_of(chosen)
        if language is None:
            raise typer.BadParameter(f"{chosen!r}: give zh or en", param_hint="--lang")
        return language
    locale = next((value for name in ("LC_ALL", "LC_MESSAGES", "LANG") if (value := environ.get(name))), "")
    return language_of(locale.split(".")[0].split("@")[0]) or "en"


def count_rows(path: Path) -> int:
    """Data rows in the file (for the progress bar's ETA): a fast line count, header excluded. A last line without
    its newline counts; a value holding a line break counts twice (the bar's total is an estimate)."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines, last = lines + block.count(b"\n"), block[-1:]
    return max(0, lines + (last != b"\n") - 1)


_LANG_HELP = "language of the reasons and errors: zh or en (default: the locale's, LC_ALL / LC_MESSAGES / LANG)"


@app.command("import", epilog=_exit_codes_help(IMPORT_EXIT_CODES))
def import_file(
    file: Annotated[Path, typer.Argument(help="CSV with the batch columns (see README)", exists=True, dir_okay=False)],
    issuer: Annotated[str, typer.Option(help="evaluation body code")],
    lang: Annotated[str | None, typer.Option("--lang", help=_LANG_HELP)] = None,
) -> None:
    """Issue every valid row of a (possibly huge) CSV in chunks; re-running resumes. Rejected rows go to
    FILE.rejected.csv with their reasons in the reader's language (--lang), issued certificates with their claim codes
    to FILE.issued.csv. The file's header and the evaluation body are checked first: if either is refused, no file is
    written. While it runs, a hidden .FILE.issued.csv.lock beside the outputs keeps another import writing them out."""
    import time

    from registry.errors import (
        ConfigurationError,
        IdempotencyKeyInFlight,
        InvalidInput,
        RegistryError,
        ServiceUnavailable,
    )
    from registry.gc_tuning import settle_garbage_collector
    from registry.i18n import _, translate

    language = reader_language(lang)
    settings = load_settings()
    started = time.monotonic()
    settle_garbage_collector()  # a long bulk run: the same collector settings as a server worker
    try:
        summary = asyncio.run(_import_with_progress(settings, file=file, issuer=issuer, started=started, lang=language))
    except ConfigurationError as exc:  # a master key that is not the database's (registry.keys.key_check)
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    except RegistryError as exc:
        typer.echo(f"error: {translate(exc.detail, language)}", err=True)
        for error in exc.errors:  # e.g. the header's missing or unreadable columns
            said = _("{field}: {message}", field=error.field, message=error.message)
            typer.echo(f"  {translate(said, language)}", err=True)
        kinds = ((InvalidInput, 2), (ServiceUnavailable, 4), (IdempotencyKeyInFlight, 5))
        raise typer.Exit(next((code for kind, code in kinds if isinstance(exc, kind)), 1)) from None
    elapsed = time.monotonic() - started
    typer.echo(
        f"rows {summary.rows}  issued {summary.issued}  already issued {summary.already_issued}  "
        f"rejected {summary.rejected}  in {elapsed:.1f}s ({summary.rows / max(elapsed, 1e-9):.0f} rows/s)"
    )
    typer.echo(f"issued certificates (with claim codes): {summary.issued_file}")
    if summary.rejected:
        typer.echo(f"rejected rows with reasons: {summary.rejected_file}")
        for reason, count in sorted(summary.reasons.items(), key=lambda item: -item[1]):
            typer.echo(f"  {count:>8}  {reason}")
    raise typer.Exit(0 if summary.rejected == 0 else 3)


async def _import_with_progress(
    settings: Settings, *, file: Path, issuer: str, started: float, lang: Language
) -> ImportSummary:
    """The import, with a database out of reach (at start or midway) raised as ServiceUnavailable."""
    from registry import faults

    try:
        return await _prepare_then_import(settings, file=file, issuer=issuer, started=started, lang=lang)
    except Exception as exc:
        fault = faults.database_fault(exc)
        if fault is None:
            raise
        raise faults.unavailable(fault) from exc


async def _prepare_then_import(
    settings: Settings, *, file: Path, issuer: str, started: float, lang: Language
) -> ImportSummary:
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from registry import workers
    from registry.certificates import imports
    from registry.context import RegistryContext
    from registry.db import create_engine, session_factory

    await migrate_database(settings)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    columns = (
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.0f} rows/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    plan = None
    try:
        plan = await imports.prepare(sessions, path=file, issuer_code=issuer)  # refused before the bar or any file
        for output, kept in plan.set_aside:  # an earlier run's file, claim codes and all, is never written over
            typer.echo(f"the earlier {output.name} is kept as {kept.name}; a new one is written", err=True)
        total = count_rows(file)
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task("import", total=total, rate=0.0)

            def advance(rows: int) -> None:
                done = progress.tasks[0].completed + rows
                rate = done / max(time.monotonic() - started, 1e-9)
                progress.update(task, advance=rows, total=max(total, done), rate=rate)  # the total is an estimate

            ctx = RegistryContext.from_settings(settings)
            return await imports.import_rows(ctx, sessions, plan, on_progress=advance, lang=lang)
    finally:
        if plan is not None:
            plan.lock.release()
        await asyncio.to_thread(workers.shutdown)  # the signing workers, if a chunk started them
        await engine.dispose()


@app.command("verify-credential")
def verify_credential(
    file: Annotated[str, typer.Argument(help="the credential (compact JWS) file")],
    jwks: Annotated[
        str | None,
        typer.Option(help="JWKS file or URL (default: fetched from the registry the credential names, if --trust-ed)"),
    ] = None,
    status_list: Annotated[
        list[str] | None,
        typer.Option(
            "--status-list",
            help="status list file or URL, repeat for each (default: the ones a verified credential names, from under "
            "its registry)",
        ),
    ] = None,
    offline: Annotated[bool, typer.Option("--offline", help="fetch nothing: --jwks, --status-list are files")] = False,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            help="base URL of a registry whose JWKS may be fetched when no --jwks is given; repeat for each "
            "(also REGISTRY_TRUSTED_REGISTRIES, separated by spaces or commas)",
        ),
    ] = None,
) -> None:
    """Check a credential: format, signature, key window, dates, status. Exits 0 only when VALID; 1 when NOT VALID or
    UNKNOWN (something could not be read or fetched, or its registry is not one you trust: the reason is printed); 2
    when it cannot run as asked."""
    from registry.credentials import sources

    lists = status_list or []
    problem = sources.offline_problem(credential=file, jwks=jwks, status_lists=lists) if offline else None
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    token, unreadable = sources.load(file)
    if token is None:
        typer.echo(f"error: {unreadable}", err=True)
        raise typer.Exit(2)
    trusted = sources.trusted_registries(trust or [], os.environ)
    report = sources.check(token, jwks=jwks, status_lists=lists, offline=offline, trusted=trusted)
    claims = sources.described(token)
    if claims is not None:
        typer.echo(f"claims     {claims} (as the credential says; the steps check them)")
    typer.echo(report.render())
    raise typer.Exit(0 if report.valid else 1)


def openapi_document() -> str:
    from api.app import create_app

    # The document depends on the code only; build it without touching any real configuration or database.
    document = create_app(
        Settings(database_url="sqlite+aiosqlite:///:memory:", master_key="00" * 32, env="test")
    ).openapi()
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


@app.command()
def openapi() -> None:
    """Print the OpenAPI document (what openapi/openapi.json must contain)."""
    sys.stdout.write(openapi_document())


def main() -> None:
    app()
