"""Offline verification of a signed credential: `registry verify-credential` against files, as a verifier with no
access to the registry's database would run it — or, with network, against what it fetches from the URLs the credential
names."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from registry.context import RegistryContext
from registry.credentials.offline import status_entries, verify_credential
from registry.issuers import service as issuers
from registry.keys import service as keys
from registry.keys.models import KeyUse
from tests.factories import admin_token, bearer, create_issuer, days_from_today, issued_certificate, issuer_token
from tests.integration.server_support import free_port

CODE = "BJ-AI-COMMITTEE"
OTHER = "BJ-OTHER-COMMITTEE"
VERIFY = [sys.executable, "-m", "cli", "verify-credential"]


@dataclass
class Outcome:
    code: int
    steps: dict[str, str]
    out: str
    err: str


@dataclass
class Files:
    credential: Path
    jwks: Path
    lists: tuple[Path, ...]  # the status lists the credential names: one (the message list), two in older ones


async def _run(*args: str, env: dict[str, str] | None = None) -> Outcome:
    environment = {key: value for key, value in os.environ.items() if key != "REGISTRY_TRUSTED_REGISTRIES"}
    process = await asyncio.create_subprocess_exec(
        *VERIFY,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**environment, **(env or {})},
    )
    out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    out, err = out_bytes.decode(), err_bytes.decode()
    steps: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in {"format", "signature", "key", "dates", "status"}:
            steps[parts[0]] = parts[1]
    return Outcome(code=process.returncode, steps=steps, out=out, err=err)


async def _setup(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str]:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    return admin, await issuer_token(app, client, CODE)


async def _credential(client: httpx.AsyncClient, token: str, number: str) -> str:
    response = await client.get(f"/v1/certificates/{number}/credential", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.text.strip()


def _status_urls(credential: str) -> dict[str, str]:
    claims = jwt.decode(credential, options={"verify_signature": False})
    return {entry["statusPurpose"]: entry["statusListCredential"] for entry in status_entries(claims)}


async def _fetch(client: httpx.AsyncClient, url: str) -> str:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return response.text


def _save(directory: Path, contents: dict[str, str]) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / name for name in contents}
    for name, text in contents.items():
        paths[name].write_text(text, encoding="utf-8")
    return paths


async def _write(client: httpx.AsyncClient, directory: Path, credential: str, name: str = "credential") -> Files:
    """The credential, the JWKS and the status lists it names as a verifier would have saved them."""
    lists = {f"{purpose}.vc.jwt": await _fetch(client, url) for purpose, url in _status_urls(credential).items()}
    jwks = await _fetch(client, "/.well-known/jwks.json")
    paths = _save(directory, {f"{name}.vc.jwt": credential, "jwks.json": jwks, **lists})
    return Files(credential=paths[f"{name}.vc.jwt"], jwks=paths["jwks.json"], lists=tuple(paths[n] for n in lists))


async def _check(files: Files, *, credential: Path | None = None, lists: tuple[Path, ...] | None = None) -> Outcome:
    given = files.lists if lists is None else lists
    args = [str(credential or files.credential), "--jwks", str(files.jwks)]
    for path in given:
        args += ["--status-list", str(path)]
    return await _run(*args)


def _tamper(credential: str, change: dict[str, Any]) -> str:
    """Change claims in the payload segment, keeping the header and the signature as they were."""
    header, payload, signature = credential.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    subject = claims["credentialSubject"]
    subject.update(change)
    encoded = base64.urlsafe_b64encode(json.dumps(claims, ensure_ascii=False).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


async def _signing_key_of(app: FastAPI, code: str | None) -> tuple[Ed25519PrivateKey, str]:
    """An evaluation body's own current private key, as an insider at that body holds it (None: the registry's
    access-token key)."""
    context: RegistryContext = app.state.context
    async with app.state.sessions() as session:
        if code is None:
            key = await keys.active_key(session, use=KeyUse.access_token)
        else:
            issuer = await issuers.get_by_code(session, code)
            assert issuer is not None
            key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
        assert key is not None
        return context.keyring.private_key(key), key.kid


def _resign(token: str, *, key: Ed25519PrivateKey, kid: str, change: dict[str, Any] | None = None) -> str:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    claims.update(change or {})
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": "vc+jwt"})


async def test_a_valid_credential_passes_every_step(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer, valid_until=days_from_today(5 * 365))
    files = await _write(client, tmp_path, await _credential(client, issuer, certificate["number"]))
    outcome = await _check(files)
    assert outcome.code == 0, outcome.out + outcome.err
    assert outcome.steps == {step: "PASS" for step in ("format", "signature", "key", "dates", "status")}, outcome.out
    assert "RESULT     VALID" in outcome.out


async def test_a_revoked_certificate_fails_at_status(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])  # the holder saved it while still valid
    revoked = await client.post(
        f"/v1/certificates/{certificate['number']}/revoke",
        json={"reason": "falsified papers", "reason_code": "fraud"},
        headers=bearer(issuer),
    )
    assert revoked.status_code == 200, revoked.text
    files = await _write(client, tmp_path, credential)
    outcome = await _check(files)
    assert outcome.code == 1, outcome.out
    assert outcome.steps["signature"] == "PASS"
    assert outcome.steps["status"] == "FAIL", outcome.out
    assert "RESULT     NOT VALID" in outcome.out
    assert "the certificate is revoked" in outcome.out


async def test_a_suspended_certificate_fails_at_status(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])
    suspended = await client.post(
        f"/v1/certificates/{certificate['number']}/suspend", json={"reason": "checking"}, headers=bearer(issuer)
    )
    assert suspended.status_code == 200, suspended.text
    outcome = await _check(await _write(client, tmp_path, credential))
    assert outcome.code == 1, outcome.out
    assert outcome.steps["status"] == "FAIL", outcome.out
    assert "the certificate is suspended" in outcome.out


async def test_a_superseded_certificate_fails_offline(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])
    corrected = await client.post(
        f"/v1/certificates/{certificate['number']}/correct",
        json={"reason": "level", "level": "senior"},
        headers=bearer(issuer),
    )
    assert corrected.status_code == 201, corrected.text
    outcome = await _check(await _write(client, tmp_path / "old", credential))
    assert outcome.code == 1, outcome.out
    assert outcome.steps["status"] == "FAIL", outcome.out
    successor = await _credential(client, issuer, corrected.json()["number"])
    assert (await _check(await _write(client, tmp_path / "new", successor))).code == 0


async def test_a_changed_claim_fails_at_signature(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])
    files = await _write(client, tmp_path, credential)
    forged = tmp_path / "forged.vc.jwt"
    forged.write_text(
        _tamper(credential, {"level": {"code": "senior", "nameZh": "正高级", "nameEn": "Senior"}}), encoding="utf-8"
    )
    outcome = await _check(files, credential=forged)
    assert outcome.code == 1, outcome.out
    assert outcome.steps["format"] == "PASS"
    assert outcome.steps["signature"] == "FAIL", outcome.out
    assert "RESULT     NOT VALID" in outcome.out
    # The untouched original still passes with the very same files.
    assert (await _check(files)).code == 0


async def test_a_missing_status_list_fails_closed(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])
    files = await _write(client, tmp_path, credential)
    # The one-bit revocation list of the same list id is a list, but not the one the credential names.
    revocation_url = _status_urls(credential)["message"].removesuffix("-message") + "-revocation"
    other = _save(tmp_path / "other", {"revocation.vc.jwt": await _fetch(client, revocation_url)})

    only_revocation = await _check(files, lists=(other["revocation.vc.jwt"],))
    assert only_revocation.code == 1, only_revocation.out
    assert only_revocation.steps["status"] == "UNKNOWN", only_revocation.out
    assert "RESULT     UNKNOWN — status list" in only_revocation.out

    none = await _check(files, lists=())
    assert none.code == 1, none.out
    assert none.steps["status"] == "UNKNOWN", none.out

    unreadable = await _check(files, lists=(tmp_path / "does-not-exist.vc.jwt",))
    assert unreadable.code == 1, unreadable.out
    assert unreadable.steps["status"] == "UNKNOWN", unreadable.out


async def test_a_status_list_from_another_list_does_not_stand_in(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])
    files = await _write(client, tmp_path, credential)
    # The one-bit revocation list, re-signed by the body's own key under the message list's URL: its purpose (and
    # bit layout) is not the message list's, so it says nothing about this credential.
    message_url = _status_urls(credential)["message"]
    revocation = await _fetch(client, message_url.removesuffix("-message") + "-revocation")
    key, kid = await _signing_key_of(app, CODE)
    renamed = tmp_path / "renamed.vc.jwt"
    renamed.write_text(_resign(revocation, key=key, kid=kid, change={"id": message_url}), encoding="utf-8")
    outcome = await _check(files, lists=(renamed,))
    assert outcome.code == 1, outcome.out
    assert outcome.steps["status"] == "UNKNOWN", outcome.out


async def test_a_credential_with_the_older_two_status_entries_still_verifies(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Credentials signed before the message list name the one-bit revocation and suspension lists."""
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    claims = jwt.decode(await _credential(client, issuer, certificate["number"]), options={"verify_signature": False})
    base = claims["credentialStatus"]["statusListCredential"].removesuffix("-message")
    index = claims["credentialStatus"]["statusListIndex"]
    older = [
        {
            "id": f"{base}-{purpose}#{index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": purpose,
            "statusListIndex": index,
            "statusListCredential": f"{base}-{purpose}",
        }
        for purpose in ("revocation", "suspension")
    ]
    key, kid = await _signing_key_of(app, CODE)
    credential = jwt.encode(
        {**claims, "credentialStatus": older}, key, algorithm="EdDSA", headers={"kid": kid, "typ": "vc+jwt"}
    )
    files = await _write(client, tmp_path / "before", credential)
    assert len(files.lists) == 2
    assert (await _check(files)).code == 0
    suspended = await client.post(
        f"/v1/certificates/{certificate['number']}/suspend", json={"reason": "checking"}, headers=bearer(issuer)
    )
    assert suspended.status_code == 200, suspended.text
    outcome = await _check(await _write(client, tmp_path / "after", credential))
    assert outcome.code == 1, outcome.out
    assert outcome.steps["status"] == "FAIL", outcome.out
    assert "suspension bit" in outcome.out


