"""Review of ca58701: "every host the report prints is in ASCII" holds only for hosts written after ``http(s)://``.

``registry.credentials.hosts.ascii_hosts`` rewrites only the authority that follows ``https?://``. A credential whose
``iss`` writes the look-alike host another way, such as ``did:web:rcrs.hrss.bеijing.gov.cn`` (Cyrillic ``е``) or a bare
``rcrs.hrss.bеijing.gov.cn/v1/issuers/X``, has that host printed as written in the ``key`` line ("… is not a
certificate key of the issuer 'did:web:rcrs.hrss.bеijing.gov.cn'"). It reads to the eye as the bureau's address. The
result is NOT VALID here, so this is a claim that is not true, not a way to get VALID. What should happen: no character
outside ASCII from an issuer's address reaches the report (IDNA for a host that can be found, else percent-encoded),
whatever scheme it is written with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jwt
from fastapi import FastAPI

from tests.factories import issued_certificate
from tests.integration.lifecycle_support import CODE
from tests.integration.test_offline import _credential, _resign, _run, _setup, _signing_key_of, _write

LOOK_ALIKES = ("did:web:rcrs.hrss.b\u0435ijing.gov.cn", "rcrs.hrss.b\u0435ijing.gov.cn/v1/issuers/X")


async def test_a_look_alike_issuer_without_https_is_not_printed_as_written(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    token = await _credential(client, issuer, certificate["number"])
    files = await _write(client, tmp_path, token)
    key, _kid = await _signing_key_of(app, CODE)
    short_kid = str(jwt.get_unverified_header(token)["kid"]).rsplit("/", 1)[-1]
    original: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    for iss in LOOK_ALIKES:
        named = {**original["issuer"], "id": iss} if isinstance(original["issuer"], dict) else iss
        path = tmp_path / "look-alike.vc.jwt"
        path.write_text(_resign(token, key=key, kid=short_kid, change={"iss": iss, "issuer": named}), encoding="utf-8")
        args = [str(path), "--jwks", str(files.jwks)]
        for status_list in files.lists:
            args += ["--status-list", str(status_list)]
        outcome = await _run(*args)
        assert outcome.code == 1, outcome.out + outcome.err  # NOT VALID: the key is no key of that issuer
        # Before a fix: "… is not a certificate key of the issuer 'did:web:rcrs.hrss.bеijing.gov.cn'".
        assert "\u0435" not in outcome.out + outcome.err, (iss, outcome.out)
