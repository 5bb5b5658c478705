"""deploy/README.md "Installing it" then "Serving https", followed as written on Debian's layout (as
test_operator_nginx_install.py does), with a self-signed certificate made here: through a real nginx the registry
answers over https (HTTP/2 offered by ALPN), the holder's sign-in form works there (its Secure CSRF cookie is kept and
sent back), plain http is redirected to https and never answered by the registry, except the ACME challenge path, and
no token reaches Debian's ``combined`` log."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.checks import require_tool
from tests.integration.server_support import Server, free_port
from tests.integration.test_operator_nginx_install import (
    DEPLOY_README,
    debian_machine,
    debian_nginx,
    follow_the_install_block,
    run_documented,
)

HOST = "registry.example.gov.cn"
TOKEN = "QrTokenOfAScannedCertificate1"


def https_block() -> list[str]:
    text = DEPLOY_README.read_text(encoding="utf-8")
    section = text[text.index("## Serving https") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "deploy/README.md 'Serving https' has no sh block"
    return block.group(1).splitlines()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for HOST and 127.0.0.1, and its key, as an operator's CA would hand them over."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    chain, private = folder / "fullchain.pem", folder / "privkey.pem"
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return chain, private


def operator_tls_edit(root: Path, *, tls_port: int, chain: Path, private: Path) -> None:
    """The "edit:" step: the certificate's and key's paths, and `listen 443` to where port 443 went here."""
    snippet = root / "etc" / "nginx" / "snippets" / "talent-registry-tls.conf"
    text = snippet.read_text(encoding="utf-8")
    text, certificates = re.subn(r"(?m)^ssl_certificate [^;]+;", f"ssl_certificate {chain};", text)
    text, keys = re.subn(r"(?m)^ssl_certificate_key [^;]+;", f"ssl_certificate_key {private};", text)
    text, listens = re.subn(r"(?m)^listen 443 ", f"listen 127.0.0.1:{tls_port} ", text)
    text, listens6 = re.subn(r"(?m)^listen \[::\]:443 ", f"listen [::1]:{tls_port} ", text)
    assert (certificates, keys, listens, listens6) == (1, 1, 1, 1), text
    snippet.write_text(re.sub(r"(?<![\w./-])/var/", f"{root}/var/", text), encoding="utf-8")


def follow_the_https_block(root: Path, nginx: str, *, tls_port: int, chain: Path, private: Path) -> None:
    for line in https_block():
        command = line.split("#", 1)[0].strip()
        if line.lstrip().startswith("# edit"):
            operator_tls_edit(root, tls_port=tls_port, chain=chain, private=private)
            continue
        if not command:
            continue
        ran = run_documented(command, root, nginx)
        assert ran.returncode == 0, f"`{command}` failed:\n{ran.stdout}{ran.stderr}"


def negotiated_protocol(port: int, chain: Path) -> str | None:
    context = ssl.create_default_context(cafile=str(chain))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        return tls.selected_alpn_protocol()


@dataclass
class Seen:
    """What a browser, a scanning app and an ACME server were answered through nginx."""

    health: httpx.Response
    scan: httpx.Response
    form: httpx.Response
    sign_in: httpx.Response
    plain_scan: httpx.Response
    plain_page: httpx.Response
    acme: httpx.Response
    alpn: str | None


async def _over_https(tls_port: int, chain: Path) -> tuple[httpx.Response, ...]:
    tls = ssl.create_default_context(cafile=str(chain))
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{tls_port}", verify=tls, timeout=10) as https:
        health = await https.get("/healthz", headers={"Host": HOST})
        scan = await https.get(f"/v1/verify/{TOKEN}")
        form = await https.get("/holder", headers={"Host": HOST})
        csrf = form.cookies.get("tr_holder_csrf") or ""
        sign_in = await https.post(
            "/holder/sign-in",
            headers={"Host": HOST, "Origin": f"https://{HOST}", "Cookie": f"tr_holder_csrf={csrf}"},
            data={
                "csrf": csrf,
                "id_type": "resident_id",
                "id_number": "11010519491231002X",
                "claim_code": "ABCD-EFGH-JKMN",
            },
        )
    return health, scan, form, sign_in


async def _over_http(port: int) -> tuple[httpx.Response, ...]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as plain:
        return (
            await plain.get(f"/v1/verify/{TOKEN}", headers={"Host": HOST}),
            await plain.get("/holder", headers={"Host": HOST}),
            await plain.get("/.well-known/acme-challenge/token-1", headers={"Host": HOST}),
        )


async def _through_nginx(root: Path, nginx: str, *, port: int, tls_port: int, chain: Path) -> Seen:
    async with debian_nginx(root, nginx, port, tls_port):
        health, scan, form, sign_in = await _over_https(tls_port, chain)
        plain_scan, plain_page, acme = await _over_http(port)
        alpn = await asyncio.to_thread(negotiated_protocol, tls_port, chain)
    return Seen(health, scan, form, sign_in, plain_scan, plain_page, acme, alpn)


async def test_the_documented_https_serves_the_registry_redirects_http_and_lets_holders_sign_in(
    tmp_path: Path,
) -> None:
    nginx = require_tool("nginx", "nginx-light")
    root, port, tls_port = tmp_path / "machine", free_port(), free_port()
    debian_machine(root, port)
    (root / "etc" / "nginx" / "snippets").mkdir()  # nginx-common's, on Debian
    challenge = root / "var" / "www" / "html" / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True)
    (challenge / "token-1").write_text("token-1.thumbprint", encoding="ascii")
    chain, private = self_signed(tmp_path)
    (tmp_path / "registry").mkdir()
    async with Server.on_empty_sqlite(tmp_path / "registry") as server:
        follow_the_install_block(root, nginx, port=port, upstream_port=server.port)
        follow_the_https_block(root, nginx, tls_port=tls_port, chain=chain, private=private)
        seen = await _through_nginx(root, nginx, port=port, tls_port=tls_port, chain=chain)

    assert seen.health.status_code == 200, seen.health.text[:200]
    assert seen.health.json() == {"status": "ok"}
    assert seen.health.headers.get("strict-transport-security") == "max-age=31536000"
    assert seen.scan.headers.get("content-type", "").startswith("application/problem+json"), seen.scan.text[:200]
    assert seen.alpn == "h2"
    # The sign-in form over https: its CSRF cookie is Secure, comes back, and the form is judged on its claim code
    # (401: no such holder), not refused for want of the cookie (403).
    assert seen.form.status_code == 200, seen.form.text[:200]
    assert "secure" in seen.form.headers.get("set-cookie", "").lower(), seen.form.headers.get("set-cookie")
    assert seen.sign_in.status_code == 401, seen.sign_in.text[:300]

    assert seen.plain_scan.status_code == 301
    assert seen.plain_scan.headers["location"] == f"https://{HOST}/v1/verify/{TOKEN}"
    assert seen.plain_page.status_code == 301
    assert seen.plain_page.headers["location"] == f"https://{HOST}/holder"
    assert "set-cookie" not in seen.plain_page.headers
    assert seen.acme.status_code == 200
    assert seen.acme.text == "token-1.thumbprint"

    logs = root / "var" / "log" / "nginx"
    debian_log = logs / "access.log"
    assert TOKEN not in (debian_log.read_text(encoding="utf-8") if debian_log.exists() else "")
    site_log = (logs / "talent-registry.access.log").read_text(encoding="utf-8")
    assert TOKEN not in site_log
    assert "/v1/verify/{token}" in site_log, site_log
    assert " 301 " in site_log, site_log
