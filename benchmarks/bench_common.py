"""What the benchmark scripts share: the machine line, quiet-machine waits, databases, test rows, servers, RSS.

Not a benchmark itself; imported by ``load.py``, ``verify.py`` and ``batch.py`` (run as scripts from the repository
root, so this folder is on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

DEFAULT_DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", "/tmp/talent-registry-bench"))  # noqa: S108 - bench scratch
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
ISSUER_CODE = "BENCH-COMMITTEE"
# Title entries in force long before the award dates used below, all filed for the benchmark's evaluation body.
CATALOGUE_CODES = ("ENG-AI", "ENG-IC")
LEVELS = ("intermediate", "associate_senior", "senior")
_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰"


def machine() -> str:
    """The line the README's results table quotes."""
    return f"{platform.platform()} {os.cpu_count()}"


def code_state() -> str:
    """Which code was measured: the commit, and how many files outside benchmarks/ differ from it."""
    root = Path(__file__).resolve().parent.parent
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"
    try:
        run = functools.partial(subprocess.run, cwd=root, capture_output=True, text=True, check=True)
        head = run([git, "rev-parse", "--short", "HEAD"]).stdout.strip()
        status = run([git, "status", "--porcelain"]).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (git failed)"
    changed = [line[3:] for line in status if not line[3:].startswith("benchmarks/")]
    return f"{head}" + (f" + uncommitted changes in {len(changed)} files" if changed else "")


def loadavg() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(max_load: float, max_wait: float, *, label: str) -> float:
    """Wait (at most ``max_wait`` s) until the 1-minute load average is below ``max_load``; return the load then.

    Other people's test suites share this 2-core machine: a figure taken while they run says little.
    """
    deadline = time.monotonic() + max_wait
    load = loadavg()
    announced = False
    while load >= max_load and time.monotonic() < deadline:
        if not announced:
            print(f"  [{label}] waiting for 1-min load < {max_load} (now {load:.2f}, at most {max_wait:.0f} s)")
            announced = True
        time.sleep(5)
        load = loadavg()
    if load >= max_load:
        print(f"  [{label}] load still {load:.2f} after {max_wait:.0f} s: measuring anyway (noted in the results)")
    return load


# --- databases -----------------------------------------------------------------------------------------------------


def database_url(name: str, server: str = DEFAULT_SERVER) -> str:
    return f"{server.rstrip('/')}/{name}"


def driver_dsn(url: str) -> str:
    """The asyncpg DSN of an SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _maintenance_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"benchmark database names are letters, digits and underscores: {name!r}")
    return name


async def database_exists(url: str) -> bool:
    connection = await asyncpg.connect(_maintenance_dsn(url))
    try:
        found = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database_name(url))
    finally:
        await connection.close()
    return found is not None


async def recreate_database(url: str) -> None:
    name = database_name(url)
    connection = await asyncpg.connect(_maintenance_dsn(url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(url: str) -> None:
    connection = await asyncpg.connect(_maintenance_dsn(url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')
    finally:
        await connection.close()


async def certificate_count(url: str) -> int:
    connection = await asyncpg.connect(driver_dsn(url))
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM certificates")
    finally:
        await connection.close()
    return count


# --- the master key ------------------------------------------------------------------------------------------------


def master_key_for(data_dir: Path, name: str) -> str:
    """REGISTRY_MASTER_KEY when set, else the key generated for this benchmark database (kept beside its tokens)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    configured = os.environ.get("REGISTRY_MASTER_KEY")
    if configured:
        return configured.strip()
    path = data_dir / f"{name}.master-key"
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    key = secrets.token_hex(32)
    with path.open("x", encoding="ascii") as handle:
        handle.write(key + "\n")
    path.chmod(0o600)
    return key


def key_fingerprint(key_hex: str) -> str:
    """Enough to tell whether a database was loaded under this key, without writing the key anywhere else."""
    return hashlib.sha256(b"bench-fingerprint\x00" + bytes.fromhex(key_hex)).hexdigest()[:16]


# --- rows ----------------------------------------------------------------------------------------------------------


