"""Whose keys a credential is checked against: `registry verify-credential` with network fetches the JWKS only from a
registry the verifier trusts (--jwks, --trust, REGISTRY_TRUSTED_REGISTRIES), never from one a credential names for
itself, and shows what the credential claims to be. What a credential names is fetched only once its signature
verifies against those keys: a forgery sends no request anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from registry.config import Settings
from registry.credentials import sources
from registry.credentials.offline import STEPS, verify_credential
from tests.factories import bearer, issued_certificate
from tests.integration.server_support import Server, free_port, live_issuer_token, settings_env
from tests.integration.test_offline import (
    CODE,
    _credential,
    _fetch,
    _resign,
    _run,
    _save,
    _setup,
    _signing_key_of,
    _status_urls,
    _tamper,
)

REGISTRY = "https://registry.test"  # the base URL the test registry's credentials name
JWKS = f"{REGISTRY}/.well-known/jwks.json"


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


class _Network:
    """The verifier's network: the registry's JWKS and status lists answered from memory, every request noted."""

    def __init__(self, served: dict[str, str]) -> None:
        self.served = served
        self.requests: list[str] = []

    def gather(
        self, token: str, *, jwks: str | None = None, trusted: list[str] | None = None
    ) -> tuple[sources.Sources, list[str]]:
        self.requests = []
        with httpx.Client(transport=httpx.MockTransport(self._answer)) as http:
            gathered = sources.gather(token, jwks=jwks, status_lists=[], http=http, trusted=trusted)
        return gathered, self.requests

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        text = self.served.get(str(request.url))
        return httpx.Response(200, text=text) if text is not None else httpx.Response(404)


async def _registry(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str, _Network]:
    """A genuine credential, the URL of the status list it names, and a network serving the registry's files."""
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    genuine = await _credential(client, issuer, certificate["number"])
    (list_url,) = _status_urls(genuine).values()
    served = {JWKS: await _fetch(client, JWKS), list_url: await _fetch(client, list_url)}
    return genuine, list_url, _Network(served)


def _steps(token: str, gathered: sources.Sources) -> dict[str, str]:
    report = verify_credential(
        token, jwks=gathered.jwks, status_lists=gathered.status_lists, unreadable=gathered.unreadable
    )
    return {step.name: f"{step.outcome} {step.detail}" for step in report.steps}


