"""The signed credential's JWT ``sub`` names the holder of that one certificate: stable across re-signings, different
between certificates, so credentials of one person shown to different relying parties cannot be joined by it — the
reason the identity hash is salted per certificate (registry/credentials/identity_hash.py). It used to be
``urn:talent-registry:holder:`` plus 32 hex digits of the holder's blind index, the same in every credential of that
person from every body.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from fastapi import FastAPI

from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, resident_id


def _claims(compact: str) -> dict[str, Any]:
    payload = compact.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


async def test_two_credentials_of_one_person_from_two_bodies_cannot_be_linked_by_their_subject(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The holder fetches the credentials of their two certificates (two bodies, each claimed with its own claim
    code) to hand to two employers: neither the identity hash nor ``sub`` is the same in both; fetched again, each
    credential keeps its own ``sub``."""
    admin = await admin_token(app, client)
    person = {"name": "钱七", "id_type": "resident_id", "id_number": resident_id(birth="19880303")}
    shown, fetched = [], []
    for code in ("BJ-BODY-A", "BJ-BODY-B"):
        await create_issuer(client, admin, code=code)
        certificate = await issued_certificate(client, await issuer_token(app, client, code), holder=person)
        signed_in = await client.post(
            "/v1/holder/sessions",
            json={"id_type": "resident_id", "id_number": person["id_number"], "claim_code": certificate["claim_code"]},
        )
        assert signed_in.status_code == 201, signed_in.text
        path = f"/v1/certificates/{certificate['number']}/credential"
        fetched.append((path, bearer(signed_in.json()["access_token"])))
        credential = await client.get(path, headers=fetched[-1][1])
        assert credential.status_code == 200, credential.text
        shown.append(_claims(credential.text))
    hashes = [claims["credentialSubject"]["identifier"][0]["identityHash"] for claims in shown]
    assert hashes[0] != hashes[1]  # the salted hashes do not link them ...
    subjects = [claims["sub"] for claims in shown]
    assert subjects[0] != subjects[1], f"... but the same subject in both does: {subjects[0]}"
    for subject in subjects:
        assert subject.startswith("urn:talent-registry:holder:")
        assert len(subject.rsplit(":", 1)[1]) == 32
    path, holder = fetched[0]
    again = await client.get(path, headers=holder)
    assert _claims(again.text)["sub"] == subjects[0]  # one certificate, one subject, however often it is signed
