"""A claim-code session ends once the certificate whose code opened it, or any of its correction chain, is revoked as
issued in error (registry.auth.claim_chains): the person the notice reached by mistake stops reading the stranger's
certificates at once, not when the token expires 15 minutes later."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from registry import bulk
from registry.auth import claim_chains, tokens
from registry.auth.scopes import Role
from registry.certificates.models import Certificate, Status
from registry.certificates.schemas import RevocationReason
from tests.factories import bearer, issued_certificate
from tests.integration.test_holder_pages import csrf_of
from tests.integration.test_holder_scope import _holder_of, _one_person_two_bodies


async def _revoke(client: httpx.AsyncClient, body: str, number: str, reason_code: str) -> None:
    revoked = await client.post(
        f"/v1/certificates/{number}/revoke",
        json={"reason": "wrong identity number typed", "reason_code": reason_code},
        headers=bearer(body),
    )
    assert revoked.status_code == 200, revoked.text


async def _page_sign_in(client: httpx.AsyncClient, id_number: str, claim_code: str) -> None:
    form = await client.get("/holder")
    body = {"csrf": csrf_of(form), "id_type": "resident_id", "id_number": id_number, "claim_code": claim_code}
    signed_in = await client.post("/holder/sign-in", data=body, headers={"Origin": "https://registry.test"})
    assert signed_in.status_code == 303, signed_in.text


async def test_a_session_opened_with_a_code_ends_when_its_certificate_is_revoked_as_issued_in_error(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Body A's applicant signed in with the notice's code while A had typed a stranger's number on it: the token
    reads the stranger's certificate from A. A revokes it as issued in error: the same token, and the page's cookie,
    read nothing more."""
    person = await _one_person_two_bodies(app, client)
    holder = await _holder_of(client, person.id_number, person.from_a["claim_code"])
    before = await client.get("/v1/holder/certificates", headers=holder)
    assert [item["number"] for item in before.json()] == [person.from_a["number"]]
    await _page_sign_in(client, person.id_number, person.from_a["claim_code"])
    assert person.from_a["number_display"] in (await client.get("/holder")).text
    await _revoke(client, person.body_a, person.from_a["number"], "issued_in_error")
    after = await client.get("/v1/holder/certificates", headers=holder)
    assert after.status_code == 401, after.text
    assert "sign in again" in after.json()["detail"]
    credential = await client.get(f"/v1/certificates/{person.from_a['number']}/credential", headers=holder)
    assert credential.status_code == 401
    page = await client.get("/holder")
    assert page.status_code == 200
    assert person.from_a["number_display"] not in page.text
    assert 'name="claim_code"' in page.text  # signed out: the sign-in form again
    other = await client.get(
        "/v1/holder/certificates", headers=await _holder_of(client, person.id_number, person.from_b["claim_code"])
    )
    assert [item["number"] for item in other.json()] == [person.from_b["number"]]  # B's code: still open


async def test_a_session_ends_when_a_later_correction_of_its_certificate_is_revoked_as_issued_in_error(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The code of the first of a correction chain opened the session; the last of the chain is revoked as issued in
    error: none of the chain was ever the holder's, and the session ends."""
    person = await _one_person_two_bodies(app, client)
    holder = {"name": "李四", "id_type": "resident_id", "id_number": person.id_number}
    first = await issued_certificate(client, person.body_a, holder=holder, level="intermediate")
    session = await _holder_of(client, person.id_number, first["claim_code"])
    corrected = await client.post(
        f"/v1/certificates/{first['number']}/correct",
        json={"reason": "name misspelt", "holder_name": "李思"},
        headers=bearer(person.body_a),
    )
    assert corrected.status_code == 201, corrected.text
    assert (await client.get("/v1/holder/certificates", headers=session)).status_code == 200  # corrected: still open
    await _revoke(client, person.body_a, corrected.json()["number"], "issued_in_error")
    assert (await client.get("/v1/holder/certificates", headers=session)).status_code == 401


async def test_a_certificate_revoked_for_fraud_keeps_the_session_its_code_opened(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    person = await _one_person_two_bodies(app, client)
    holder = await _holder_of(client, person.id_number, person.from_b["claim_code"])
    await _revoke(client, person.body_b, person.from_b["number"], "fraud")
    listed = await client.get("/v1/holder/certificates", headers=holder)
    assert listed.status_code == 200, listed.text
    assert [(item["number"], item["result"]) for item in listed.json()] == [(person.from_b["number"], "revoked")]


async def test_a_claim_code_token_that_names_no_certificate_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Such a token cannot be held to its certificate's chain: the holder signs in once more."""
    person = await _one_person_two_bodies(app, client)
    holder = await _holder_of(client, person.id_number, person.from_b["claim_code"])
    async with app.state.sessions() as session:
        principal = await tokens.authenticate(app.state.context, session, holder["Authorization"][7:])
        claims: dict[str, Any] = {
            "sub": f"holder:{principal.holder_index}",
            "role": Role.holder.value,
            "scope": "",
            "via": tokens.HOLDER_VIA_CLAIM_CODE,
            "certificates_of": "BJ-BODY-B",
        }
        old = await tokens.sign(
            app.state.context, session, typ=tokens.HOLDER_TOKEN_TYPE, claims=claims, ttl=tokens.HOLDER_TOKEN_TTL
        )
    refused = await client.get("/v1/holder/certificates", headers=bearer(old))
    assert refused.status_code == 401
    assert "sign in again" in refused.json()["detail"]


def test_the_chain_names_the_certificates_columns_as_the_model_has_them() -> None:
    """claim_chains names the table rather than importing the model (the import contracts): held to it here."""
    model = bulk.table_of(Certificate)
    assert claim_chains.CERTIFICATES.name == model.name
    for name, named in claim_chains.CERTIFICATES.c.items():
        assert name in model.c, name
        assert named.type._type_affinity is model.c[name].type._type_affinity, name
    assert Status.revoked == claim_chains.REVOKED
    assert RevocationReason.issued_in_error == claim_chains.ISSUED_IN_ERROR