async def test_a_forged_or_unsigned_credential_makes_the_verifier_send_no_request(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    genuine, list_url, network = await _registry(app, client)
    claims: dict[str, Any] = jwt.decode(genuine, options={"verify_signature": False})
    iss = "https://forger.example/v1/issuers/X"
    internal = [{**claims["credentialStatus"], "statusListCredential": f"http://10.0.0.{i}/admin"} for i in range(3)]
    forged = _resign(
        genuine, key=Ed25519PrivateKey.generate(), kid="k1", change={"iss": iss, "credentialStatus": internal}
    )
    gathered, requests = network.gather(forged, trusted=[REGISTRY])
    assert requests == [], "a registry not trusted: its keys are not fetched, nor anything else it names"
    assert _steps(forged, gathered)["signature"].startswith("unknown the credential names https://forger.example")

    # Signed by no key of the trusted registry: its keys are fetched, what the credential names is not.
    changed = _tamper(genuine, {"name": "李四"})
    header, payload, _ = genuine.split(".")
    unsigned = f"{header}.{payload}.AAAA"
    for token, jwks in ((changed, None), (changed, JWKS), (unsigned, None)):
        gathered, requests = network.gather(token, jwks=jwks, trusted=[REGISTRY])
        assert requests == [JWKS], (token, requests)
        assert _steps(token, gathered)["signature"].startswith("fail signature does not verify")
    assert list_url.startswith(f"{REGISTRY}/"), list_url  # not fetched above though under the trusted registry


async def test_a_genuine_credential_still_fetches_its_status_list(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    genuine, list_url, network = await _registry(app, client)
    jwks_file = _save(tmp_path, {"jwks.json": network.served[JWKS]})["jwks.json"]
    for jwks, trusted, expected in (
        (None, [REGISTRY + "/"], [JWKS, list_url]),  # --trust
        (JWKS, [], [JWKS, list_url]),  # --jwks URL: lists from under that registry's base
        (str(jwks_file), [], [list_url]),  # --jwks FILE: from under the verified iss's registry
    ):
        gathered, requests = network.gather(genuine, jwks=jwks, trusted=trusted)
        assert requests == expected, (jwks, requests)
        assert [step.split()[0] for step in _steps(genuine, gathered).values()] == ["pass"] * len(STEPS)


async def test_status_lists_a_registry_would_not_name_are_not_fetched(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Signed with a key the registry publishes (an insider's, or a stolen one), a credential still cannot make the
    verifier fetch more lists than a credential of this registry has (one, or the older two: a thousand would stall
    the check for ten seconds each), nor from outside the registry whose keys verified it (SSRF, tracking)."""
    genuine, list_url, network = await _registry(app, client)
    key, kid = await _signing_key_of(app, CODE)
    entry: dict[str, Any] = jwt.decode(genuine, options={"verify_signature": False})["credentialStatus"]
    many = [{**entry, "statusListIndex": str(index)} for index in range(3)]
    elsewhere = {**entry, "statusListCredential": "http://169.254.169.254/latest/meta-data"}
    lookalike = {**entry, "statusListCredential": "https://registry.test.evil.example/v1/status-lists/x"}
    for status, why in (
        (many, "the credential names 3 status entries, and one of this registry names at most 2: none was fetched"),
        (elsewhere, f"is not under {REGISTRY}, the registry whose keys verified the credential, so it was not fetched"),
        (lookalike, f"is not under {REGISTRY}, the registry whose keys verified the credential"),
    ):
        token = _resign(genuine, key=key, kid=kid, change={"credentialStatus": status})
        gathered, requests = network.gather(token, trusted=[REGISTRY])
        assert requests == [JWKS], (status, requests)
        assert _steps(token, gathered)["signature"].startswith("pass"), _steps(token, gathered)
        assert _steps(token, gathered)["status"].startswith("unknown "), _steps(token, gathered)
        assert why in _steps(token, gathered)["status"], _steps(token, gathered)
    # Two entries, as older credentials have (revocation and suspension): their list is fetched, once.
    older = _resign(genuine, key=key, kid=kid, change={"credentialStatus": [entry, {**entry, "statusListIndex": "1"}]})
    assert network.gather(older, trusted=[REGISTRY])[1] == [JWKS, list_url]


def test_a_status_list_url_is_under_a_registry_only_on_its_origin_and_below_its_path() -> None:
    assert sources.under_registry("https://Registry.test:443/v1/status-lists/m.vc.jwt", "https://registry.test/")
    assert sources.under_registry("http://127.0.0.1:8000/base/v1/status-lists/m", "http://127.0.0.1:8000/base")
    for other in (
        "http://registry.test/v1/status-lists/m",  # another scheme
        "https://registry.test.evil.example/v1/status-lists/m",
        "https://registry.test:8443/v1/status-lists/m",
        "https://evil.example/https://registry.test/v1/status-lists/m",
        "https://registry.test",  # not below the base
    ):
        assert not sources.under_registry(other, "https://registry.test"), other
    assert not sources.under_registry("https://registry.test/base/../admin", "https://registry.test/base")
    assert not sources.under_registry("https://registry.test/base/%2E%2E/admin", "https://registry.test/base")
    assert not sources.under_registry("https://registry.test/basement/x", "https://registry.test/base")


def test_a_jwks_that_is_not_a_json_object_is_unreadable() -> None:
    network = _Network({JWKS: "[]"})
    gathered, _ = network.gather("a.b.c", jwks=JWKS)
    assert gathered.jwks is None
    assert gathered.unreadable["jwks"] == f"JWKS {JWKS} is not a JSON object"
