"""nginx running the shipped ``deploy/nginx/talent-registry.conf`` in front of a registry, as a child process.

Shared by ``tests/integration/test_proxy_config.py`` and ``benchmarks/proxy.py`` (standard library only). The site file
is used as shipped except for the five lines it says are local (the upstream address, the two listen lines, the cache
folder, the access log's file, beside which the harness logs each answer's cache status, and the error log's file);
each must be found exactly once, so a config that drifts from this harness fails loudly instead of being tested
half-replaced. The http { } around it is Debian's, with its ``combined`` access log (``main_config``). nginx gets its
own prefix, temp folders, pid file and main error log (``error.log``, at ``warn``) under ``root``, runs in the
foreground (``daemon off``), and only the process this harness started is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "talent-registry.conf"
UPSTREAM_LINE = "server 127.0.0.1:8000 max_fails=0;"
LISTEN_LINE = "listen 80;"
LISTEN6_LINE = "listen [::]:80;"
CACHE_FOLDER = "/var/cache/nginx/talent-registry"
SITE_LOG = "access_log /var/log/nginx/talent-registry.access.log "
SITE_ERROR_LOG = "error_log /var/log/nginx/talent-registry.error.log "
STARTUP_SECONDS = 15


def render_site(
    *, listen_port: int, upstream_port: int, cache_dir: Path, log_dir: Path, shipped: Path = SHIPPED_CONFIG
) -> str:
    """The shipped site with this run's ports, cache folder and log folder (``talent-registry.access.log`` and
    ``talent-registry.error.log``, the site's own logs, and ``cache-status.log``, ``$upstream_cache_status $status``
    of each answer for the harness)."""
    text = shipped.read_text(encoding="utf-8")
    for line in (UPSTREAM_LINE, LISTEN_LINE, LISTEN6_LINE, CACHE_FOLDER, SITE_LOG, SITE_ERROR_LOG):
        found = text.count(line)
        if found != 1:
            raise ValueError(f"{shipped} has {found} occurrences of {line!r}; the harness replaces exactly one")
    text = text.replace(UPSTREAM_LINE, f"server 127.0.0.1:{upstream_port} max_fails=0;")
    text = text.replace(LISTEN_LINE, f"listen 127.0.0.1:{listen_port};")
    text = text.replace(LISTEN6_LINE, f"listen [::1]:{listen_port};")
    own_log = f"access_log {log_dir}/cache-status.log cache_status buffer=64k flush=1s;"
    text = text.replace(SITE_LOG, f"{own_log}\n    access_log {log_dir}/talent-registry.access.log ")
    text = text.replace(SITE_ERROR_LOG, f"error_log {log_dir}/talent-registry.error.log ")
    return text.replace(CACHE_FOLDER, str(cache_dir))


def main_config(root: Path, site: Path, *, workers: int, access_log: bool) -> str:
    """What Debian's /etc/nginx/nginx.conf provides around the site, confined to ``root``: its http-wide
    ``access_log`` (``access.log``, format ``combined``), which a site without an access_log of its own writes to."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp folders under root's tmp dir
    log = f"access_log {root}/access.log combined;" if access_log else "access_log off;"
    temp = " ".join(
        f"{name}_temp_path {root}/temp/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes {workers};\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "  log_format cache_status '$upstream_cache_status $status';\n"
        f"  {log}\n  {temp}\n  include {site};\n}}\n"
    )


class Nginx:
    """``nginx -g 'daemon off;'`` with the shipped site on ``port``, proxying to a registry on ``upstream_port``."""

    def __init__(self, binary: str, root: Path, *, port: int, upstream_port: int, workers: int = 1) -> None:
        self.binary = binary
        self.root = root
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        (root / "temp").mkdir(parents=True, exist_ok=True)
        (root / "cache").mkdir(exist_ok=True)
        self.site = root / "talent-registry.conf"
        self.site.write_text(
            render_site(listen_port=port, upstream_port=upstream_port, cache_dir=root / "cache", log_dir=root),
            encoding="utf-8",
        )
        self.config = root / "nginx.conf"
        self.config.write_text(main_config(root, self.site, workers=workers, access_log=True), encoding="utf-8")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url6(self) -> str:
        """The same site over IPv6 (the shipped ``listen [::]:80;``, moved to ``[::1]``)."""
        return f"http://[::1]:{self.port}"

    def _command(self, *extra: str) -> list[str]:
        return [self.binary, "-p", str(self.root), "-c", str(self.config), "-e", str(self.root / "error.log"), *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t``: the configuration parses and every directive is accepted."""
        return subprocess.run(self._command("-t"), capture_output=True, text=True, timeout=30, check=False)  # noqa: S603

    def start(self) -> None:
        log = (self.root / "stderr.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own fixed command line
            self._command("-g", "daemon off;"), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.errors()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on {self.port} within {STARTUP_SECONDS} s:\n{self.errors()}")

    def errors(self) -> str:
        parts = [
            p.read_text(errors="replace") for p in (self.root / "stderr.log", self.root / "error.log") if p.exists()
        ]
        return "\n".join(parts)[-4000:]

    def cache_statuses(self) -> dict[str, int]:
        """How many requests got each ``$upstream_cache_status`` (HIT, MISS, EXPIRED, UPDATING, REVALIDATED, BYPASS; "-"
        when the location does not cache), from the harness's log (flushed at least once a second)."""
        counts: dict[str, int] = {}
        path = self.root / "cache-status.log"
        if path.exists():
            for line in path.read_text(encoding="ascii", errors="replace").splitlines():
                status = line.split(" ", 1)[0]
                counts[status] = counts.get(status, 0) + 1
        return counts

    def stop(self) -> None:
        """SIGQUIT (graceful: workers finish and flush their logs), then SIGKILL to the group if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGQUIT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
