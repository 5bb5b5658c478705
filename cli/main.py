"""The ``registry`` command: serve, migrate, manage clients, export the OpenAPI document."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from cli import keys_check
from cli.database import (
    database_for_log,
    load_settings,
    migrate_database,
    run_in_transaction,
    said,
    say_migrated,
    with_database,
)
from cli.database import reader_language as reader_language
from cli.imports import IMPORT_EXIT_CODES as IMPORT_EXIT_CODES  # the import command's, named here as before too
from cli.imports import count_rows as count_rows
from cli.imports import exit_codes_help, import_file
from cli.rules_check import rules_app
from cli.status_lists import status_lists_app
from cli.usage import ReadersGroup
from registry.config import Settings, default_batch_workers
from registry.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.context import RegistryContext
    from registry.keys.schemas import TokenKeyRotated

_T = TypeVar("_T")

app = typer.Typer(
    help="Talent Registry — professional-title and skill-level certificates. Every command that uses the database "
    "says so in one line and exits 4 when the database cannot be reached (or is busy): run it again later.",
    no_args_is_help=True,
    cls=ReadersGroup,  # usage errors in the reader's language
)
clients_app = typer.Typer(help="API clients (admin, evaluation body, partner agency).", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
keys_app = typer.Typer(help="Signing keys of evaluation bodies and the registry's token key.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
keys_check.register(keys_app)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(status_lists_app, name="status-lists")
app.add_typer(rules_app, name="rules")


@app.command()
def migrate() -> None:
    """Apply every pending migration to REGISTRY_DATABASE_URL (exit 4 when the database cannot be reached, or when a
    lock another session holds kept a migration waiting past REGISTRY_MIGRATE_LOCK_TIMEOUT_SECONDS: nothing is
    migrated then; 6 when certificates were found whose status seal does not check out: they verify as 'unknown')."""
    say_migrated(with_database(migrate_database(load_settings())))


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
    database = database_for_log(settings.database_url)
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
    region: Annotated[str | None, typer.Option(help="region (partner clients): BJ, TJ or HE")] = None,
) -> None:
    """Create an API client and print {"client_id", "client_secret"}; the secret is shown only this once. The options
    are judged as the API judges a request (ClientCreate), each refusal one line in the locale's language."""
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
            typer.echo(said(_("{field}: {message}", field=error.field, message=error.message)), err=True)
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
            typer.echo(said(_("{field}: {message}", field=error.field, message=error.message)), err=True)
        raise typer.Exit(2) from None

    async def change(ctx: RegistryContext, session: AsyncSession) -> str:
        changed = await clients.set_active(
            session, caller=clients.SERVER_MACHINE, client_id=client_id, active=active, reason=body.reason
        )
        return changed.model_dump_json()

    typer.echo(run_in_transaction(load_settings(), change))


@clients_app.command("rotate-secret")
def clients_rotate_secret(
    client_id: Annotated[str, typer.Argument(help="the client whose secret to replace")],
    no_grace: Annotated[
        bool, typer.Option("--no-grace", help="end the old secret, and every token it opened, at once (a leak)")
    ] = False,
) -> None:
    """Print a new secret for an API client, an admin client included, shown only this once; the old one keeps
    opening tokens for REGISTRY_CLIENT_SECRET_GRACE_SECONDS, unless --no-grace is given or the client is disabled:
    then the old secret and every token issued before are refused at once."""
    from registry.clients import service as clients

    async def rotate(ctx: RegistryContext, session: AsyncSession) -> str:
        rotated = await clients.rotate_secret(
            ctx, session, caller=clients.SERVER_MACHINE, client_id=client_id, keep_old=not no_grace
        )
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
        typer.echo(said(_("error: {problem}", problem=_("give either --issuer CODE or --registry"))), err=True)
        raise typer.Exit(2)
    if algorithm not in {choice.value for choice in SigningAlgorithm} or (registry and algorithm != "Ed25519"):
        problem = _("--algorithm is Ed25519 or ES256, and only with --issuer")
        typer.echo(said(_("error: {problem}", problem=problem)), err=True)
        raise typer.Exit(2)
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
    from registry.db import read_one_snapshot
    from registry.transparency import integrity

    settings = load_settings()

    async def check(ctx: RegistryContext, session: AsyncSession) -> tuple[list[str], int, int]:
        await read_one_snapshot(session)  # while the registry serves: its writes commit between the reads
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
    typer.echo(said(_("audit chain intact: {records} records", records=records)))
    typer.echo(said(_("transparency log intact: {leaves} leaves", leaves=leaves)))
    typer.echo(said(_("certificate statuses agree with their history and status lists")))


app.command("import", epilog=exit_codes_help(IMPORT_EXIT_CODES))(import_file)


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
            help="base URL of a registry you trust: a credential of any other is UNKNOWN, and its JWKS is fetched "
            "from there when no --jwks is given; repeat for each (also REGISTRY_TRUSTED_REGISTRIES, separated by "
            "spaces or commas)",
        ),
    ] = None,
) -> None:
    """Check a credential: format, signature, key window, dates, status. Exits 0 only when VALID; 1 when NOT VALID or
    UNKNOWN (something could not be read or fetched, or its registry is not one you trust: the reason is printed); 2
    when it cannot run as asked."""
    from registry.credentials import sources
    from registry.credentials.report import claims_line

    lists = status_list or []
    problem = sources.offline_problem(credential=file, jwks=jwks, status_lists=lists) if offline else None
    if problem is not None:
        typer.echo(said(_("error: {problem}", problem=problem)), err=True)
        raise typer.Exit(2)
    token, unreadable = sources.load(file)
    if token is None:
        typer.echo(said(_("error: {problem}", problem=unreadable)), err=True)
        raise typer.Exit(2)
    trusted = sources.trusted_registries(trust or [], os.environ)
    report = sources.check(token, jwks=jwks, status_lists=lists, offline=offline, trusted=trusted)
    claims, lang = sources.described(token), reader_language(None)
    if claims is not None:
        typer.echo(claims_line(claims, lang))
    typer.echo(report.render(lang))
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
