"""``registry serve``'s start-up line names the database it serves without its credentials. A password given as a
connection option (``…/registry?password=…``) used to reach the line and be masked by the log's redaction, which took
the ``)`` closing the line with it: "(public base URL …; database: db/registry?password=[redacted]"."""

from __future__ import annotations

import json
from pathlib import Path

from registry.config import Settings
from tests.integration.server_support import Server

SECRET = "S3cretInTheQuery"


def _with_options(database_url: str, backend: str) -> str:
    """The test's database with connection options: a password (PostgreSQL; the test server trusts local
    connections, so any password opens it) and an ordinary one that must stay named."""
    if backend == "postgresql":
        return f"{database_url}?command_timeout=30&password={SECRET}"
    return database_url


async def test_the_start_up_line_names_the_database_whole_and_without_its_password(
    settings: Settings, backend: str, tmp_path: Path
) -> None:
    served = settings.model_copy(update={"database_url": _with_options(settings.database_url, backend)})
    log = tmp_path / "server.log"
    async with Server.for_settings(served, log):
        pass
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    (started,) = [line["message"] for line in lines if line.get("message", "").startswith("serving on ")]
    assert started.endswith(")"), started
    assert SECRET not in log.read_text(encoding="utf-8")
    assert "[redacted]" not in started, started
    if backend == "postgresql":
        assert started.endswith("?command_timeout=30)"), started
    else:
        assert started.endswith(f"database: {settings.database_url})"), started
