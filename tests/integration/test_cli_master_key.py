"""Every command that uses the database refuses, in one line and exit 2, under a master key that does not open the
database's secrets: migrate (and serve), the clients commands, import."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.config import Settings
from registry.db import create_engine, session_factory, transaction
from registry.keys.secrets_box import SecretsBox
from registry.keys.service import registry_token_key
from tests.conftest import MASTER_KEY
from tests.integration.cli_support import registry_env, run_registry

OTHER_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff"


@pytest.mark.parametrize(
    "command",
    [("migrate",), ("clients", "create", "--role", "admin", "--name", "ops"), ("import", "rows.csv", "--issuer", "X")],
)
async def test_a_command_under_another_master_key_refuses_in_one_line(
    settings: Settings, command: tuple[str, ...], tmp_path: Path
) -> None:
    (tmp_path / "rows.csv").write_text("id_number\n", encoding="utf-8")
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            await registry_token_key(session, SecretsBox.from_master_key(bytes.fromhex(MASTER_KEY)))
    finally:
        await engine.dispose()

    env = {**registry_env(settings.database_url), "REGISTRY_MASTER_KEY": OTHER_KEY}
    code, out, err = await run_registry(*(str(tmp_path / a) if a == "rows.csv" else a for a in command), env=env)

    assert code == 2
    lines = [line for line in err.splitlines() if line.strip() and '"level":"INFO"' not in line]
    assert lines == [
        "configuration error: REGISTRY_MASTER_KEY is not the key this database's secrets are sealed with "
        "(a signing key does not open with it); start with the key the database was made with"
    ]
    assert OTHER_KEY not in out + err
    assert MASTER_KEY not in out + err
