"""Review 3: no secret, token or identity number in any log line, for requests that put them where the redaction
(api/logs.py) did not look. A real server is driven and everything it wrote is read: `registry serve` at the most
verbose level, and plain ``uvicorn api.main:app`` with uvicorn's own access log on (and at its ``trace`` level, which
writes each request's scope).

What got through before: uvicorn's access line wrote a verification or share-link token behind a slash too many
(``/v//{token}``) or typed in capitals (``/V/{token}``), an identity number typed in full-width digits (uvicorn writes
the path percent-encoded: ``%EF%BC%91…``) or in groups (``/110105-19900505-…``), and a forwarded-for address as the
client; at ``trace`` the scope's ``raw_path`` and ``query_string`` held what the decoded ``path`` had masked.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
from fastapi import FastAPI

from registry.config import Settings
from tests.integration.holder_support import SignedInHolder, signed_in_holder
from tests.integration.server_support import STARTUP_SECONDS, Server, free_port, settings_env

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
PASTED_SECRET = "uNxOb9ojDjULOgX7h6Gpptoh1GVb4yDMCkyYlr5yPzs"  # a client secret's shape, pasted where an id goes


@asynccontextmanager
async def plain_uvicorn(settings: Settings, log: Path, *options: str) -> AsyncIterator[int]:
    """``uvicorn api.main:app`` with uvicorn's defaults (its access log on, its own log format) and ``options``,
    ready to answer on the port it yields; every line it wrote is in ``log`` once this exits."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env = {**inherited, **settings_env(settings), "REGISTRY_RATE_LIMITS_ENABLED": "false"}
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port), *options),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            deadline = time.monotonic() + STARTUP_SECONDS
            while time.monotonic() < deadline and process.returncode is None:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                written = await asyncio.to_thread(log.read_text, errors="replace")
                raise AssertionError(f"uvicorn did not become ready:\n{written[-4000:]}")
        yield port
    finally:
        process.kill()
        await process.wait()