async def test_credentials_from_before_and_after_a_rotation_both_pass(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    admin, issuer = await _setup(app, client)
    before = await issued_certificate(client, issuer)
    before_credential = await _credential(client, issuer, before["number"])
    rotated = await client.post(f"/v1/issuers/{CODE}/keys/rotate", headers=bearer(admin))
    assert rotated.status_code == 201, rotated.text
    after = await issued_certificate(client, issuer)
    after_credential = await _credential(client, issuer, after["number"])

    # The kid is the key's URL, under the body's issuer identifier.
    keys_url = f"https://registry.test/v1/issuers/{CODE}/keys/"
    assert jwt.get_unverified_header(before_credential)["kid"] == keys_url + before["kid"]
    assert jwt.get_unverified_header(after_credential)["kid"] == keys_url + rotated.json()["kid"]
    assert rotated.json()["kid"] != before["kid"]

    files = await _write(client, tmp_path, after_credential, name="after")
    assert _status_urls(before_credential) == _status_urls(after_credential)
    before_file = tmp_path / "before.vc.jwt"
    before_file.write_text(before_credential, encoding="utf-8")
    for path in (before_file, files.credential):
        outcome = await _check(files, credential=path)
        assert outcome.code == 0, outcome.out + outcome.err
        assert set(outcome.steps.values()) == {"PASS"}, outcome.out


async def test_an_expired_credential_fails_at_dates(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, issuer = await _setup(app, client)
    valid_until = days_from_today(4 * 365)
    certificate = await issued_certificate(client, issuer, valid_until=valid_until)
    credential = await _credential(client, issuer, certificate["number"])
    keys: dict[str, Any] = (await client.get("/.well-known/jwks.json")).json()
    urls = _status_urls(credential)
    lists = {url: (await _fetch(client, url)).strip() for url in urls.values()}

    today = verify_credential(credential, jwks=keys, status_lists=lists)
    assert today.valid, today.render()

    later = verify_credential(credential, jwks=keys, status_lists=lists, now=datetime(2100, 1, 1, tzinfo=UTC))
    assert not later.valid
    outcomes = {step.name: step.outcome for step in later.steps}
    assert outcomes["format"] == outcomes["signature"] == outcomes["key"] == "pass"
    assert outcomes["dates"] == "fail", later.render()
    assert valid_until in later.render()
    assert "RESULT     NOT VALID" in later.render()

    before_award = verify_credential(credential, jwks=keys, status_lists=lists, now=datetime(2020, 1, 1, tzinfo=UTC))
    assert {step.name: step.outcome for step in before_award.steps}["dates"] == "fail"


async def test_a_credential_signed_by_another_bodys_key_fails(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    admin, issuer = await _setup(app, client)
    await create_issuer(client, admin, code=OTHER)
    certificate = await issued_certificate(client, issuer)
    genuine = await _credential(client, issuer, certificate["number"])
    files = await _write(client, tmp_path, genuine)
    assert (await _check(files)).code == 0

    # Another evaluation body signs a credential in BJ-AI-COMMITTEE's name with its own (published, valid) key; and
    # the registry's access-token key is in the same JWKS but is not a certificate-signing key at all.
    for signer in (OTHER, None):
        other_key, other_kid = await _signing_key_of(app, signer)
        forged = tmp_path / f"forged-{signer}.vc.jwt"
        forged.write_text(_resign(genuine, key=other_key, kid=other_kid), encoding="utf-8")
        outcome = await _check(files, credential=forged)
        assert outcome.code == 1, f"signed by {other_kid}:\n{outcome.out}"
        assert "RESULT     NOT VALID" in outcome.out
        assert outcome.steps["signature"] != "PASS" or outcome.steps["key"] != "PASS", outcome.out


async def test_a_status_list_signed_by_another_bodys_key_does_not_count(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    admin, issuer = await _setup(app, client)
    await create_issuer(client, admin, code=OTHER)
    certificate = await issued_certificate(client, issuer)
    credential = await _credential(client, issuer, certificate["number"])
    clean_list = await _fetch(client, _status_urls(credential)["message"])
    revoked = await client.post(
        f"/v1/certificates/{certificate['number']}/revoke",
        json={"reason": "falsified papers", "reason_code": "fraud"},
        headers=bearer(issuer),
    )
    assert revoked.status_code == 200, revoked.text
    files = await _write(client, tmp_path, credential)
    assert (await _check(files)).code == 1

    # Another body re-signs the old, clean status list (same id and purpose) with its own key.
    other_key, other_kid = await _signing_key_of(app, OTHER)
    stale = tmp_path / "stale-message.vc.jwt"
    stale.write_text(_resign(clean_list, key=other_key, kid=other_kid), encoding="utf-8")
    outcome = await _check(files, lists=(stale,))
    assert outcome.code == 1, outcome.out
    assert outcome.steps["status"] in {"FAIL", "UNKNOWN"}, outcome.out


async def test_a_credential_signed_after_the_compromise_fails_at_key(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    admin, issuer = await _setup(app, client)
    first = await issued_certificate(client, issuer)
    first_credential = await _credential(client, issuer, first["number"])
    await asyncio.sleep(1.1)  # whole seconds: the second credential is signed strictly later
    second = await issued_certificate(client, issuer)
    second_credential = await _credential(client, issuer, second["number"])
    compromised = await client.post(
        f"/v1/issuers/{CODE}/keys/{first['kid']}/compromise",
        json={"compromised_from": second["issued_at"]},
        headers=bearer(admin),
    )
    assert compromised.status_code == 200, compromised.text

    files = await _write(client, tmp_path, second_credential, name="second")
    later = await _check(files)
    assert later.code == 1, later.out
    assert later.steps["signature"] == "PASS"
    assert later.steps["key"] == "FAIL", later.out
    assert "compromised" in later.out
    # Offline, a signing time is only the signer's claim (a thief can backdate it), so even the credential signed
    # before the compromise date no longer counts...
    before = tmp_path / "first.vc.jwt"
    before.write_text(first_credential, encoding="utf-8")
    stale = await _check(files, credential=before)
    assert stale.code == 1, stale.out
    assert stale.steps["key"] == "FAIL"
    # ...but the registry still vouches for that certificate online, and re-issues its credential from the new key.
    renewed = tmp_path / "first-renewed.vc.jwt"
    renewed.write_text(await _credential(client, issuer, first["number"]), encoding="utf-8")
    fresh = await _check(files, credential=renewed)
    assert fresh.code == 0, fresh.out + fresh.err


async def test_offline_without_files_is_a_clear_error(tmp_path: Path) -> None:
    credential = tmp_path / "credential.vc.jwt"
    credential.write_text("a.b.c", encoding="utf-8")
    bare = await _run(str(credential), "--offline")
    assert bare.code == 2
    assert "--offline fetches nothing: give --jwks FILE" in bare.err
    assert bare.out == ""
    url = await _run(str(credential), "--offline", "--jwks", "https://registry.test/.well-known/jwks.json")
    assert url.code == 2
    assert "is a URL" in url.err
    for outcome in (bare, url):
        assert "Traceback" not in outcome.out + outcome.err


async def test_a_registry_that_is_down_gives_unknown_with_its_reason(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    files = await _write(client, tmp_path, await _credential(client, issuer, certificate["number"]))
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    no_list = await _run(str(files.credential), "--jwks", str(files.jwks), "--status-list", f"{down}/list.vc.jwt")
    no_keys = await _run(str(files.credential), "--jwks", f"{down}/.well-known/jwks.json")
    # Without --status-list the lists the credential names are fetched: https://registry.test does not resolve here.
    unnamed = await _run(str(files.credential), "--jwks", str(files.jwks))
    for outcome, step in ((no_list, "status"), (no_keys, "signature"), (unnamed, "status")):
        assert outcome.code == 1, outcome.out
        assert outcome.steps[step] == "UNKNOWN", outcome.out
        result = [line for line in outcome.out.splitlines() if line.startswith("RESULT")]
        assert len(result) == 1, outcome.out
        assert result[0].startswith("RESULT     UNKNOWN — "), outcome.out
        assert "could not be fetched" in result[0] or "not provided" in result[0], outcome.out
        assert "Traceback" not in outcome.out + outcome.err
    assert f"JWKS {down}/.well-known/jwks.json could not be fetched" in no_keys.out
