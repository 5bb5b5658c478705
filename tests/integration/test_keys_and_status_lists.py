"""Signing keys (rotation, the command, compromise) and the W3C Bitstring Status Lists that publish revocation and
suspension."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import sys
from datetime import datetime
from typing import Any

import httpx
import jwt
from fastapi import FastAPI
from joserfc import jws as joserfc_jws
from joserfc.jwk import OKPKey

from tests.checks import assert_problem
from tests.conftest import MASTER_KEY, RegistryClock
from tests.factories import (
    bearer,
    create_issuer,
    issued_certificate,
)
from tests.integration.lifecycle_support import (
    CODE,
    OTHER,
    act,
    key_named,
    published_keys,
    set_up,
    verified,
)

MIN_LIST_BITS = 131_072


# --- keys ----------------------------------------------------------------------------------------------------------


async def test_rotation_keeps_old_certificates_valid_and_signs_new_ones_with_a_new_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    first = await issued_certificate(client, world.issuer)
    before = await published_keys(client)

    rotated = await client.post(f"/v1/issuers/{CODE}/keys/rotate", headers=bearer(world.admin))
    assert rotated.status_code == 201, rotated.text
    new_kid = rotated.json()["kid"]
    assert rotated.json()["status"] == "active"
    second = await issued_certificate(client, world.issuer)

    assert second["kid"] == new_kid
    assert second["kid"] != first["kid"]
    for certificate in (first, second):
        verification = await verified(client, certificate)
        assert verification["result"] == "valid", verification
        assert verification["signature_valid"] is True

    after = await published_keys(client)
    # Published twice: under its short kid and under its URL, the kid of credentials signed since keys have URLs.
    new_url = f"https://registry.test/v1/issuers/{CODE}/keys/{new_kid}"
    assert len(after) == len(before) + 2
    assert {k["kid"] for k in after} - {k["kid"] for k in before} == {new_kid, new_url}
    assert key_named(after, new_url)["x"] == key_named(after, new_kid)["x"]
    old = key_named(after, first["kid"])
    assert old["status"] == "retired"
    assert old["valid_until"] is not None
    assert datetime.fromisoformat(old["valid_until"]) >= datetime.fromisoformat(first["issued_at"])
    new = key_named(after, new_kid)
    assert new["status"] == "active"
    assert new["valid_until"] is None
    assert new["issuer_code"] == CODE
    issuer = (await client.get(f"/v1/issuers/{CODE}")).json()
    assert set(issuer["signing_keys"]) >= {first["kid"], new_kid}


async def test_keys_rotate_command_starts_a_new_key(app: FastAPI, client: httpx.AsyncClient, database_url: str) -> None:
    world = await set_up(app, client)
    first = await issued_certificate(client, world.issuer)
    env = {"REGISTRY_DATABASE_URL": database_url, "REGISTRY_MASTER_KEY": MASTER_KEY, "REGISTRY_ENV": "test"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "keys",
        "rotate",
        "--issuer",
        CODE,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    printed = json.loads(out.decode())
    new_kid = printed["kid"]
    assert printed["issuer"] == CODE
    assert new_kid != first["kid"]

    second = await issued_certificate(client, world.issuer)
    assert second["kid"] == new_kid
    keys = await published_keys(client)
    assert key_named(keys, first["kid"])["status"] == "retired"
    assert key_named(keys, new_kid)["status"] == "active"
    for certificate in (first, second):
        assert (await verified(client, certificate))["result"] == "valid"

    unknown = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "keys",
        "rotate",
        "--issuer",
        "NOPE-1",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(unknown.communicate(), timeout=120)
    assert unknown.returncode == 1
    assert "NOPE-1" in err.decode()


async def test_a_compromised_key_casts_doubt_only_from_the_compromise_on(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    first = await issued_certificate(client, world.issuer)
    await asyncio.sleep(1.1)  # issued_at has whole seconds: the two must not share one
    second = await issued_certificate(client, world.issuer)
    assert first["kid"] == second["kid"]
    assert datetime.fromisoformat(second["issued_at"]) > datetime.fromisoformat(first["issued_at"])
    kid = first["kid"]

    response = await client.post(
        f"/v1/issuers/{CODE}/keys/{kid}/compromise",
        json={"compromised_from": second["issued_at"]},
        headers=bearer(world.admin),
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "compromised"

    before = await verified(client, first)
    assert before["result"] == "valid", before
    assert before["signature_valid"] is True
    after = await verified(client, second)
    assert after["result"] == "unknown", after
    assert after["reason"] == "signing_key_compromised"

    keys = await published_keys(client)
    marked = key_named(keys, kid)
    assert marked["status"] == "compromised"
    assert datetime.fromisoformat(marked["compromised_from"]) == datetime.fromisoformat(second["issued_at"])

    third = await issued_certificate(client, world.issuer)
    assert third["kid"] != kid
    assert key_named(keys, third["kid"])["status"] == "active"
    assert (await verified(client, third))["result"] == "valid"


async def test_only_the_bureau_marks_a_key_compromised(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    response = await client.post(
        f"/v1/issuers/{CODE}/keys/{certificate['kid']}/compromise",
        json={"compromised_from": certificate["issued_at"]},
        headers=bearer(world.issuer),
    )
    assert_problem(response, 403)
    missing = await client.post(
        f"/v1/issuers/{CODE}/keys/{CODE}-20260101-deadbeef/compromise",
        json={"compromised_from": certificate["issued_at"]},
        headers=bearer(world.admin),
    )
    assert_problem(missing, 404)
    assert (await verified(client, certificate))["result"] == "valid"


# --- status lists --------------------------------------------------------------------------------------------------


def _b64url_json(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def _decode_bitstring(encoded: str) -> bytes:
    """Independent of the app: multibase 'u' (base64url, no padding) of the GZIP-compressed bitstring."""
    assert encoded.startswith("u"), encoded[:10]
    payload = encoded[1:]
    assert "=" not in payload
    return gzip.decompress(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _bit(bits: bytes, index: int) -> bool:
    # Index 0 is the most significant (left-most) bit of the first byte.
    return (bits[index // 8] >> (7 - index % 8)) & 1 == 1


def _verify_jws(token: str, keys: list[dict[str, Any]]) -> dict[str, Any]:
    """Verified with joserfc, which knows RFC 9864's ``Ed25519`` (PyJWT names it only ``EdDSA``)."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "vc+jwt"
    assert header["alg"] == "Ed25519"
    jwk = key_named(keys, header["kid"])
    assert jwk["alg"] == "Ed25519"
    verified = joserfc_jws.deserialize_compact(token, OKPKey.import_key(jwk), algorithms=["Ed25519"])
    claims: dict[str, Any] = json.loads(verified.payload)
    return claims


