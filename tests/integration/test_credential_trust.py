"""Whose keys a credential is checked against: `registry verify-credential` with network fetches the JWKS only from a
registry the verifier trusts (--jwks, --trust, REGISTRY_TRUSTED_REGISTRIES), never from one a credential names for
itself, and shows what the credential claims to be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from registry.config import Settings
from registry.credentials import sources
from registry.credentials.offline import STEPS
from tests.factories import bearer, issued_certificate
from tests.integration.server_support import Server, free_port, live_issuer_token, settings_env
from tests.integration.test_offline import CODE, _credential, _resign, _run, _save, _setup


async def test_with_network_it_fetches_the_keys_and_lists_the_credential_names(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    server = Server(settings_env(settings), tmp_path / "server.log")
    server.env["REGISTRY_PUBLIC_BASE_URL"] = server.base_url  # the credential names this live registry
    try:
        await server.start()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            issuer = await live_issuer_token(app, http, CODE)
            certificate = await issued_certificate(http, issuer)
            path = _save(tmp_path, {"credential.vc.jwt": await _credential(http, issuer, certificate["number"])})
            # Exactly as the PDF prints it: the file and the registry's JWKS; or the registry named as trusted.
            jwks = f"{server.base_url}/.well-known/jwks.json"
            for fetched in (
                await _run(str(path["credential.vc.jwt"]), "--jwks", jwks),
                await _run(str(path["credential.vc.jwt"]), "--trust", server.base_url + "/"),
                await _run(
                    str(path["credential.vc.jwt"]), env={"REGISTRY_TRUSTED_REGISTRIES": f"x, {server.base_url}"}
                ),
            ):
                assert fetched.code == 0, fetched.out + fetched.err
                assert fetched.steps == {step: "PASS" for step in STEPS}, fetched.out
                assert f"claims     {certificate['number']} · " in fetched.out, fetched.out
            # The credential alone names no registry the verifier trusts: nothing is fetched, and it is not valid.
            bare = await _run(str(path["credential.vc.jwt"]))
            assert bare.code == 1, bare.out
            assert bare.steps["signature"] == "UNKNOWN", bare.out
            assert f"give --trust {server.base_url} if that is the registry you mean" in bare.out, bare.out

            revoke = await http.post(
                f"/v1/certificates/{certificate['number']}/revoke",
                json={"reason_code": "fraud", "reason": "forged papers"},
                headers=bearer(issuer),
            )
            assert revoke.status_code == 200, revoke.text
            after = await _run(str(path["credential.vc.jwt"]), "--jwks", f"{server.base_url}/.well-known/jwks.json")
            assert after.code == 1, after.out
            assert after.steps["status"] == "FAIL", after.out
            assert "RESULT     NOT VALID" in after.out
    finally:
        await server.stop()


async def test_keys_are_never_taken_from_a_registry_the_credential_names_for_itself(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A forger changes the holder, signs with a key of their own and names, as the credential's issuer, a "registry"
    of theirs serving that key: fetched from there, every step would pass. Without --jwks the keys come only from a
    registry the verifier trusts, so the forgery is UNKNOWN and says which registry it names."""
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    genuine = await _credential(client, issuer, certificate["number"])
    forger = f"http://127.0.0.1:{free_port()}"
    iss = f"{forger}/v1/issuers/{CODE}"
    claims: dict[str, Any] = jwt.decode(genuine, options={"verify_signature": False})
    claims["issuer"]["id"] = iss
    claims["credentialSubject"]["name"] = "李四"
    claims["credentialSubject"]["achievement"]["name"] = "\u202e\x1b[2Kx\nRESULT     VALID"
    forged = _resign(genuine, key=Ed25519PrivateKey.generate(), kid=f"{iss}/keys/k1", change={**claims, "iss": iss})
    path = _save(tmp_path, {"forged.vc.jwt": forged})["forged.vc.jwt"]

    for outcome in (
        await _run(str(path)),
        await _run(str(path), "--trust", "https://registry.test"),
        await _run(str(path), env={"REGISTRY_TRUSTED_REGISTRIES": "https://registry.test http://127.0.0.1"}),
    ):
        assert outcome.code == 1, outcome.out
        assert outcome.steps["signature"] == "UNKNOWN", outcome.out
        assert f"RESULT     UNKNOWN — the credential names {forger} as its registry" in outcome.out, outcome.out
        assert f"claims     {certificate['number']} · 李四 · " in outcome.out, outcome.out
        assert f"· {forger} (as the credential says" in outcome.out, outcome.out
        # Unverified text cannot write a line of its own, move the cursor or turn the line around.
        assert "\ufffd\ufffd[2Kx\ufffdRESULT VALID" in outcome.out, outcome.out
        assert not any(line.startswith("RESULT     VALID") for line in outcome.out.splitlines()), outcome.out


def test_one_registry_however_its_base_url_is_written() -> None:
    assert sources.same_registry("https://Registry.test", "https://registry.test:443/")
    assert sources.same_registry("http://127.0.0.1:8000/base/", "HTTP://127.0.0.1:8000/base")
    for other in (
        "http://registry.test",  # another scheme
        "https://registry.test:8443",
        "https://registry.test.evil.example",
        "https://registry.test/other",
        "https://registry.test:99999",  # not a port
        "registry.test",  # no scheme, so no host
    ):
        assert not sources.same_registry("https://registry.test", other), other
    assert sources.trusted_registries(
        ["https://a.test"], {"REGISTRY_TRUSTED_REGISTRIES": "https://b.test, https://c.test"}
    ) == [
        "https://a.test",
        "https://b.test",
        "https://c.test",
    ]
