"""A throw-away PostgreSQL cluster that a test creates, breaks and throws away — never the shared server.

``initdb`` into a temporary folder, trust authentication, its own port on 127.0.0.1 and its socket in its own folder,
so stopping it with ``-m immediate`` or terminating its backends touches nothing another test uses. Under root the
PostgreSQL programs run as the ``postgres`` user (they refuse to run as root). ``cluster.standby()`` adds a streaming
replica of it (``pg_basebackup -R``; initdb's trust lines already let 127.0.0.1 connect for replication).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from registry.db import create_engine
from registry.migrate import upgrade
from tests.conftest import REQUIRE_POSTGRES
from tests.integration.server_support import children, free_port

DATABASE = "registry"
# Small and quick: nothing here needs durability beyond a crash of the server process, which fsync=on does not add to.
INITDB_OPTIONS = ("-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
SERVER_OPTIONS = "-c listen_addresses=127.0.0.1 -c shared_buffers=16MB -c max_connections=200 -c fsync=off"


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl live: ``pg_config --bindir``, else the newest /usr/lib/postgresql/*/bin."""
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        answer = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)  # noqa: S603
        found = Path(answer.stdout.strip())
        if (found / "initdb").exists():
            return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return candidates[-1].parent if candidates else None


def _bindir() -> Path:
    bindir = postgres_bindir()
    if bindir is None:
        message = "no PostgreSQL server programs (initdb, pg_ctl) on this machine"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " — REGISTRY_TEST_REQUIRE_POSTGRES=1 makes throw-away clusters mandatory")
        pytest.skip(message)
    return bindir


class ThrowAwayCluster:
    """``async with ThrowAwayCluster.running() as cluster:`` — a migrated database at ``cluster.url``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tr-cluster-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    @classmethod
    @asynccontextmanager
    async def running(cls) -> AsyncIterator[ThrowAwayCluster]:
        cluster = cls(_bindir())
        try:
            await cluster._run("initdb", "-D", str(cluster.data), *INITDB_OPTIONS)
            await cluster.start()
            admin = await asyncpg.connect(cluster.dsn("postgres"))
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
            await admin.close()
            engine = create_engine(cluster.url)
            await upgrade(engine)
            await engine.dispose()
            yield cluster
        finally:
            await cluster._run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "stop", check=False)
            shutil.rmtree(cluster.root, ignore_errors=True)

    @asynccontextmanager
    async def standby(self) -> AsyncIterator[ThrowAwayCluster]:
        """A hot standby of this cluster on a port of its own, streaming from it (``pg_basebackup -R``): read-only,
        replaying what this one commits. Stopped and removed afterwards."""
        replica = ThrowAwayCluster(self.bindir)
        try:
            source = ("-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres")
            # -c fast: checkpoint at once rather than spread out; -X stream: the WAL written meanwhile comes along;
            # -N: no fsync of the copy (like the clusters' initdb --no-sync).
            copy = ("-R", "-X", "stream", "-c", "fast", "-N")
            await replica._run("pg_basebackup", "-D", str(replica.data), *source, *copy)
            await replica.start()
            yield replica
        finally:
            with contextlib.suppress(OSError, ValueError):  # a frozen server would never hear pg_ctl stop
                replica.thaw()
            await replica._run("pg_ctl", "-D", str(replica.data), "-m", "immediate", "stop", check=False)
            shutil.rmtree(replica.root, ignore_errors=True)

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    async def _run(self, program: str, *args: str, check: bool = True) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._as_user,
            str(self.bindir / program),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if check and process.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            pytest.fail(f"{program} failed ({process.returncode}): {output.decode(errors='replace')}\n{log}")

    async def start(self) -> None:
        """Start and wait until it accepts connections (``-w``)."""
        options = f"-p {self.port} -k {self.root} {SERVER_OPTIONS}"
        await self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    async def stop_immediately(self) -> None:
        """``pg_ctl stop -m immediate``: every backend dies at once, no checkpoint; the next start replays the WAL."""
        await self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def freeze(self) -> None:
        """SIGSTOP to the server and each of its processes: connections open, and pooled ones stay open, but nothing
        answers — a server that hangs, or a network that drops its packets, rather than one that refuses at once."""
        postmaster = self._postmaster()
        self._signal([postmaster], signal.SIGSTOP)  # first: a stopped postmaster starts no new backend
        self._signal(children(postmaster), signal.SIGSTOP)

    def thaw(self) -> None:
        postmaster = self._postmaster()
        self._signal(children(postmaster), signal.SIGCONT)
        self._signal([postmaster], signal.SIGCONT)

    def _postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    @staticmethod
    def _signal(pids: list[int], signum: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # a backend that ended meanwhile
                os.kill(pid, signum)

    async def terminate_backends(self) -> list[int]:
        """``pg_terminate_backend`` on every other backend connected to the registry's database: the pids signalled.
        It returns at once; the backends exit a moment later (``wait_until_exited``)."""
        admin = await asyncpg.connect(self.dsn("postgres"), timeout=5)
        try:
            rows = await admin.fetch(  # the function in the select list: called only for the rows the WHERE keeps
                "SELECT pid, pg_terminate_backend(pid) AS signalled FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                DATABASE,
            )
        finally:
            await admin.close()
        return [int(row["pid"]) for row in rows if row["signalled"]]

    async def wait_until_exited(self, pids: list[int]) -> None:
        """Until none of ``pids`` is a backend any more (their sockets closed); at most 10 s."""
        admin = await asyncpg.connect(self.dsn("postgres"), timeout=5)
        try:
            deadline = time.monotonic() + 10.0
            while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids):
                assert time.monotonic() < deadline, f"backends {pids} still there after 10 s"
                await asyncio.sleep(0.01)
        finally:
            await admin.close()
