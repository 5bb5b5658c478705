"""`registry rules check`: which stored recognition rules a new rule like them would be refused for — kept before a
check was added — so that an operator can revise or retire each. The judgement is ``registry.recognition.rule_check``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli.database import load_settings, run_in_transaction, said
from registry.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry.context import RegistryContext
    from registry.recognition.rule_check import RuleCheck

CHECK_EXIT_CODES = {
    0: "every rule in force or scheduled passes the checks a new rule gets",
    1: "some rule does not (each named, with every reason): revise or retire it",
    2: "cannot run as asked: a bad option or configuration",
    4: "the database cannot be reached",
}

rules_app = typer.Typer(help="Recognition rules.", no_args_is_help=True)


@rules_app.command(
    "check", epilog="Exit codes:\n\n" + "\n\n".join(f"{code}  {meaning}" for code, meaning in CHECK_EXIT_CODES.items())
)
def check() -> None:
    """Judge every recognition rule in force or scheduled as a new rule is judged (POST /v1/recognition/rules) and
    name each that fails, with every reason: rules kept before a check was added. Writes nothing."""
    from registry.recognition import rule_check

    async def read(ctx: RegistryContext, session: AsyncSession) -> RuleCheck:
        return await rule_check.check_stored(session)

    judged = run_in_transaction(load_settings(), read)
    for failing in judged.failing:
        for line in failing.describe():
            typer.echo(said(line))
    summary = _(
        "{checked} rules in force or scheduled checked: {failing} fail the checks a new rule gets (revise them: POST "
        "/v1/recognition/rules/{{id}}/revise, or retire them)",
        checked=judged.checked,
        failing=len(judged.failing),
    )
    typer.echo(said(summary))
    raise typer.Exit(1 if judged.failing else 0)
