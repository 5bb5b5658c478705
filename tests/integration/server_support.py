"""`registry serve` as a real process, as an operator starts it: shared by the tests that need one (or several).

The process is configured through the environment only (``REGISTRY_*``; nothing inherited from the test's own
environment), runs one in-process uvicorn worker, and is signalled by its own pid only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from registry.config import Settings
from tests.conftest import MASTER_KEY

STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc): uvicorn with one worker must have none."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: its children, theirs, and so on."""
    found = children(pid)
    return found + [below for child in found for below in descendants(child)]


def _alive(pid: int) -> bool:
    """Running (a zombie has exited; only its parent has not yet collected it)."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that serves ``settings``' database with the test master key."""
    return {
        "REGISTRY_DATABASE_URL": settings.database_url,
        "REGISTRY_MASTER_KEY": MASTER_KEY,
        "REGISTRY_PUBLIC_BASE_URL": settings.public_base_url,  # the token issuer: must match the setup app's
        "REGISTRY_DATA_DIR": str(settings.data_dir),
        "REGISTRY_ENV": "test",
        "REGISTRY_BATCH_WORKERS": str(settings.batch_worker_count),
    }


class Server:
    """`registry serve` (as `python -m cli serve`) on ``port`` (a free one by default), configured by ``env``."""

    def __init__(self, env: dict[str, str], log: Path, *, port: int | None = None, cwd: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.log = log
        self.cwd = cwd  # where ./.registry/ (the embedded default's database and development key) lives
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        # No abuse limits unless ``env`` asks for them: these tests send many requests from one address. Signing in
        # process unless ``env`` (or the suite's environment) asks for workers, as in tests/conftest.py.
        self.env = {
            **inherited,
            "REGISTRY_RATE_LIMITS_ENABLED": "false",
            "REGISTRY_BATCH_WORKERS": os.environ.get("REGISTRY_BATCH_WORKERS", "0"),
            **env,
        }
        self.process: asyncio.subprocess.Process | None = None

    @classmethod
    def for_settings(cls, settings: Settings, log: Path) -> Server:
        return cls(settings_env(settings), log)

    @classmethod
    def on_empty_sqlite(cls, folder: Path, env: dict[str, str] | None = None) -> Server:
        """A `registry serve` on an empty SQLite database in ``folder``, which it migrates itself (the HTTP layer is
        the same on both databases); ``env`` adds settings."""
        settings = Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{folder / 'registry.db'}",
            master_key=MASTER_KEY,
            public_base_url="https://registry.test",
            data_dir=folder / "data",
        )
        return cls({**settings_env(settings), **(env or {})}, folder / "server.log")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cli",
                "serve",
                "--port",
                str(self.port),
                env=self.env,
                cwd=self.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as http:
            deadline = time.monotonic() + STARTUP_SECONDS
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    break
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        pytest.fail(f"registry serve did not become ready; log:\n{self.log.read_text(errors='replace')[-4000:]}")

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections (the kernel's backlog), but nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    async def kill_9(self) -> None:
        """SIGKILL to the server's one pid. Its only children may be the batch signing workers and their fork server
        (registry.workers), which must exit on their own when it dies: nothing may outlive it."""
        assert self.process is not None
        below = descendants(self.pid)
        os.kill(self.pid, signal.SIGKILL)
        assert await asyncio.wait_for(self.process.wait(), timeout=20) == -signal.SIGKILL
        left = below
        for _ in range(100):  # up to 10 s: the fork server notices within a poll, its workers at once after it
            left = [pid for pid in left if _alive(pid)]
            if not left:
                break
            await asyncio.sleep(0.1)
        assert left == [], "processes of the killed server are still running"
        assert not accepts_connections(self.port), "something still serves on the port after the kill"

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), timeout=20)


async def live_issuer_token(app: FastAPI, http: httpx.AsyncClient, code: str = "BJ-AI-COMMITTEE") -> str:
    """The default evaluation body registered through a live server ``http``, and an issuer token that server issued
    (its clients created in the shared database as `registry clients create` does)."""
    from registry.auth.scopes import Role
    from tests.factories import create_client, create_issuer, token_for

    admin = await token_for(http, *await create_client(app, role=Role.admin))
    await create_issuer(http, admin, code=code)
    return await token_for(http, *await create_client(app, role=Role.issuer, issuer_code=code))


async def exchange(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send the raw bytes ``request`` on a new connection to ``server``; the status, headers and body of the answer
    (read until the body is complete)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines if line)}
        body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), timeout=10)
        return int(status_line.split()[1]), headers, body
    finally:
        writer.close()
