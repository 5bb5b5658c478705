"""Usage errors (a missing argument, an unknown option, a value of the wrong type, an unknown command) in the reader's
language: Click words them in English inside Typer's box; a reader whose language is not English (``--lang``, else the
locale: cli.database.reader_language) gets them as every other refusal of the command is said, in one line, with a
second one naming the command's ``--help``. Exit 2 either way; in English the box stays exactly as Typer draws it."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from cli.database import reader_language
from registry.i18n import Language, Message, _, language_of, translate, validation_message

# The Click that Typer runs on and raises the usage errors of: its own copy from Typer 0.29 on (typer._click), Click
# itself before.
clicks: Any = importlib.import_module(typer.BadParameter.__module__)
_LANGUAGE = "registry.reader_language"  # where the root context keeps the reader's language for the subcommands
# Click's and Typer's own words for the usage errors that carry nothing but their message.
_NO_SUCH_COMMAND = re.compile(r"No such command (?P<name>.+?)\.(?: Did you mean (?P<near>.+)\?)?")
_EXTRA_ARGUMENTS = re.compile(r"Got unexpected extra argument(?:s|\(s\))? \((?P<extra>.*)\)")


class ReadersGroup(TyperGroup):
    """The ``registry`` command's group: usage errors met while its arguments are read, or any subcommand's, are
    said in the reader's language (``usage_problem``)."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        language = asked_language(args)
        with _said_to(language):
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        ctx.meta[_LANGUAGE] = language
        return ctx

    def invoke(self, ctx: Any) -> Any:
        with _said_to(ctx.meta.get(_LANGUAGE, "en")):
            return super().invoke(ctx)


def asked_language(args: Sequence[str]) -> Language:
    """The reader's language for a usage error: ``--lang zh`` (or ``--lang=zh``) anywhere in the arguments when it
    names zh or en, else the locale's. Given twice, the last one, as the command itself takes the last."""
    asked: Language | None = None
    for position, arg in enumerate(args):
        chosen = arg.removeprefix("--lang=") if arg.startswith("--lang=") else None
        if arg == "--lang" and position + 1 < len(args):
            chosen = args[position + 1]
        if chosen is not None and (language := language_of(chosen)) is not None:
            asked = language
    return reader_language(None) if asked is None else asked


@contextmanager
def _said_to(language: Language) -> Iterator[None]:
    try:
        yield
    except clicks.UsageError as exc:
        if language == "en" or type(exc).__name__ == "NoArgsIsHelpError":  # NoArgsIsHelpError: the help, as asked
            raise
        typer.echo(translate(_("error: {problem}", problem=usage_problem(exc)), language), err=True)
        if exc.ctx is not None and exc.ctx.command.get_help_option(exc.ctx) is not None:
            command = f"{exc.ctx.command_path} {exc.ctx.help_option_names[0]}"
            typer.echo(translate(_("for how to use it, run: {command}", command=command), language), err=True)
        raise typer.Exit(exc.exit_code) from None


def usage_problem(exc: Any) -> str:
    """What a usage error says, as a message (``_``) naming the option, argument or command: Click's English words
    only where it gave nothing else to go on."""
    if isinstance(exc, clicks.MissingParameter):
        name = _parameter(exc.param, exc.param_hint)
        kind = exc.param_type or (exc.param.param_type_name if exc.param is not None else "")
        if kind == "argument":
            return _("missing argument {name}", name=name)
        return _("missing option {name}", name=name) if kind == "option" else _("missing {name}", name=name)
    if isinstance(exc, clicks.BadParameter):
        return _("invalid value for {name}: {reason}", name=_parameter(exc.param, exc.param_hint), reason=_reason(exc))
    if isinstance(exc, clicks.NoSuchOption):
        if exc.possibilities:
            near = ", ".join(exc.possibilities)
            return _("no such option: {name} (did you mean {near}?)", name=exc.option_name, near=near)
        return _("no such option: {name}", name=exc.option_name)
    if isinstance(exc, clicks.BadOptionUsage):
        if "does not take a value" in exc.message:
            return _("option {name} takes no value", name=exc.option_name)
        return _("option {name} needs a value", name=exc.option_name)
    return _worded(exc.message)


def _worded(message: str) -> str:
    if (command := _NO_SUCH_COMMAND.fullmatch(message)) is not None:
        if command["near"]:
            return _("no such command: {name} (did you mean {near}?)", name=command["name"], near=command["near"])
        return _("no such command: {name}", name=command["name"])
    if (extra := _EXTRA_ARGUMENTS.fullmatch(message)) is not None:
        return _("unexpected extra arguments: {extra}", extra=extra["extra"])
    return message


def _parameter(param: Any, hint: Sequence[str] | str | None) -> str:
    """An option by its flags (``--issuer``), an argument by its name in capitals (``FILE``)."""
    if hint:
        return hint if isinstance(hint, str) else " / ".join(hint)
    if param is None:
        return ""
    if param.param_type_name == "option":
        return " / ".join(param.opts)
    return (param.name or "").upper()


def _reason(exc: Any) -> str:
    """Why a value was refused: our own message (``--lang``), what pydantic found wrong (Typer converts values
    with it), or Click's words."""
    if isinstance(exc.message, Message):
        return exc.message
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        return validation_message(cause.errors()[0])
    return str(exc.message)
