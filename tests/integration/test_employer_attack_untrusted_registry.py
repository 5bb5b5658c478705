"""`registry verify-credential` says VALID for a credential of a registry the employer never said they trust.

The employer has told the tool which registry they trust (``REGISTRY_TRUSTED_REGISTRIES``, or ``--trust``): the
bureau's. The applicant runs a look-alike registry of their own (this software, another address) and hands over a
credential it signed — a body code and a body name copied from the real one — with a PDF whose "how to verify"
line, as the real PDF's does, gives the command to run with the key set to use (``--jwks``, a URL or a saved file of
the look-alike's keys). The keys a credential is checked against are the whole of the trust: the tool takes any
``--jwks`` it is given and answers ``RESULT VALID`` (exit 0), even though the credential's own ``iss`` names a registry
that is in none of the verifier's trusted ones; the trust list guards only the case where no ``--jwks`` is given.

What should happen: once the verifier has said which registries they trust, a credential whose issuer is under none
of them is not VALID, whatever key set it came with (exit 1, UNKNOWN, naming the registry and how to trust it). With
no trust list the behaviour is unchanged (the ``--jwks`` given is the verifier's statement of trust).
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

# The registry the employer trusts; the fixture app (https://registry.test) is the applicant's look-alike.
BUREAU = "https://rcrs.hrss.beijing.gov.cn"
# The same address to the eye: the "е" of "bеijing" is U+0435 CYRILLIC SMALL LETTER IE.
HOMOGLYPH = "https://rcrs.hrss.b\u0435ijing.gov.cn"


async def test_a_credential_of_a_registry_the_verifier_does_not_trust_is_not_valid(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    files = await _write(client, tmp_path, await _credential(client, issuer, certificate["number"]))
    args = [str(files.credential), "--jwks", str(files.jwks)]
    for path in files.lists:
        args += ["--status-list", str(path)]

    # Control: with no trust list, the key set given is the verifier's anchor, and the credential checks out.
    untold = await _run(*args)
    assert untold.code == 0, untold.out + untold.err

    ways: list[tuple[dict[str, str], list[str]]] = [
        ({"REGISTRY_TRUSTED_REGISTRIES": BUREAU}, []),  # said once, in the environment
        ({}, ["--trust", BUREAU]),  # said on the command line
    ]
    for env, extra in ways:
        outcome = await _run(*args, *extra, env=env)
        # Before the fix: "RESULT     VALID", exit 0 — for a registry the verifier never named.
        assert outcome.code == 1, (env, extra, outcome.out + outcome.err)
        assert "RESULT     VALID" not in outcome.out, outcome.out
        assert "https://registry.test" in outcome.out + outcome.err, outcome.out
        assert outcome.steps["signature"] == "UNKNOWN", outcome.out
        assert "RESULT     UNKNOWN — the credential names https://registry.test as its registry" in outcome.out
        assert "give --trust https://registry.test if that is the registry you mean" in outcome.out, outcome.out
    # The registry trusted too: a key set given as a file is not its word. Online its own keys are fetched (here they
    # cannot be: registry.test is no address), so the result is UNKNOWN; offline the file is all there is, and the
    # report says it is the verifier's own saved copy of that registry's keys.
    both = await _run(*args, "--trust", BUREAU, "--trust", "https://registry.test")
    assert both.code == 1, both.out + both.err
    assert both.steps["signature"] == "UNKNOWN", both.out
    assert "the keys of https://registry.test, which you trust, could not be fetched" in both.out, both.out
    kept = await _run(*args, "--trust", BUREAU, "--trust", "https://registry.test", "--offline")
    assert kept.code == 0, kept.out + kept.err
    assert f"keys from {files.jwks}: your own saved copy of the keys of https://registry.test" in kept.out, kept.out


@pytest.fixture
async def look_alike(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The applicant's own registry (this software), serving under an address that reads as the bureau's."""
    application = create_app(settings.model_copy(update={"public_base_url": HOMOGLYPH}))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
        yield application, http
    await dispose(application)


async def test_a_look_alike_registry_address_is_not_shown_as_the_real_one(
    look_alike: tuple[FastAPI, httpx.AsyncClient], tmp_path: Path
) -> None:
    """The tool prints the registry a credential names ("claims … · https://…", and the key URL under "signature")
    so that the reader can hold it against the one they meant. A host in another script is printed as it is, and
    "https://rcrs.hrss.bеijing.gov.cn" reads as the bureau's. Browsers show such a host as its ASCII (punycode)
    form; the tool should too (and, with the bureau trusted, not say VALID: the test above)."""
    app, client = look_alike
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])
    files = await _write(client, tmp_path, credential)
    args = [str(files.credential), "--jwks", str(files.jwks)]
    for path in files.lists:
        args += ["--status-list", str(path)]
    outcome = await _run(*args)
    shown = outcome.out + outcome.err
    # Before the fix: the claims and signature lines print "https://rcrs.hrss.bеijing.gov.cn" as is.
    assert HOMOGLYPH not in shown, shown
    assert "xn--" in shown, shown
    for line in ("claims", "format", "signature"):
        named = [said for said in outcome.out.splitlines() if said.startswith(line)]
        assert named, outcome.out
        assert "https://rcrs.hrss.xn--bijing-3of.gov.cn" in named[0], named
    # The bureau trusted: the look-alike is not it, and is named in ASCII.
    trusting = await _run(*args, "--trust", BUREAU)
    assert trusting.code == 1, trusting.out + trusting.err
    assert trusting.steps["signature"] == "UNKNOWN", trusting.out
    assert "the credential names https://rcrs.hrss.xn--bijing-3of.gov.cn as its registry" in trusting.out
    assert HOMOGLYPH not in trusting.out + trusting.err, trusting.out
