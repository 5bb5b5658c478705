"""Running the `registry` command as an operator does: a separate process, configured through the environment."""

from __future__ import annotations

import asyncio
import os
import sys

from tests.conftest import MASTER_KEY

REGISTRY = [sys.executable, "-m", "cli"]


def registry_env(database_url: str) -> dict[str, str]:
    """The environment of a command run against one test's database."""
    return {"REGISTRY_DATABASE_URL": database_url, "REGISTRY_MASTER_KEY": MASTER_KEY, "REGISTRY_ENV": "test"}


async def run_registry(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `registry <args>`."""
    process = await asyncio.create_subprocess_exec(
        *REGISTRY, *args, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
