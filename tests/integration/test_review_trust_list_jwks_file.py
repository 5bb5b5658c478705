"""Review of ca58701: a trust list does not hold against a key-set FILE handed over with a credential that names the
trusted registry itself.

ca58701 says "whoever hands over a key set chooses its keys". It then refuses a credential naming another registry,
but still checks a credential naming the *trusted* registry against any ``--jwks`` file it comes with. The applicant
runs this software as their own registry with ``REGISTRY_PUBLIC_BASE_URL`` set to the bureau's address, so each
credential it signs names the bureau in ``iss``. They hand over the credential, their registry's ``jwks.json`` and
freshly saved status lists. An employer who trusts only the bureau (``--trust``) gets ``RESULT VALID`` (exit 0),
online (where the tool could fetch the bureau's keys) as well as offline.

What should happen: once there is a trust list, the keys come from the trusted registry itself. A key set given as a
file is not a trusted registry's word: either it is refused (UNKNOWN) or, online, each key it holds must also be in the
JWKS fetched from the trusted registry. Here that fetch fails (no network), so the signature step is not PASS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app, dispose
from registry.config import Settings
from tests.factories import issued_certificate
from tests.integration.test_offline import _credential, _run, _setup, _write

BUREAU = "https://rcrs.hrss.beijing.gov.cn"


@pytest.fixture
async def impostor(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The applicant's own registry (this software), configured to call itself the bureau."""
    application = create_app(settings.model_copy(update={"public_base_url": BUREAU}))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
        yield application, http
    await dispose(application)


async def test_a_trusted_registrys_name_with_the_holders_own_key_file_is_not_valid(
    impostor: tuple[FastAPI, httpx.AsyncClient], tmp_path: Path
) -> None:
    app, client = impostor
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    files = await _write(client, tmp_path, await _credential(client, issuer, certificate["number"]))
    args = [str(files.credential), "--jwks", str(files.jwks), "--trust", BUREAU]
    for path in files.lists:
        args += ["--status-list", str(path)]
    # Online: the tool may fetch the trusted registry's own keys, so a key set of the holder's never decides alone.
    # (Offline the tool can only take a file; whether that one may be trusted is for the README to say.)
    outcome = await _run(*args)
    shown = outcome.out + outcome.err
    # Before a fix: "RESULT     VALID", exit 0, signature PASS against the impostor's own keys.
    assert "RESULT     VALID" not in outcome.out, shown
    assert outcome.code != 0, shown
    assert outcome.steps.get("signature") != "PASS", shown
