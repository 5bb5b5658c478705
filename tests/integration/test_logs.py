"""Secrets and identity numbers never reach the logs, even with SQL logging switched on; a real server logs JSON lines
with request ids, and neither its logs nor its public answers carry an identity number, a birth date, a verification
token, a claim code or a secret."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from registry.certificates.rows import CSV_COLUMNS
from registry.config import Settings
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_client,
    create_issuer,
    resident_id,
    token_for,
    with_wrong_check_char,
)
from tests.integration.server_support import Server


async def test_logs_carry_no_identity_number_or_secret(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        admin = await admin_token(app, client)
        await create_issuer(client, admin)
        client_id, secret = await create_client(app, role=Role.issuer, issuer_code="BJ-AI-COMMITTEE")
        issuer = await token_for(client, client_id, secret)
        number = resident_id(birth="19770707")
        holder = {"name": "钱七", "id_type": "resident_id", "id_number": number}
        issued = await client.post("/v1/certificates", json=certificate_body(holder=holder), headers=bearer(issuer))
        assert issued.status_code == 201
        wrong = with_wrong_check_char(number)
        rejected = await client.post(
            "/v1/certificates", json=certificate_body(holder={**holder, "id_number": wrong}), headers=bearer(issuer)
        )
        assert rejected.status_code == 422
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert "INSERT INTO api_clients" in caplog.text  # SQL logging really was on (certificates go by COPY)
    for secret_text in (number, wrong, secret, issued.json()["claim_code"], "19770707"):
        assert secret_text not in caplog.text


# --- a real `registry serve`: everything it wrote, and everything it showed the public -------------------------------

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_EIGHTEEN = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
BIRTHS = ("19730917", "19690423", "19660302")


def valid_identity_numbers(text: str) -> list[str]:
    """Every 18-character run in ``text`` whose GB 11643 check character is right: an identity number, or a very
    unlucky coincidence (1 in 11) that the test would rather hear about."""
    found = []
    for candidate in _EIGHTEEN.findall(text):
        total = sum(int(d) * w for d, w in zip(candidate[:17], _WEIGHTS, strict=True))
        if "10X98765432"[total % 11] == candidate[17].upper():
            found.append(candidate)
    return found


@dataclass
class Story:
    """What the story produced: every secret it handled, and every answer a member of the public was given."""

    secrets: set[str] = field(default_factory=set)
    public: list[httpx.Response] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # verification token -> certificate number


async def _issue(http: httpx.AsyncClient, story: Story, access: str) -> list[dict[str, Any]]:
    """One certificate alone, two in a CSV batch; the secrets of all three noted."""
    people = [
        {"name": name, "id_type": "resident_id", "id_number": resident_id(birth=birth)}
        for name, birth in zip(("孙一", "周二", "吴三"), BIRTHS, strict=True)
    ]
    single = await http.post("/v1/certificates", json=certificate_body(holder=people[0]), headers=bearer(access))
    assert single.status_code == 201, single.text
    lines = [",".join(CSV_COLUMNS)]
    for person in people[1:]:
        row = {**certificate_body(), **{f"holder_{key}": value for key, value in person.items()}}
        lines.append(",".join("" if row.get(column) is None else str(row[column]) for column in CSV_COLUMNS))
    headers = {**bearer(access), "Content-Type": "text/csv", "Idempotency-Key": "logs-batch"}
    batch = await http.post("/v1/certificate-batches", content="\n".join(lines).encode(), headers=headers)
    assert batch.status_code == 201, batch.text
    issued = [single.json(), *batch.json()["certificates"]]
    for person, certificate in zip(people, issued, strict=True):
        token = certificate["verify_url"].rsplit("/", 1)[-1]
        story.tokens[token] = certificate["number"]
        code = certificate["claim_code"]
        story.secrets |= {person["id_number"], token, code, code.replace("-", "")}
    story.secrets |= {birth for birth in BIRTHS} | {f"{b[:4]}-{b[4:6]}-{b[6:]}" for b in BIRTHS}
    return [{**certificate, "person": person} for person, certificate in zip(people, issued, strict=True)]


async def _verify_as_the_public(http: httpx.AsyncClient, story: Story, issued: list[dict[str, Any]]) -> None:
    for certificate in issued:
        token = certificate["verify_url"].rsplit("/", 1)[-1]
        name = certificate["person"]["name"]
        story.public += [
            await http.get(f"/v1/verify/{token}"),
            await http.get(f"/v/{token}"),
            await http.get(f"/v1/verify/{token}", params={"claim_code": certificate["claim_code"]}),  # a careless link
            await http.post("/v1/verify", json={"number": certificate["number"], "holder_name": name}),
            await http.post("/v", data={"number": certificate["number"], "holder_name": name}),
        ]
    story.public.append(await http.get("/v1/verify/" + "A" * 24))  # no such certificate
    assert [r.status_code for r in story.public] == [200] * 5 * len(issued) + [404], [
        (r.url, r.status_code) for r in story.public
    ]


async def _sign_in_as_holder(http: httpx.AsyncClient, story: Story, certificate: dict[str, Any]) -> None:
    person = certificate["person"]
    wrong = await http.post(
        "/v1/holder/sessions",
        json={"id_type": "resident_id", "id_number": person["id_number"], "claim_code": "0000-0000-0000"},
    )
    assert wrong.status_code == 401
    session = await http.post(
        "/v1/holder/sessions",
        json={"id_type": "resident_id", "id_number": person["id_number"], "claim_code": certificate["claim_code"]},
    )
    assert session.status_code == 201, session.text
    holder_token = session.json()["access_token"]
    story.secrets.add(holder_token)
    listed = await http.get("/v1/holder/certificates", headers=bearer(holder_token))
    assert listed.status_code == 200
    story.public += [wrong]


# Long: one story against one real server — set up, issue, verify, sign in, then read everything it wrote.
async def test_a_real_server_logs_json_lines_with_request_ids_and_no_secret(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    await create_issuer(client, await admin_token(app, client))
    client_id, client_secret = await create_client(app, role=Role.issuer, issuer_code="BJ-AI-COMMITTEE")
    story = Story(secrets={client_secret})
    server = Server.for_settings(settings, tmp_path / "server.log")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
            access = (await http.post("/oauth/token", data=form)).json()["access_token"]
            story.secrets.add(access)
            refused = await http.post("/oauth/token", data={**form, "client_secret": client_secret[::-1]})
            assert refused.status_code == 401
            issued = await _issue(http, story, access)
            await _verify_as_the_public(http, story, issued)
            await _sign_in_as_holder(http, story, issued[0])
            traced = await http.get("/healthz", headers={"X-Request-ID": "trace-2026-abc"})
            insane = await http.get("/healthz", headers={"X-Request-ID": "no spaces or 64+ chars please" * 3})
    finally:
        await server.stop()

    assert traced.headers["X-Request-ID"] == "trace-2026-abc"
    assert re.fullmatch(r"[0-9a-f]{32}", insane.headers["X-Request-ID"]), insane.headers["X-Request-ID"]
    logged = (tmp_path / "server.log").read_text(encoding="utf-8")
    lines = [orjson.loads(line) for line in logged.splitlines() if line.strip()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    access_lines = [line for line in lines if line["logger"] == "registry.access"]
    routes = {line["route"] for line in access_lines}
    assert {"/v1/verify/{token}", "/v/{token}", "/v1/holder/sessions", "/oauth/token"} <= routes, routes
    assert all({"request_id", "method", "status", "duration_ms"} <= line.keys() for line in access_lines)
    assert any(line["request_id"] == "trace-2026-abc" and line["route"] == "/healthz" for line in access_lines)

    assert not [secret for secret in story.secrets if secret in logged]
    assert valid_identity_numbers(logged) == []
    for response in story.public:
        asked = response.request.url.path.rsplit("/", 1)[-1]
        others = story.secrets - {asked}  # a verification page may show the token it was opened with
        assert not [secret for secret in others if secret in response.text], response.request.url
        assert valid_identity_numbers(response.text) == [], response.request.url
