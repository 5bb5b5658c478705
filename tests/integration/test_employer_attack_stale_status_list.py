"""A status list fetched before the revocation, handed over with the credential, outweighs the live registry.

The applicant saves their credential and the status list it names while the certificate is valid, and hands both to
the employer ("everything you need to check it"). The body revokes the certificate. The employer runs
``registry verify-credential credential.jwt --jwks jwks.json --status-list status.jwt`` — not ``--offline``: the
registry is a request away. The tool reads the list as given, sees it inside its ``validUntil`` (an hour by default,
up to a week as configured) and answers ``RESULT VALID`` (exit 0), while ``/v1/verify`` says revoked. Its status
line says only "message N: valid" — not when the list was signed — so nothing tells the employer the answer is the
applicant's snapshot.

What should happen: when the tool may fetch, a given list older than its own ``ttl`` (how long the registry lets
anyone keep it: a minute) is not taken as the current status: the current list is fetched from under the registry
(the list's own ``id``, as the tool does for lists it was not given) and that one decides — here NOT VALID — or, if it
cannot be had, the result is UNKNOWN, naming how old the given list is. ``--offline`` keeps today's rule (the saved
list counts until its ``validUntil``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app, dispose
from registry import clock
from registry.config import Settings
from tests.factories import issued_certificate
from tests.integration.lifecycle_support import act
from tests.integration.server_support import free_port
from tests.integration.test_offline import _credential, _run, _setup, _write


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The registry served on a loopback port that is its public base URL, so the lists it names can be fetched."""
    port = free_port()
    application = create_app(settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"}))
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 — uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            yield application, http
    finally:
        server.should_exit = True
        await task
        await dispose(application)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # what the tool reads does not depend on the database
async def test_a_status_list_saved_before_the_revocation_does_not_make_it_valid(
    live: tuple[FastAPI, httpx.AsyncClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = live
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])
    # The applicant saved the status list a few minutes ago, while the certificate was valid: well inside the list's
    # validUntil (an hour), well past its ttl (a minute).
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() - timedelta(minutes=3))
    files = await _write(client, tmp_path, credential)
    monkeypatch.setattr(clock, "now", real_now)
    revoked = await act(client, issuer, certificate["number"], "revoke")
    assert revoked.status_code == 200, revoked.text
    online = (await client.get(f"/v1/verify/{certificate['qr_token']}")).json()
    assert online["result"] == "revoked"

    # Control: the lists the credential names, fetched now, say revoked.
    fetched = await _run(str(files.credential), "--jwks", str(files.jwks))
    assert fetched.code == 1, fetched.out + fetched.err
    assert fetched.steps["status"] == "FAIL", fetched.out

    handed = [str(files.credential), "--jwks", str(files.jwks)]
    for path in files.lists:
        handed += ["--status-list", str(path)]
    outcome = await _run(*handed)
    # Before the fix: "status PASS message N: valid" and "RESULT VALID", exit 0, for a revoked certificate.
    assert outcome.code == 1, outcome.out + outcome.err
    assert "RESULT     VALID" not in outcome.out, outcome.out
    # The current list, fetched from under the registry, decides.
    assert outcome.steps["status"] == "FAIL", outcome.out
    assert "RESULT     NOT VALID" in outcome.out, outcome.out

    # --offline keeps the saved list until its validUntil, and says how old it is.
    kept = await _run(*handed, "--offline")
    assert kept.code == 0, kept.out + kept.err
    status = next(line for line in kept.out.splitlines() if line.startswith("status "))
    assert re.search(r"\(status list signed [0-9: -]+ UTC, [34] min ago, valid until [0-9: -]+ UTC\)$", status), status
