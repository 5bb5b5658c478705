"""REGISTRY_LOG_LEVEL set to a level ``logging`` does not know (uvicorn's ``trace``, a typo) is one configuration line
naming the levels accepted, exit 2, not a traceback from `registry serve` setting up its logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.config import Settings
from tests.integration.cli_support import registry_env, run_registry


@pytest.mark.parametrize("level", ["TRACE", "verbose", ""])
async def test_an_unknown_log_level_stops_serve_in_one_line(level: str, tmp_path: Path) -> None:
    env = registry_env(f"sqlite+aiosqlite:///{tmp_path}/registry.db") | {
        "REGISTRY_LOG_LEVEL": level,
        "REGISTRY_DATA_DIR": str(tmp_path / "data"),
    }
    code, _out, err = await run_registry("serve", "--port", "1", env=env)
    assert code == 2, err
    assert "Traceback" not in err
    (line,) = err.splitlines()
    assert line.startswith("configuration error: REGISTRY_LOG_LEVEL"), line
    assert "CRITICAL, ERROR, WARNING, INFO, DEBUG" in line, line


async def test_a_known_log_level_is_read_in_any_case() -> None:
    assert Settings(log_level=" debug ").log_level == "DEBUG"
    assert Settings(log_level="Warning").log_level == "WARNING"
