"""The OpenAPI document holds: schemathesis (its conformance checks, over ``openapi/openapi.json``) against a real
``registry serve``, with a real token for every role, finds no server error, no undocumented status code or content
type, and no answer that breaks its schema."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.config import Settings
from tests.factories import (
    admin_token,
    certificate_body,
    create_client,
    create_issuer,
    issuer_token,
    resident_id,
    token_for,
)
from tests.integration.server_support import Server

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)
# Who asks, and which operations (schemathesis' --include-tag) they are let in to; everyone else's are answered 401
# or 403, which the document lists too.
ROLES: dict[str, tuple[str, ...]] = {
    "public": (),
    "admin": (),
    "issuer": ("certificates",),
    "partner": ("recognition",),
    "holder": ("holder",),
}


@pytest.fixture
def backend() -> str:
    """One backend is enough here: the contract is the HTTP layer's; both backends run every other test."""
    return "sqlite"


async def _tokens(app: FastAPI, http: httpx.AsyncClient) -> dict[str, str]:
    admin = await admin_token(app, http)
    issuer_code = (await create_issuer(http, admin))["code"]
    issuer = await issuer_token(app, http, issuer_code)
    holder = {"name": "张三", "id_type": "resident_id", "id_number": resident_id()}
    issued = await http.post(
        "/v1/certificates", json=certificate_body(holder=holder), headers={"Authorization": f"Bearer {issuer}"}
    )
    assert issued.status_code == 201, issued.text
    session = await http.post(
        "/v1/holder/sessions",
        json={"id_type": "resident_id", "id_number": holder["id_number"], "claim_code": issued.json()["claim_code"]},
    )
    assert session.status_code == 201, session.text
    partner = await token_for(http, *await create_client(app, role=Role.partner, region="TJ"))
    return {"admin": admin, "issuer": issuer, "partner": partner, "holder": session.json()["access_token"]}


async def _schemathesis(base_url: str, token: str | None, tags: tuple[str, ...], cwd: Path) -> tuple[int, str]:
    command = [sys.executable, "-m", "schemathesis.cli", "run", str(DOCUMENT), "--url", base_url]
    command += ["--checks", CHECKS, "--max-examples", "6", "--phases", "examples,coverage,fuzzing"]
    command += ["--workers", "1", "--no-color", "--seed", "20261202", "--request-timeout", "30"]
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
    for tag in tags:
        command += ["--include-tag", tag]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    return process.returncode or 0, text


async def test_every_role_gets_only_what_the_openapi_document_promises(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    tokens = await _tokens(app, client)
    server = Server.for_settings(settings, tmp_path / "server.log")
    await server.start()
    try:
        for role, tags in ROLES.items():
            code, text = await _schemathesis(server.base_url, tokens.get(role), tags, tmp_path)
            assert code == 0, f"schemathesis as {role} found problems:\n{text[-6000:]}"
            assert "Tested:" in text, text[-2000:]
    finally:
        await server.stop()
