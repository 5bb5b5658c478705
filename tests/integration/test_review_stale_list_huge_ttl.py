"""Review of ca58701: a status-list file with a huge ``ttl`` makes `registry verify-credential` crash.

The new staleness rule (``registry.credentials.sources._refresh``) reads each given list's claims, unverified, and
calls ``freshness.stale``. That turns ``credentialSubject.ttl`` into ``timedelta(milliseconds=ttl)`` for any whole
number. A list file whose ``ttl`` is 10**20 (its signature need not even check out: it is read before any signature
check) raises ``OverflowError: Python int too large to convert to C int``. The employer gets a traceback and no
verdict. That is what an applicant's file, or a damaged download, can do to a tool whose whole job is to judge
hostile input.

What should happen: a ``ttl`` that is not a sane number of milliseconds is no ``ttl`` (or the list is judged stale).
The tool goes on, its signature check refuses the tampered list, and the report ends in a RESULT line that is not
VALID (exit 1, no traceback).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.factories import issued_certificate
from tests.integration.test_offline import _credential, _run, _setup, _write


def _with_ttl(token: str, ttl: int) -> str:
    header, payload, signature = token.strip().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["credentialSubject"]["ttl"] = ttl
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


async def test_a_status_list_file_with_a_huge_ttl_gets_a_verdict_not_a_traceback(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    files = await _write(client, tmp_path, await _credential(client, issuer, certificate["number"]))
    args = [str(files.credential), "--jwks", str(files.jwks)]
    for path in files.lists:
        path.write_text(_with_ttl(path.read_text(encoding="utf-8"), 10**20), encoding="utf-8")
        args += ["--status-list", str(path)]
    outcome = await _run(*args)  # online: the rule that replaces a stale list applies
    # Before a fix: exit 1 with a traceback ending "OverflowError: Python int too large to convert to C int".
    assert "OverflowError" not in outcome.err, outcome.err
    assert "Traceback" not in outcome.err, outcome.err
    assert "RESULT" in outcome.out, outcome.out + outcome.err
    assert "RESULT     VALID" not in outcome.out, outcome.out
    assert outcome.code == 1, outcome.out + outcome.err
