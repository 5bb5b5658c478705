"""Review of 5d7bebd: ``cli.database.database_for_log`` says the start-up line names the database "never the user,
the password or an option holding a credential", and the commit "host, port, database and harmless options only".
A role given as a connection option (``…/registry?user=…``, as libpq and asyncpg accept it) is written to the log."""

from __future__ import annotations

from cli.database import database_for_log


def test_a_user_given_as_a_connection_option_is_not_named_in_the_start_up_line() -> None:
    named = database_for_log("postgresql+asyncpg://db.example:5432/registry?user=registry_owner&ssl=require")
    assert "registry_owner" not in named, named
    assert named == "db.example:5432/registry?ssl=require"
