"""``api.main:app`` is the ASGI entry point for uvicorn, and operators who serve it with plain ``uvicorn api.main:app``
(not `registry serve`) get uvicorn's own access log, on by default, which writes every request's path and query
string: there, too, no verification token, share-link token or identity number may be written."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

from registry.config import Settings
from tests.factories import bearer
from tests.integration.holder_support import signed_in_holder
from tests.integration.server_support import STARTUP_SECONDS, free_port, settings_env


async def _serve_with_plain_uvicorn(settings: Settings, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    """``uvicorn api.main:app`` with uvicorn's defaults (access log on, its own log format), ready to answer."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env = {**inherited, **settings_env(settings), "REGISTRY_RATE_LIMITS_ENABLED": "false"}
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:app",
            "--port",
            str(port),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and process.returncode is None:
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return process, base_url
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    await process.wait()
    written = await asyncio.to_thread(log.read_text, errors="replace")
    raise AssertionError(f"uvicorn did not become ready:\n{written[-4000:]}")


async def test_plain_uvicorn_access_log_carries_no_token_or_identity_number(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    holder = await signed_in_holder(app, client)
    link = await client.post(
        "/v1/holder/share-links",
        json={"number": holder.certificate["number"], "purpose": "hiring"},
        headers=holder.headers,
    )
    assert link.status_code == 201, link.text
    verify_token = holder.certificate["verify_url"].rsplit("/", 1)[-1]
    share_token = link.json()["url"].rsplit("/", 1)[-1]
    passport = "E98765432"
    log = tmp_path / "uvicorn.log"
    process, base_url = await _serve_with_plain_uvicorn(settings, log)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            answers = [
                await http.get(f"/v/{verify_token}"),
                await http.get(f"/v1/verify/{verify_token}"),
                await http.get(f"/s/{share_token}"),
                await http.get(
                    "/v1/certificates",
                    params={"holder_id_type": "resident_id", "holder_id_number": holder.id_number, "holder_name": "x"},
                    headers=bearer(holder.issuer),
                ),
                await http.get(
                    "/v1/certificates",
                    params={"holder_id_type": "passport", "holder_id_number": passport, "holder_name": "x"},
                    headers=bearer(holder.issuer),
                ),
            ]
    finally:
        process.kill()
        await process.wait()
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 200]
    logged = await asyncio.to_thread(log.read_text, encoding="utf-8", errors="replace")
    assert '"GET /v/[redacted] HTTP/1.1" 200' in logged, logged  # the access log is on, and the request is in it
    assert '"GET /v1/certificates HTTP/1.1" 200' in logged, logged  # its query string is not
    for secret in (verify_token, share_token, holder.id_number, passport):
        assert secret not in logged, logged
