"""Review of 5d7bebd (deploy/README.md "Serving https"): the ACME challenge path is served from /var/www/html only by
the TLS snippet, and the snippet cannot be loaded before its certificate exists (nginx refuses a configuration whose
ssl_certificate file is missing). So the first certificate can never be had the documented way (`certbot certonly
--webroot -w /var/www/html`): without the snippet, port 80 sends /.well-known/acme-challenge/… to the registry (404);
with it, pointing at /etc/letsencrypt/live/… that certbot has not written yet, `nginx -t` fails.

Here: "Installing it" followed as written on Debian's layout (as test_operator_nginx_install.py does), a challenge
file put where certbot --webroot puts it, then asked for over plain http through the real nginx, as Let's Encrypt
asks for it before any certificate exists."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.checks import require_tool
from tests.integration.server_support import Server, free_port
from tests.integration.test_operator_fix_tls import HOST
from tests.integration.test_operator_nginx_install import debian_machine, debian_nginx, follow_the_install_block


async def test_before_any_certificate_port_80_serves_the_acme_challenge_from_the_webroot(tmp_path: Path) -> None:
    nginx = require_tool("nginx", "nginx-light")
    root, port = tmp_path / "machine", free_port()
    debian_machine(root, port)
    (root / "etc" / "nginx" / "snippets").mkdir()  # nginx-common's, on Debian: empty until the TLS snippet is copied
    challenge = root / "var" / "www" / "html" / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True)
    (challenge / "first-token").write_text("first-token.thumbprint", encoding="ascii")
    (tmp_path / "registry").mkdir()
    async with Server.on_empty_sqlite(tmp_path / "registry") as server:
        follow_the_install_block(root, nginx, port=port, upstream_port=server.port)
        async with (
            debian_nginx(root, nginx, port),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as plain,
        ):
            answer = await plain.get("/.well-known/acme-challenge/first-token", headers={"Host": HOST})
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    assert answer.text == "first-token.thumbprint"