def resident_id(serial: int) -> str:
    """A well-formed GB 11643 number, distinct for every ``serial`` below 1000 x 20,000 days (Beijing, Chaoyang)."""
    born = date(1960, 1, 1) + timedelta(days=serial // 1000)
    first17 = f"110105{born:%Y%m%d}{serial % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(first17, _GB11643_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def holder_name(serial: int) -> str:
    given = _GIVEN[serial % len(_GIVEN)] + _GIVEN[(serial // len(_GIVEN)) % len(_GIVEN)]
    return _SURNAMES[(serial // 7) % len(_SURNAMES)] + given


def make_rows(count: int, *, offset: int = 0, batch_label: str = "2026-BJ-BENCH") -> list[dict[str, Any]]:
    """Batch rows as the JSON API takes them: every row a different holder, so none clashes with another."""
    rows: list[dict[str, Any]] = []
    for serial in range(offset, offset + count):
        rows.append(
            {
                "cert_type": "title",
                "catalogue_code": CATALOGUE_CODES[serial % len(CATALOGUE_CODES)],
                "level": LEVELS[serial % len(LEVELS)],
                "holder": {"name": holder_name(serial), "id_type": "resident_id", "id_number": resident_id(serial)},
                "awarded_on": "2026-06-30",
                "valid_until": None,
                "evaluation_batch": batch_label,
            }
        )
    return rows


def credit_code(seed: int) -> str:
    from registry.issuers.credit_code import credit_code_check_char

    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "52110000" + "".join(alphabet[(seed // 31**i) % 31] for i in range(9))
    return body + credit_code_check_char(body)


def issuer_body(seed: int = 1) -> dict[str, Any]:
    return {
        "code": ISSUER_CODE,
        "name": "北京市工程技术系列人工智能专业高级职称评审委员会（基准测试）",
        "credit_code": credit_code(seed),
        "kind": "title_committee",
        "region": "BJ",
        "scopes": [
            {
                "cert_type": "title",
                "catalogue_codes": list(CATALOGUE_CODES),
                "levels": list(LEVELS),
                "valid_from": "2020-01-01",
                "valid_until": None,
            }
        ],
    }


# --- servers -------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    frontier = [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child)
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) spent so far by ``root`` and its process tree: each live process's own time and
    what it holds of the children it has reaped (utime, stime, cutime, cstime of /proc/<pid>/stat). A process that
    exited and was reaped is counted in its parent's; none is counted twice."""
    total = 0
    for pid in [root, *descendants(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile: its time is in its parent's reaped-children counters (or soon will be)
        total += sum(int(value) for value in fields[11:15])  # stat fields 14-17
    return total / os.sysconf("SC_CLK_TCK")


async def postmaster_pid(url: str) -> int | None:
    """The pid of the PostgreSQL server behind ``url`` when it runs on this machine and its data directory is
    readable here (its postmaster.pid), else None: its CPU time can then be read from /proc."""
    connection = await asyncpg.connect(driver_dsn(url))
    try:
        data_directory: str = await connection.fetchval("SHOW data_directory")
    except asyncpg.PostgresError:  # not a superuser: the setting is hidden
        return None
    finally:
        await connection.close()
    return _pid_in(Path(data_directory) / "postmaster.pid")


def _pid_in(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


@dataclass
class Server:
    """A server process group this script started (and only that one is ever signalled)."""

    label: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """Descendants of the server process that run a Python interpreter (uvicorn's worker processes)."""
        found = descendants(self.process.pid)
        workers = []
        for pid in found:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            # uvicorn's spawn children run multiprocessing's spawn_main; the resource tracker is not a worker.
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                workers.append(pid)
        return sorted(workers)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_server(
    label: str, command: list[str], *, env: dict[str, str], port: int, log_dir: Path, ready_path: str = "/healthz"
) -> Server:
    """Start ``command`` in its own process group; return once ``ready_path`` answers 200 (or raise after 60 s)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{label}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own fixed command lines
            command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(label=label, process=process, port=port, log_path=log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{label} exited with {process.returncode}; see {log_path}")
        try:
            if httpx.get(server.base_url + ready_path, timeout=2).status_code == 200 and len(server.worker_pids()) > 0:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"{label} did not become ready in 60 s; see {log_path}")


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class RssSampler:
    """Samples VmRSS of the server's worker processes once a second while a measurement runs; keeps the peak."""

    server: Server
    peak_kib: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(1.0)

    def sample(self) -> None:
        for pid in self.server.worker_pids():
            value = rss_kib(pid)
            if value is not None:
                self.peak_kib[pid] = max(value, self.peak_kib.get(pid, 0))

    @contextlib.contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=5)
            self.sample()

    def peak_mib(self) -> float:
        return max(self.peak_kib.values(), default=0) / 1024


def start_registry(label: str, url: str, key: str, data_dir: Path) -> Server:
    """The real service as the benchmarks run it: ``registry serve --workers 2`` on loopback, no access log, no read
    replica, no rate limits, on the given database and master key."""
    registry = shutil.which("registry") or str(Path(sys.executable).with_name("registry"))
    port = free_port()
    env = {
        "REGISTRY_DATABASE_URL": url,
        "REGISTRY_MASTER_KEY": key,
        "REGISTRY_ENV": "test",
        "REGISTRY_LOG_LEVEL": "WARNING",  # no access log line per request (the baseline runs the same way)
        "REGISTRY_DATA_DIR": str(data_dir / "registry-data"),
        "REGISTRY_DATABASE_READ_URL": "",
        "REGISTRY_RATE_LIMITS_ENABLED": "false",  # one load generator on one address measures throughput, not limits
    }
    command = [registry, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    return start_server(label, command, env=env, port=port, log_dir=data_dir / "logs")
