"""The transparency log as a partner uses it: keep a checkpoint, check a certificate's inclusion offline against it,
check that a later checkpoint extends it — and as the bureau checks it (`registry audit verify`)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from registry.db import create_engine, transaction
from registry.migrate import downgrade, upgrade
from registry.transparency import checkpoints, integrity, merkle
from tests.checks import assert_problem, run_sql
from tests.factories import bearer, certificate_body, ready_issuer, resident_id
from tests.integration.cli_support import registry_env, run_registry

ORIGIN = "registry.test/transparency"


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


async def _issue(client: httpx.AsyncClient, issuer: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/certificates", json=certificate_body(**overrides), headers=bearer(issuer))
    assert response.status_code == 201, response.text
    certificate: dict[str, Any] = response.json()
    return certificate


async def _revoke(client: httpx.AsyncClient, issuer: str, number: str) -> None:
    body = {"reason": "issued in error", "reason_code": "issued_in_error"}
    response = await client.post(f"/v1/certificates/{number}/revoke", json=body, headers=bearer(issuer))
    assert response.status_code == 200, response.text


async def _registry_key(client: httpx.AsyncClient, kid: str) -> Ed25519PublicKey:
    """The signing key as a relying party gets it: from the published JWKS, read by PyJWT."""
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    [jwk] = [key for key in response.json()["keys"] if key["kid"] == kid]
    assert jwk["key_use"] == "access_token"
    key = jwt.PyJWK(jwk).key
    assert isinstance(key, Ed25519PublicKey)
    return key


async def _checkpoint(client: httpx.AsyncClient) -> dict[str, Any]:
    """The current checkpoint, after checking both its forms against the published key."""
    response = await client.get("/v1/transparency/checkpoint")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    key = await _registry_key(client, body["kid"])
    note = checkpoints.verify(body["note"], origin=ORIGIN, key=key)
    assert (note.tree_size, note.root_hash, note.timestamp) == (
        body["tree_size"],
        _b64(body["root_hash"]),
        body["timestamp"],
    )
    signed = f"cosignature/v1\ntime {body['timestamp']}\n{ORIGIN}\n{body['tree_size']}\n{body['root_hash']}\n"
    key.verify(_b64(body["signature"]), signed.encode())  # raises if it does not verify
    return body


async def _proof(client: httpx.AsyncClient, number: str, **params: int) -> dict[str, Any]:
    response = await client.get(f"/v1/transparency/proof/{number}", params=params)
    assert response.status_code == 200, response.text
    proof: dict[str, Any] = response.json()
    return proof


def _included(proof: dict[str, Any], checkpoint: dict[str, Any]) -> bool:
    return merkle.verify_inclusion(
        proof["leaf_index"],
        checkpoint["tree_size"],
        _b64(proof["leaf_hash"]),
        [_b64(h) for h in proof["audit_path"]],
        _b64(checkpoint["root_hash"]),
    )


async def _leaf_indexes(app: FastAPI) -> list[int]:
    async with transaction(app.state.sessions) as session:
        rows = await session.execute(text("SELECT leaf_index FROM transparency_leaves ORDER BY leaf_index"))
        return [int(i) for i in rows.scalars()]


async def test_a_partner_checks_an_issued_and_revoked_certificate_offline(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    id_number = resident_id()
    certificate = await _issue(
        client, issuer, holder={"name": "王小明", "id_type": "resident_id", "id_number": id_number}
    )
    await _revoke(client, issuer, certificate["number"])

    checkpoint = await _checkpoint(client)
    proof = await _proof(client, certificate["number"])

    assert checkpoint["tree_size"] == 2
    assert checkpoint["note"].startswith(f"{ORIGIN}\n2\n{checkpoint['root_hash']}\n\n\u2014 {ORIGIN} ")
    assert (proof["leaf_index"], proof["tree_size"]) == (0, 2)
    assert _included(proof, checkpoint)
    data = _b64(proof["leaf_data"])
    assert merkle.leaf_hash(data) == _b64(proof["leaf_hash"])
    leaf = json.loads(data)
    assert leaf["type"] == "issuance"
    assert leaf["number"] == certificate["number"]
    assert leaf["signature_sha256"] == hashlib.sha256(certificate["signature"].encode()).hexdigest()
    for personal in ("王小明", id_number, id_number[-4:]):
        assert personal not in data.decode()
    assert await _leaf_indexes(app) == [0, 1]


async def test_the_revocation_is_a_leaf_that_names_the_new_status(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    certificate = await _issue(client, issuer)
    await _revoke(client, issuer, certificate["number"])

    async with transaction(app.state.sessions) as session:
        row = (await session.execute(text("SELECT kind, data FROM transparency_leaves WHERE leaf_index = 1"))).one()

    leaf = json.loads(bytes(row.data))
    assert row.kind == "status_change"
    assert {k: leaf[k] for k in ("type", "number", "event", "status", "reason_code")} == {
        "type": "status_change",
        "number": certificate["number"],
        "event": "revoked",
        "status": "revoked",
        "reason_code": "issued_in_error",
    }
    assert "reason" not in leaf  # the free-text reason stays with the issuer and the bureau


async def test_a_correction_logs_the_successor_and_the_superseded_original(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    original = await _issue(client, issuer)
    corrected = await client.post(
        f"/v1/certificates/{original['number']}/correct",
        json={"reason": "wrong level", "level": "senior"},
        headers=bearer(issuer),
    )
    assert corrected.status_code == 201, corrected.text
    successor = corrected.json()["number"]

    checkpoint = await _checkpoint(client)
    proof = await _proof(client, successor)

    assert checkpoint["tree_size"] == 3
    assert proof["leaf_index"] == 1
    assert _included(proof, checkpoint)
    assert json.loads(_b64(proof["leaf_data"]))["type"] == "correction"
    assert json.loads(_b64(proof["leaf_data"]))["supersedes"] == original["number"]
    async with transaction(app.state.sessions) as session:
        row = (await session.execute(text("SELECT number, data FROM transparency_leaves WHERE leaf_index = 2"))).one()
    assert row.number == original["number"]
    assert json.loads(bytes(row.data))["status"] == "superseded"


async def test_a_batch_of_n_adds_n_consecutive_leaves(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    await _issue(client, issuer)
    rows = [
        # Born on another day than the default holder: the suite-wide automatic sequence cannot collide with these.
        certificate_body(
            holder={
                "name": f"学员{i}",
                "id_type": "resident_id",
                "id_number": resident_id(birth="19930303", sequence=i),
            }
        )
        for i in range(12)
    ]
    response = await client.post(
        "/v1/certificate-batches", json={"certificates": rows}, headers={**bearer(issuer), "Idempotency-Key": "tlog"}
    )
    assert response.status_code == 201, response.text

    checkpoint = await _checkpoint(client)
    proofs = [await _proof(client, c["number"]) for c in response.json()["certificates"]]

    assert checkpoint["tree_size"] == 13
    assert [p["leaf_index"] for p in proofs] == list(range(1, 13))
    assert all(_included(p, checkpoint) for p in proofs)
    assert await _leaf_indexes(app) == list(range(13))


async def test_concurrent_issuance_leaves_a_gap_free_log(app: FastAPI, client: httpx.AsyncClient, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers; the advisory lock is PostgreSQL's")
    issuer = await ready_issuer(app, client)
    bodies = [
        certificate_body(holder={"name": "并发", "id_type": "resident_id", "id_number": resident_id(sequence=500 + i)})
        for i in range(12)
    ]

    answers = await asyncio.gather(*(client.post("/v1/certificates", json=b, headers=bearer(issuer)) for b in bodies))

    assert [a.status_code for a in answers] == [201] * 12
    assert await _leaf_indexes(app) == list(range(12))
    checkpoint = await _checkpoint(client)
    for answer in answers:
        assert _included(await _proof(client, answer.json()["number"]), checkpoint)
    async with transaction(app.state.sessions) as session:
        assert await integrity.first_broken_leaf(session) is None


async def test_a_later_checkpoint_extends_an_earlier_one(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    first = await _issue(client, issuer)
    await _issue(client, issuer)
    await _issue(client, issuer)
    earlier = await _checkpoint(client)
    for _ in range(4):
        await _issue(client, issuer)
    await _revoke(client, issuer, first["number"])
    later = await _checkpoint(client)

    response = await client.get("/v1/transparency/consistency", params={"from": 3, "to": later["tree_size"]})
    old_proof = await _proof(client, first["number"], tree_size=earlier["tree_size"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"], later["tree_size"]) == (3, 8, 8)
    roots = _b64(earlier["root_hash"]), _b64(later["root_hash"])
    assert merkle.verify_consistency(3, 8, *roots, [_b64(h) for h in body["proof"]])
    assert old_proof["tree_size"] == 3
    assert _included(old_proof, earlier)
    assert not _included(old_proof, later)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/transparency/consistency", {"from": 2, "to": 1}, "from"),
        ("/v1/transparency/consistency", {"from": 1, "to": 3}, "to"),
        ("/v1/transparency/consistency", {"from": 0, "to": 2}, "from"),
        ("/v1/transparency/consistency", {"from": "one", "to": 2}, "from"),
        ("/v1/transparency/consistency", {"from": 1}, "to"),
        ("/v1/transparency/proof/{number}", {"tree_size": 3}, "tree_size"),
        ("/v1/transparency/proof/{number}", {"tree_size": 0}, "tree_size"),
        ("/v1/transparency/proof/{later}", {"tree_size": 1}, "tree_size"),
    ],
)
async def test_bad_proof_requests_are_refused_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, path: str, params: dict[str, Any], field: str
) -> None:
    issuer = await ready_issuer(app, client)
    number, later = (await _issue(client, issuer))["number"], (await _issue(client, issuer))["number"]

    response = await client.get(path.format(number=number, later=later), params=params)

    assert_problem(response, 422, field=field)


async def test_a_number_not_in_the_log_is_not_found(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/transparency/proof/BJ-T-2026-0000000000-X"), 404)


async def test_the_proof_is_found_by_the_number_as_printed_as_stored_or_in_lower_case(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    issuer = await ready_issuer(app, client)
    issued = await _issue(client, issuer)
    number, printed = issued["number"], issued["number_display"]
    assert printed != number  # grouped with hyphens on the certificate
    proofs = [await _proof(client, sent) for sent in (number, printed, printed.lower(), f" {number.lower()} ")]
    assert all(proof == proofs[0] for proof in proofs), proofs
    assert _included(proofs[0], await _checkpoint(client))
    not_a_number = await client.get("/v1/transparency/proof/BJ-T-2026-not-a-number")
    assert_problem(not_a_number, 404)


async def test_the_empty_log_has_a_signed_checkpoint(client: httpx.AsyncClient) -> None:
    checkpoint = await _checkpoint(client)

    assert checkpoint["tree_size"] == 0
    assert _b64(checkpoint["root_hash"]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE transparency_leaves SET number = 'X' WHERE leaf_index = 0",
        "DELETE FROM transparency_leaves WHERE leaf_index = 0",
        "UPDATE transparency_nodes SET hash = hash",
        "DELETE FROM transparency_heads",
    ],
)
async def test_the_log_cannot_be_rewritten_in_the_database(
    app: FastAPI, client: httpx.AsyncClient, statement: str
) -> None:
    issuer = await ready_issuer(app, client)
    await _issue(client, issuer)
    await _issue(client, issuer)

    with pytest.raises(DBAPIError, match="append-only"):
        await run_sql(app, statement)


async def test_truncating_the_leaves_is_refused_on_postgresql(
    app: FastAPI, client: httpx.AsyncClient, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    issuer = await ready_issuer(app, client)
    await _issue(client, issuer)

    with pytest.raises(DBAPIError, match="append-only"):
        await run_sql(app, "TRUNCATE transparency_leaves")


# --- registry audit verify ----------------------------------------------------------------------------------------


async def _tamper(app: FastAPI, statement: str, **params: object) -> None:
    """What an attacker with the table owner's rights could do (see test_audit's ``_tamper``)."""
    async with transaction(app.state.sessions) as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("ALTER TABLE transparency_leaves DISABLE TRIGGER USER"))
            await session.execute(text(statement), params)
            await session.execute(text("ALTER TABLE transparency_leaves ENABLE TRIGGER USER"))
        else:
            await session.execute(text("DROP TRIGGER IF EXISTS transparency_leaves_no_update"))
            await session.execute(text("DROP TRIGGER IF EXISTS transparency_leaves_no_delete"))
            await session.execute(text(statement), params)


async def _five_leaves(app: FastAPI, client: httpx.AsyncClient) -> None:
    issuer = await ready_issuer(app, client)
    numbers = [(await _issue(client, issuer))["number"] for _ in range(4)]
    await _revoke(client, issuer, numbers[0])


async def test_audit_verify_reports_an_intact_log_then_names_a_leaf_altered(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    await _five_leaves(app, client)
    intact = await run_registry("audit", "verify", env=registry_env(database_url))
    await _tamper(app, "UPDATE transparency_leaves SET data = :data WHERE leaf_index = 2", data=b'{"v":1}')

    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url))

    assert intact[0] == 0, intact[1] + intact[2]
    assert "transparency log intact: 5 leaves" in intact[1]
    assert code == 1, out + err
    assert "transparency leaf 2 was altered: its hash does not match its data" in out


async def test_audit_verify_names_a_leaf_altered_and_rehashed(app: FastAPI, client: httpx.AsyncClient) -> None:
    await _five_leaves(app, client)
    data = json.dumps({"v": 1, "type": "issuance", "number": "forged"}).encode()
    await _tamper(
        app,
        "UPDATE transparency_leaves SET data = :d, leaf_hash = :h WHERE leaf_index = 3",
        d=data,
        h=merkle.leaf_hash(data),
    )

    async with transaction(app.state.sessions) as session:
        broken = await integrity.first_broken_leaf(session)

    assert broken is not None
    assert broken.describe() == "transparency leaf 3 was altered: the tree no longer has the root recorded at size 4"


async def test_audit_verify_names_a_leaf_removed(app: FastAPI, client: httpx.AsyncClient, database_url: str) -> None:
    await _five_leaves(app, client)
    await _tamper(app, "DELETE FROM transparency_leaves WHERE leaf_index = 1")

    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url))

    assert code == 1, out + err
    assert "transparency leaf 1 was removed" in out


async def test_audit_verify_names_the_newest_leaf_removed(app: FastAPI, client: httpx.AsyncClient) -> None:
    await _five_leaves(app, client)
    await _tamper(app, "DELETE FROM transparency_leaves WHERE leaf_index = 4")

    async with transaction(app.state.sessions) as session:
        broken = await integrity.first_broken_leaf(session)

    assert broken is not None
    assert broken.describe() == "transparency leaf 4 was removed (the log had 5 leaves)"


async def test_the_migration_logs_certificates_issued_before_the_log_existed(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    issuer = await ready_issuer(app, client)
    first, second = await _issue(client, issuer), await _issue(client, issuer)
    await _revoke(client, issuer, first["number"])
    corrected = await client.post(
        f"/v1/certificates/{second['number']}/correct",
        json={"reason": "typo", "level": "senior"},
        headers=bearer(issuer),
    )
    assert corrected.status_code == 201, corrected.text
    async with transaction(app.state.sessions) as session:
        logged = (await session.execute(text("SELECT data FROM transparency_leaves ORDER BY leaf_index"))).scalars()
        as_logged = [bytes(d) for d in logged]
    engine = create_engine(database_url)
    try:
        await downgrade(engine, "20261203_0008")
        await upgrade(engine)
    finally:
        await engine.dispose()

    async with transaction(app.state.sessions) as session:
        rebuilt = [bytes(d) for d in (await session.execute(text("SELECT data FROM transparency_leaves"))).scalars()]
        broken = await integrity.first_broken_leaf(session)
    checkpoint = await _checkpoint(client)

    assert broken is None
    assert [json.loads(d)["type"] for d in rebuilt] == [
        "issuance",
        "issuance",
        "status_change",
        "correction",
        "status_change",
    ]
    assert sorted(rebuilt) == sorted(as_logged)
    assert checkpoint["tree_size"] == 5
    assert _included(await _proof(client, corrected.json()["number"]), checkpoint)
