"""The shipped site listens on IPv6 too (``listen [::]:80;``, and ``[::]:443`` with TLS). On a host whose kernel has
IPv6 turned off (``ipv6.disable=1``) nginx cannot open those sockets and refuses the configuration. deploy/README.md
says so and gives the line that drops them: run here, its copies pass ``nginx -t`` on such a host, IPv4 unchanged.

The host without IPv6 is imitated with a preloaded ``socket()`` that refuses AF_INET6 with EAFNOSUPPORT, which is
what a kernel booted with ``ipv6.disable=1`` answers."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.nginx_support import (
    CACHE_FOLDER,
    LISTEN_LINE,
    SHIPPED_CONFIG,
    SITE_ERROR_LOG,
    SITE_LOG,
    UPSTREAM_LINE,
    Nginx,
)
from tests.integration.server_support import free_port
from tests.integration.test_proxy_config import nginx_binary as nginx_binary

README = SHIPPED_CONFIG.parents[1] / "README.md"
TLS_SNIPPET = SHIPPED_CONFIG.with_name("talent-registry-tls.conf")
NO_IPV6 = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>
int socket(int domain, int type, int protocol) {
    static int (*real)(int, int, int);
    if (domain == AF_INET6) { errno = EAFNOSUPPORT; return -1; }
    if (!real) real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
    return real(domain, type, protocol);
}
"""


def _without_ipv6(tmp_path: Path) -> str:
    source = tmp_path / "no_ipv6.c"
    source.write_text(NO_IPV6, encoding="utf-8")
    library = tmp_path / "no_ipv6.so"
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler is not None, "a C compiler is needed to imitate a host without IPv6"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"], check=True)  # noqa: S603
    return str(library)


def _documented_drop() -> list[str]:
    """The README's command that drops the IPv6 listen lines: ``sed -i EXPRESSION FILE``."""
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("sed -i ") and "listen" in line:
            return shlex.split(line, comments=True)[:3]
    raise AssertionError("deploy/README.md gives no command to drop the IPv6 listen lines")


def test_the_documented_line_makes_the_site_start_on_a_host_without_ipv6(
    tmp_path: Path, nginx_binary: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = _without_ipv6(tmp_path)
    proxy = Nginx(nginx_binary, tmp_path / "nginx", port=free_port(), upstream_port=free_port())
    monkeypatch.setenv("LD_PRELOAD", library)
    refused = proxy.check()
    assert refused.returncode != 0
    assert "Address family not supported" in refused.stderr, refused.stderr

    site, snippet = tmp_path / "site.conf", tmp_path / "tls.conf"
    shutil.copy(SHIPPED_CONFIG, site)
    shutil.copy(TLS_SNIPPET, snippet)
    monkeypatch.delenv("LD_PRELOAD")
    subprocess.run([*_documented_drop(), str(site), str(snippet)], check=True)  # noqa: S603
    for edited, shipped in ((site, SHIPPED_CONFIG), (snippet, TLS_SNIPPET)):
        kept = edited.read_text(encoding="utf-8").splitlines()
        assert kept == [line for line in shipped.read_text(encoding="utf-8").splitlines() if "listen [::]" not in line]
        assert len(kept) < len(shipped.read_text(encoding="utf-8").splitlines())  # there was one to drop
    text = site.read_text(encoding="utf-8")
    assert LISTEN_LINE in text  # IPv4 as shipped
    text = text.replace(UPSTREAM_LINE, f"server 127.0.0.1:{free_port()} max_fails=0;")
    text = text.replace(LISTEN_LINE, f"listen 127.0.0.1:{proxy.port};").replace(CACHE_FOLDER, str(proxy.root / "cache"))
    text = text.replace(SITE_LOG, f"access_log {proxy.root}/talent-registry.access.log ")
    text = text.replace(SITE_ERROR_LOG, f"error_log {proxy.root}/talent-registry.error.log ")
    proxy.site.write_text(text, encoding="utf-8")

    monkeypatch.setenv("LD_PRELOAD", library)
    accepted = proxy.check()
    assert accepted.returncode == 0, accepted.stderr
