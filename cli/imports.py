"""``registry import``: a (possibly huge) CSV issued in chunks, with a progress bar and a summary, every line for people
in the reader's language (``--lang``, else the locale: cli.database.reader_language). Registered in cli.main."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.database import IMPORT_APPLICATION, load_settings, migrate_database, reader_language, said
from registry.config import Settings
from registry.i18n import _
from registry.os_reasons import os_reason

if TYPE_CHECKING:
    from registry.certificates.imports import ImportSummary
    from registry.i18n import Language

# What `registry import` exits with (listed in its --help); 2 is also what a bad option or configuration exits with.
IMPORT_EXIT_CODES = {
    0: "every row issued (or issued by an earlier run of the same file)",
    1: "the evaluation body is unknown or may not issue (e.g. suspended); checked before the first row, so nothing "
    "is written",
    2: "cannot run as asked: a bad option or configuration, a file that cannot be read, or a header without the "
    "batch columns (the missing and unexpected ones are named); nothing is written",
    3: "some rows were rejected: they are in FILE.rejected.csv with their reasons, the other rows were issued",
    4: "the database cannot be reached or is busy (stopped midway, it names the rows committed before and whether "
    "the chunk under way was); re-run the same command to carry on where it stopped: no row is issued twice",
    5: "another import of the same file (or of the same rows, or of a file with the same outputs, as roll.txt and "
    "roll.csv share roll.issued.csv) is running: this one stopped without writing over anything; once the other has "
    "ended, re-run the same command to carry on",
    6: "an output file could not be written midway (e.g. a full disk): it names the rows committed, whose claim codes "
    "may be missing from FILE.issued.csv; make room and re-run the same command: it writes them again, and no row is "
    "issued twice",
    7: "the file stopped being readable midway (an input/output error, a file system gone, or the file cut short, "
    "written to, touched, moved or replaced while being read, or its last line without a line break, as in an export "
    "still being written): it names the rows committed, whose claim codes are in "
    "FILE.issued.csv, and issues nothing of the rows it was reading; once the file can be read whole, re-run the same "
    "command to carry on: no row is issued twice",
}


def exit_codes_help(codes: dict[int, str]) -> str:
    return "Exit codes:\n\n" + "\n\n".join(f"{code}  {meaning}" for code, meaning in codes.items())


def count_rows(path: Path) -> int:
    """Data rows in the file (for the progress bar's ETA): a fast line count, header excluded. A last line without
    its newline counts; a value holding a line break counts twice (the bar's total is an estimate). A file that cannot
    be read through (an input/output error) stops the import before its first row, as a read midway would (exit 7)."""
    from registry.certificates import import_stops, imports
    from registry.errors import InputNotRead

    lines, last = 0, b"\n"
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                lines, last = lines + block.count(b"\n"), block[-1:]
    except OSError as exc:
        nothing = imports.ImportSummary()
        raise InputNotRead(import_stops.not_read(nothing, path=path, reason=os_reason(exc))) from exc
    return max(0, lines + (last != b"\n") - 1)


_LANG_HELP = "language of the reasons and errors: zh or en (default: the locale's, LC_ALL / LC_MESSAGES / LANG)"


def import_file(
    file: Annotated[Path, typer.Argument(help="CSV with the batch columns (see README)")],
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
        InputNotRead,
        InvalidInput,
        OutputsNotWritten,
        RegistryError,
        ServiceUnavailable,
    )
    from registry.gc_tuning import settle_garbage_collector
    from registry.i18n import message_of

    language = reader_language(lang)
    _refuse_unreadable(file, language)
    settings = load_settings(language)
    started = time.monotonic()
    settle_garbage_collector()  # a long bulk run: the same collector settings as a server worker
    try:
        summary = asyncio.run(_import_with_progress(settings, file=file, issuer=issuer, started=started, lang=language))
    except ConfigurationError as exc:  # a master key that is not the database's (registry.keys.key_check)
        typer.echo(said(_("configuration error: {problem}", problem=message_of(exc)), language), err=True)
        raise typer.Exit(2) from None
    except OutputsNotWritten as exc:  # e.g. a full disk midway: what was committed, and that a re-run writes it
        typer.echo(said(_("error: {problem}", problem=exc.detail), language), err=True)
        raise typer.Exit(6) from None
    except InputNotRead as exc:  # e.g. EIO midway, the file cut short: what was committed, and that a re-run carries on
        typer.echo(said(_("error: {problem}", problem=exc.detail), language), err=True)
        raise typer.Exit(7) from None
    except RegistryError as exc:
        typer.echo(said(_("error: {problem}", problem=exc.detail), language), err=True)
        for error in exc.errors:  # e.g. the header's missing or unreadable columns
            problem = _("{field}: {message}", field=error.field, message=error.message)
            typer.echo(f"  {said(problem, language)}", err=True)
        kinds = ((InvalidInput, 2), (ServiceUnavailable, 4), (IdempotencyKeyInFlight, 5))
        raise typer.Exit(next((code for kind, code in kinds if isinstance(exc, kind)), 1)) from None
    _print_summary(summary, elapsed=time.monotonic() - started, lang=language)
    raise typer.Exit(0 if summary.rejected == 0 else 3)


def _refuse_unreadable(file: Path, lang: Language) -> None:
    """A file that cannot be opened for reading (missing, a folder, not ours to read), or a pipe or a device (looked at
    without opening it: that would wait for a FIFO's writer), is one line in the reader's language and exit 2, before
    the configuration or the database is looked at (as an empty file is refused)."""
    from registry.spreadsheets import NOT_A_FILE, streamed

    try:
        if not streamed(file):
            with file.open("rb"):
                return
        message = NOT_A_FILE
    except OSError as exc:
        message = _("cannot be read: {reason}", reason=os_reason(exc))
    problem = _("{field}: {message}", field=str(file), message=message)
    typer.echo(said(_("error: {problem}", problem=problem), lang), err=True)
    raise typer.Exit(2) from None


def _print_summary(summary: ImportSummary, *, elapsed: float, lang: Language) -> None:
    """The summary after the bar: the counts, the output files, and how many reasons named each field. ``--lang en``
    (or an English locale) keeps the English lines (README, "Bulk import")."""
    seconds, rate = f"{elapsed:.1f}", f"{summary.rows / max(elapsed, 1e-9):.0f}"
    counts = _(
        "rows {rows}  issued {issued}  already issued {already_issued}  rejected {rejected}  in {seconds}s "
        "({rate} rows/s)",
        rows=summary.rows,
        issued=summary.issued,
        already_issued=summary.already_issued,
        rejected=summary.rejected,
        seconds=seconds,
        rate=rate,
    )
    typer.echo(said(counts, lang))
    typer.echo(said(_("issued certificates (with claim codes): {path}", path=summary.issued_file), lang))
    if summary.rejected:
        typer.echo(said(_("rejected rows with reasons: {path}", path=summary.rejected_file), lang))
        for reason, count in sorted(summary.reasons.items(), key=lambda item: -item[1]):
            typer.echo(f"  {count:>8}  {reason}")


async def _import_with_progress(
    settings: Settings, *, file: Path, issuer: str, started: float, lang: Language
) -> ImportSummary:
    """The import, with a database out of reach (at start or midway) raised as ServiceUnavailable. Midway, the import
    itself says which rows its chunks committed before (registry.certificates.import_stops): kept as it said it."""
    from registry import faults
    from registry.errors import InputNotRead, OutputsNotWritten, RegistryError

    try:
        return await _prepare_then_import(settings, file=file, issuer=issuer, started=started, lang=lang)
    except (RegistryError, InputNotRead, OutputsNotWritten):  # said already, whatever OSError lies beneath
        raise
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

    # A wait for a lock (a LOCK TABLE, a migration begun meanwhile) stops the import, saying what it committed (exit 4),
    # rather than holding it without a word for as long as the other work; a chunk that is merely slow runs to its end.
    await migrate_database(settings, lang, lock_timeout=settings.import_lock_timeout_seconds)
    engine = create_engine(
        settings.database_url, lock_timeout=settings.import_lock_timeout_seconds, application_name=IMPORT_APPLICATION
    )
    sessions = session_factory(engine)
    columns = (
        TextColumn("[bold]" + said(_("importing"), lang)),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.0f} " + said(_("rows/s"), lang)),
        TimeElapsedColumn(),
        TextColumn(said(_("ETA"), lang)),
        TimeRemainingColumn(),
    )
    plan = None
    try:
        plan = await imports.prepare(sessions, path=file, issuer_code=issuer)  # refused before the bar or any file
        for output, kept in plan.set_aside:  # an earlier run's file, claim codes and all, is never written over
            kept_aside = _(
                "the earlier {output} is kept as {kept}; a new one is written", output=output.name, kept=kept.name
            )
            typer.echo(said(kept_aside, lang), err=True)
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