async def raw_get(port: int, target: str, *headers: str) -> int:
    """The status of ``GET target`` sent byte for byte as written (no client library tidies the address)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = "".join(f"{header}\r\n" for header in headers)
        writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{head}\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=30)
        await asyncio.wait_for(reader.read(), timeout=30)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def share_token(client: httpx.AsyncClient, holder: SignedInHolder) -> str:
    link = await client.post(
        "/v1/holder/share-links",
        json={"number": holder.certificate["number"], "purpose": "hiring"},
        headers=holder.headers,
    )
    assert link.status_code == 201, link.text
    token: str = link.json()["url"].rsplit("/", 1)[-1]
    return token


def read_log(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")


def assert_none_in(logged: str, secrets: dict[str, str]) -> None:
    leaked = {name: value for name, value in secrets.items() if value in logged}
    assert leaked == {}, f"the log holds {sorted(leaked)}:\n{logged[-6000:]}"


async def test_a_request_id_holding_an_identity_number_or_claim_code_is_replaced_before_registry_serve_logs_it(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    """The request id goes into every line of its request as it came (api/logs.py): one the redaction would mask is
    replaced. An identity number after letters (``ID110105…``, a correlation id built from a business key), before
    them, or typed in its groups was not masked, nor a claim code run together after a hyphen (``req-…``), so the id
    was kept and the number or code written at every level."""
    holder = await signed_in_holder(app, client)
    number = holder.id_number
    code = holder.certificate["claim_code"].replace("-", "")
    sent = [
        f"ID{number}",
        f"{number}abc",
        f"{number[:6]}-{number[6:14]}-{number[14:]}",
        f"hr_{number[:6]}_{number[6:14]}_{number[14:]}",
        f"req-{code}",
    ]
    server = Server(
        {**settings_env(settings), "REGISTRY_LOG_LEVEL": "DEBUG"}, tmp_path / "server.log"
    )  # the most verbose level the README documents
    async with server, httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        answers = [
            await http.get("/v1/holder/certificates", headers={**holder.headers, "X-Request-ID": one}) for one in sent
        ]
        kept = await http.get("/healthz", headers={"X-Request-ID": "trace-2026-abc"})
    assert [answer.status_code for answer in answers] == [200] * len(sent), [answer.text for answer in answers]
    assert [re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"]) is not None for answer in answers] == [
        True
    ] * len(sent), [answer.headers["X-Request-ID"] for answer in answers]
    assert kept.headers["X-Request-ID"] == "trace-2026-abc"  # an ordinary id is still kept
    logged = read_log(tmp_path / "server.log")
    assert '"route":"/v1/holder/certificates"' in logged, logged[-3000:]
    assert_none_in(
        logged,
        {f"request id {at}": one for at, one in enumerate(sent)} | {"its birth date": number[6:14], "claim code": code},
    )


async def test_uvicorns_access_log_masks_tokens_and_numbers_however_the_address_spells_them(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    holder = await signed_in_holder(app, client)
    verify = holder.certificate["verify_url"].rsplit("/", 1)[-1]
    share = await share_token(client, holder)
    number = holder.id_number
    grouped = f"{number[:6]}-{number[6:14]}-{number[14:]}"
    wide = number.translate(FULL_WIDTH)
    log = tmp_path / "uvicorn.log"
    async with plain_uvicorn(settings, log) as port:
        statuses = [
            await raw_get(port, f"/v//{verify}"),
            await raw_get(port, f"/V/{verify}"),
            await raw_get(port, f"/v1/verify//{verify}"),
            await raw_get(port, f"/s//{share}"),
            await raw_get(port, f"/S/{share}"),
            await raw_get(port, f"/v1/certificates/{quote(wide)}", f"Authorization: Bearer {holder.issuer}"),
            await raw_get(port, f"/v1/certificates/{grouped}", f"Authorization: Bearer {holder.issuer}"),
            await raw_get(port, f"/v1/clients/{PASTED_SECRET}"),
            await raw_get(port, "/healthz", f"X-Forwarded-For: {number}"),
        ]
    assert statuses == [404, 404, 404, 404, 404, 404, 404, 401, 200], statuses
    logged = read_log(log)
    assert '"GET /healthz HTTP/1.1" 200' in logged, logged  # the access log is on, and the requests are in it
    assert logged.count('HTTP/1.1" 404') == 7, logged
    assert_none_in(
        logged,
        {
            "verification token": verify,
            "share-link token": share,
            "identity number": number,
            "grouped identity number": grouped,
            "full-width identity number": wide,
            "full-width identity number, percent-encoded": quote(wide),
            "its birth date": number[6:14],
            "a pasted secret": PASTED_SECRET,
        },
    )


async def test_uvicorns_trace_level_writes_no_token_or_number_from_the_raw_address(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    """At ``--log-level trace`` uvicorn writes each request's ASGI scope: its decoded ``path`` was masked, but not
    the ``raw_path`` beside it (``/v1/%76erify/{token}`` decodes to a verification path) nor the ``query_string`` (an
    identity number percent-encoded, ``%31%31%30…``, which the app reads decoded)."""
    holder = await signed_in_holder(app, client)
    verify = holder.certificate["verify_url"].rsplit("/", 1)[-1]
    escaped = "".join(f"%{ord(char):02X}" for char in holder.id_number)
    log = tmp_path / "uvicorn.log"
    async with plain_uvicorn(settings, log, "--log-level", "trace") as port:
        statuses = [
            await raw_get(port, f"/v1/%76erify/{verify}"),
            await raw_get(port, f"/%76/{verify}"),
            await raw_get(port, f"/v1/catalogue?q={escaped}"),
            await raw_get(port, f"/v1/certificates?holder_id_type=resident_id&holder_%69d_number={escaped}"),
        ]
    assert statuses == [200, 200, 200, 401], statuses
    logged = read_log(log)
    assert "Started scope=" in logged, logged[-3000:]  # trace was on: each scope was written
    assert_none_in(
        logged,
        {
            "verification token": verify,
            "identity number": holder.id_number,
            "identity number, percent-encoded": escaped,
            "its body, percent-encoded": escaped[18:48],
        },
    )