async def _credential(client: httpx.AsyncClient, token: str, number: str) -> str:
    response = await client.get(f"/v1/certificates/{number}/credential", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vc+jwt")
    return response.text.strip()


async def _status(client: httpx.AsyncClient, entry: dict[str, Any]) -> int:
    """The entry's value in the list it names: ``statusSize`` bits (1 unless said), most significant first."""
    response = await client.get(entry["statusListCredential"])
    assert response.status_code == 200, response.text
    claims = _verify_jws(response.text.strip(), await published_keys(client))
    assert claims["id"] == entry["statusListCredential"]
    subject = claims["credentialSubject"]
    assert subject["type"] == "BitstringStatusList"
    assert subject["statusPurpose"] == entry["statusPurpose"]
    size, index = int(entry.get("statusSize", 1)), int(entry["statusListIndex"])
    bits = _decode_bitstring(subject["encodedList"])
    assert len(bits) * 8 >= MIN_LIST_BITS * size
    return sum(_bit(bits, index * size + k) << (size - 1 - k) for k in range(size))


def _one_bit_entry(entry: dict[str, Any], purpose: str) -> dict[str, Any]:
    """The entry of the same index in the one-bit list credentials signed before the message list name."""
    url = entry["statusListCredential"].removesuffix("-message") + f"-{purpose}"
    return {"statusListCredential": url, "statusPurpose": purpose, "statusListIndex": entry["statusListIndex"]}


async def test_status_lists_publish_suspension_and_revocation(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    token = await _credential(client, world.issuer, number)
    claims = _verify_jws(token, await published_keys(client))
    assert claims["credentialSubject"]["certificateNumber"] == number

    # One entry (Open Badges 3.0 allows no more): the two-bit message list, revoked << 1 | suspended.
    entry = claims["credentialStatus"]
    assert entry["type"] == "BitstringStatusListEntry"
    assert (entry["statusPurpose"], entry["statusSize"]) == ("message", 2)
    assert entry["statusListCredential"].startswith(f"https://registry.test/v1/status-lists/{CODE}/")
    assert entry["statusListCredential"].endswith("-message")
    assert 0 <= int(entry["statusListIndex"]) < MIN_LIST_BITS
    revocation, suspension = _one_bit_entry(entry, "revocation"), _one_bit_entry(entry, "suspension")

    async def statuses() -> tuple[int, int, int]:
        return await _status(client, entry), await _status(client, revocation), await _status(client, suspension)

    assert await statuses() == (0b00, 0, 0)
    assert (await act(client, world.issuer, number, "suspend")).status_code == 200
    assert await statuses() == (0b01, 0, 1)
    assert (await act(client, world.issuer, number, "reinstate")).status_code == 200
    assert await statuses() == (0b00, 0, 0)
    assert (await act(client, world.issuer, number, "revoke")).status_code == 200
    assert await statuses() == (0b10, 1, 0)


async def test_a_status_list_change_touches_only_its_own_bit(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await set_up(app, client)
    first = await issued_certificate(client, world.issuer)
    second = await issued_certificate(client, world.issuer)
    keys = await published_keys(client)
    first_entry = _verify_jws(await _credential(client, world.issuer, first["number"]), keys)["credentialStatus"]
    second_entry = _verify_jws(await _credential(client, world.issuer, second["number"]), keys)["credentialStatus"]
    assert first_entry["statusListIndex"] != second_entry["statusListIndex"] or (
        first_entry["statusListCredential"] != second_entry["statusListCredential"]
    )
    assert (await act(client, world.issuer, first["number"], "revoke")).status_code == 200
    assert await _status(client, first_entry) == 0b10
    assert await _status(client, second_entry) == 0
    assert await _status(client, _one_bit_entry(first_entry, "revocation")) == 1
    assert await _status(client, _one_bit_entry(second_entry, "revocation")) == 0


async def test_status_lists_are_cacheable_and_unknown_lists_are_404(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    registry_clock.freeze()  # a list is signed afresh each minute (validFrom), and its ETag changes with it
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    claims = _verify_jws(await _credential(client, world.issuer, certificate["number"]), await published_keys(client))
    url = claims["credentialStatus"]["statusListCredential"]

    first = await client.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/vc+jwt")
    cache_control = first.headers["cache-control"]
    assert "max-age=" in cache_control
    assert int(cache_control.split("max-age=")[1].split(",")[0]) > 0
    etag = first.headers["etag"]
    assert etag

    header = _b64url_json(first.text.split(".")[0])
    assert header["typ"] == "vc+jwt"

    same = await client.get(url)
    assert same.headers["etag"] == etag
    unchanged = await client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag

    revocation_url = _one_bit_entry(claims["credentialStatus"], "revocation")["statusListCredential"]
    revocation_etag = (await client.get(revocation_url)).headers["etag"]
    assert (await act(client, world.issuer, certificate["number"], "revoke")).status_code == 200
    changed = await client.get(revocation_url, headers={"If-None-Match": revocation_etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != revocation_etag
    assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 200  # the message list too

    list_name = revocation_url.rsplit("/", 1)[1]
    for path in (
        f"/v1/status-lists/{CODE}/ffffffffffff-revocation",
        f"/v1/status-lists/{CODE}/ffffffffffff-message",
        f"/v1/status-lists/{CODE}/{list_name.rsplit('-', 1)[0]}-nothing",
        f"/v1/status-lists/{CODE}/nothing",
        f"/v1/status-lists/NOPE-1/{list_name}",
    ):
        assert_problem(await client.get(path), 404)
    await create_issuer(client, world.admin, code=OTHER)
    assert_problem(await client.get(f"/v1/status-lists/{OTHER}/{list_name}"), 404)
    assert_problem(await client.get(f"/v1/status-lists/{OTHER}/{url.rsplit('/', 1)[1]}"), 404)
