"""deploy/README.md "Installing it", followed literally on a Debian machine with nginx-light just installed.

The machine is Debian's layout confined to a temp folder: /etc/nginx with Debian's nginx.conf (its http-wide
``combined`` access log, ``include conf.d/*.conf`` and ``include sites-enabled/*``) and the ``default`` site that
nginx-light enables (``listen 80 default_server; server_name _;``), /var/log/nginx and /var/lib/nginx, and a /var/cache
without an nginx folder (the package makes none). Port 80 is a free port, in both sites alike. The block's commands run
as written, with only their absolute paths moved under the temp folder, ``apt-get`` left out (the package is there)
and ``systemctl reload nginx`` replaced by starting this nginx; the "edit:" step changes the upstream's ``server``
line to the registry's port and, as port 80 is moved, the ``listen`` line to the same moved port. Then the registry
must answer through nginx, and a scan's token must not reach Debian's ``combined`` log.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.checks import require_tool
from tests.integration.nginx_support import STARTUP_SECONDS
from tests.integration.server_support import Server, accepts_connections, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_README = ROOT / "deploy" / "README.md"
UPSTREAM_LINE = "server 127.0.0.1:8000 max_fails=0;"


def install_block() -> list[str]:
    text = DEPLOY_README.read_text(encoding="utf-8")
    section = text[text.index("## Installing it") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "deploy/README.md 'Installing it' has no sh block"
    return block.group(1).splitlines()


def debian_machine(root: Path, port: int) -> None:
    """Debian's nginx.conf and default site, under ``root`` (no /var/cache/nginx: nginx-light makes none)."""
    etc = root / "etc" / "nginx"
    for folder in (etc / "conf.d", etc / "sites-available", etc / "sites-enabled", root / "var" / "log" / "nginx"):
        folder.mkdir(parents=True)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / "var" / "lib" / "nginx" / name).mkdir(parents=True)
    (root / "var" / "cache").mkdir()
    (root / "var" / "www" / "html").mkdir(parents=True)
    (root / "run").mkdir()
    user = "root" if os.geteuid() == 0 else "nobody"
    temp = " ".join(
        f"{n}_temp_path {root}/var/lib/nginx/{n};" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (etc / "nginx.conf").write_text(
        f"user {user};\nworker_processes 1;\npid {root}/run/nginx.pid;\nerror_log {root}/var/log/nginx/error.log;\n"
        "events { worker_connections 768; }\n"
        "http {\n  sendfile on;\n  default_type application/octet-stream;\n"
        f"  access_log {root}/var/log/nginx/access.log;\n  {temp}\n"
        f"  include {root}/etc/nginx/conf.d/*.conf;\n  include {root}/etc/nginx/sites-enabled/*;\n}}\n",
        encoding="utf-8",
    )
    (etc / "sites-available" / "default").write_text(
        f"server {{\n  listen {port} default_server;\n  root {root}/var/www/html;\n  index index.html;\n"
        "  server_name _;\n  location / {\n    try_files $uri $uri/ =404;\n  }\n}\n",
        encoding="utf-8",
    )
    (etc / "sites-enabled" / "default").symlink_to(etc / "sites-available" / "default")


def on_this_machine(command: str, root: Path, nginx: str) -> str:
    """A line of the block, with its absolute paths moved under ``root`` and ``nginx`` this nginx on that layout."""
    command = re.sub(r"(?<![\w./-])/(etc/nginx|var)/", lambda m: f"{root}/{m.group(1)}/", command)
    command = command.replace("systemctl reload nginx", "true")
    return re.sub(r"(?<![\w./-])nginx(?= -)", f"{nginx} -p {root} -c {root}/etc/nginx/nginx.conf", command)


def operator_edit(root: Path, *, port: int, upstream_port: int) -> None:
    """The "edit:" step: the upstream's server line, and the listen line to where port 80 went on this machine; the
    cache folder and log files keep their places (moved under ``root`` like every path of the machine)."""
    site = root / "etc" / "nginx" / "conf.d" / "talent-registry.conf"
    text = site.read_text(encoding="utf-8")
    assert text.count(UPSTREAM_LINE) == 1
    assert text.count("listen 80;") == 1
    assert text.count("listen [::]:80;") == 1
    text = text.replace(UPSTREAM_LINE, f"server 127.0.0.1:{upstream_port} max_fails=0;")
    text = text.replace("listen 80;", f"listen {port};")
    text = text.replace("listen [::]:80;", f"listen [::1]:{port};")
    text = re.sub(r"(?<![\w./-])/var/", f"{root}/var/", text)
    site.write_text(text, encoding="utf-8")


def follow_the_install_block(root: Path, nginx: str, *, port: int, upstream_port: int) -> None:
    for line in install_block():
        command = line.split("#", 1)[0].strip()
        if line.lstrip().startswith("# edit"):
            operator_edit(root, port=port, upstream_port=upstream_port)
            continue
        if not command or command.startswith("apt-get "):
            continue
        ran = run_documented(command, root, nginx)
        assert ran.returncode == 0, f"`{command}` failed on a fresh Debian nginx-light:\n{ran.stdout}{ran.stderr}"


def run_documented(command: str, root: Path, nginx: str) -> subprocess.CompletedProcess[str]:
    """One command of a deploy/README block as an operator runs it, its paths moved under ``root``."""
    return subprocess.run(  # noqa: S603 - the documented command, paths moved under root
        ["bash", "-euc", on_this_machine(command, root, nginx)],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@asynccontextmanager
async def debian_nginx(root: Path, nginx: str, *ports: int) -> AsyncIterator[None]:
    """This nginx on the Debian layout under ``root``, until every one of ``ports`` takes connections (or it exits)."""
    command = [nginx, "-p", str(root), "-c", str(root / "etc/nginx/nginx.conf"), "-g", "daemon off;"]
    process = await asyncio.create_subprocess_exec(*command, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(STARTUP_SECONDS * 20):
            if all(accepts_connections(port) for port in ports) or process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        yield
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)


async def test_the_documented_install_on_debian_serves_the_registry_and_keeps_tokens_out_of_debians_log(
    tmp_path: Path,
) -> None:
    nginx = require_tool("nginx", "nginx-light")
    root, port = tmp_path / "machine", free_port()
    debian_machine(root, port)
    (tmp_path / "registry").mkdir()
    async with Server.on_empty_sqlite(tmp_path / "registry") as server:
        follow_the_install_block(root, nginx, port=port, upstream_port=server.port)
        async with (
            debian_nginx(root, nginx, port),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as through,
        ):
            health = await through.get("/healthz", headers={"Host": "registry.example.gov.cn"})
            scan = await through.get("/v1/verify/QrTokenOfAScannedCertificate1")
    assert health.status_code == 200, (
        f"nginx answered {health.status_code} instead of the registry: {health.text[:200]}"
    )
    assert health.json() == {"status": "ok"}
    assert scan.headers.get("content-type", "").startswith("application/problem+json"), scan.text[:200]
    debian_log = root / "var" / "log" / "nginx" / "access.log"
    logged = debian_log.read_text(encoding="utf-8") if debian_log.exists() else ""
    assert "QrTokenOfAScannedCertificate1" not in logged, f"a scan's token is in Debian's combined log: {logged}"
    site_log = (root / "var" / "log" / "nginx" / "talent-registry.access.log").read_text(encoding="utf-8")
    assert "QrTokenOfAScannedCertificate1" not in site_log, site_log
    assert "GET /v1/verify/{token}" in site_log, f"the scan is not in the site's own log: {site_log}"
