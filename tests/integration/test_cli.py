"""The `registry` command as an operator uses it: create a client, serve, export the contract."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.integration.cli_support import REGISTRY, registry_env, run_registry

EXPORTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


async def test_clients_create_prints_credentials_that_obtain_a_token(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    env = registry_env(database_url)
    code, out, err = await run_registry("clients", "create", "--role", "admin", "--name", "HR bureau ops", env=env)
    assert code == 0, err
    created = json.loads(out)
    assert set(created) == {"client_id", "client_secret"}
    assert created["client_secret"] not in err

    form = {"grant_type": "client_credentials", **created}
    token = await client.post("/oauth/token", data=form)
    assert token.status_code == 200
    assert "clients:write" in token.json()["scope"].split()


async def test_clients_create_explains_a_missing_issuer(database_url: str) -> None:
    env = registry_env(database_url)
    code, _, err = await run_registry("clients", "create", "--role", "issuer", "--name", "x", env=env)
    assert code == 2
    assert "issuer_code is required" in err
    code, _, err = await run_registry(
        "clients", "create", "--role", "issuer", "--name", "x", "--issuer", "NOPE-1", env=env
    )
    assert code == 1
    assert "no evaluation body NOPE-1" in err


async def test_openapi_command_prints_the_exported_document() -> None:
    code, out, _ = await run_registry("openapi", env={})
    assert code == 0
    exported = EXPORTED.read_text(encoding="utf-8")
    assert json.loads(out) == json.loads(exported)


async def test_serve_migrates_an_empty_database_and_answers(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}",
        "REGISTRY_DATA_DIR": str(tmp_path / "data"),
        "REGISTRY_ENV": "development",
    }
    env.pop("REGISTRY_MASTER_KEY", None)
    process = await asyncio.create_subprocess_exec(
        *REGISTRY,
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(150):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            catalogue = await http.get("/v1/catalogue", params={"q": "具身智能"})
        assert catalogue.status_code == 200
        assert catalogue.json()["data"][0]["code"] == "ENG-EAI"
        assert (tmp_path / "data" / "master.key").exists()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=20)
