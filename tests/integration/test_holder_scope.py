"""How far a holder session reaches. A claim code is handed out by the body that issued it, so that body always knows
it: a session opened with one reads only that body's certificates of the holder, never another body's (nor their QR
tokens, credentials, PDFs, share links or who looked at them). A session through the identity provider proved the
identity and reads every body's. A certificate revoked as issued in error was never the holder's: its code opens
nothing, nor that of any certificate of its correction chain."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from registry.auth import tokens
from registry.auth.scopes import Role
from registry.holder_access.sign_in import MAX_FAILURES
from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, resident_id
from tests.integration.test_holder_idp import _id_token, _provider
from tests.integration.test_holder_pages import csrf_of

NOTICE_EN = "Certificates from other bodies appear after signing in with that body's claim code"
NOTICE_ZH = "其他机构颁发的证书，请使用该机构的领取码登录"


@dataclass
class OnePersonTwoBodies:
    """One person holding a certificate from body A and one from body B (B knows only the identity number)."""

    id_number: str
    body_a: str  # access tokens
    body_b: str
    from_a: dict[str, Any]  # the certificates as issued, claim codes included
    from_b: dict[str, Any]


async def _one_person_two_bodies(app: FastAPI, client: httpx.AsyncClient) -> OnePersonTwoBodies:
    admin = await admin_token(app, client)
    await create_issuer(client, admin, code="BJ-BODY-A")
    await create_issuer(client, admin, code="BJ-BODY-B")
    body_a = await issuer_token(app, client, "BJ-BODY-A")
    body_b = await issuer_token(app, client, "BJ-BODY-B")
    id_number = resident_id(birth="19791111")
    from_b = await issued_certificate(
        client, body_b, holder={"name": "随便", "id_type": "resident_id", "id_number": id_number}, level="intermediate"
    )
    from_a = await issued_certificate(
        client, body_a, holder={"name": "王小红", "id_type": "resident_id", "id_number": id_number}
    )
    return OnePersonTwoBodies(id_number, body_a, body_b, from_a, from_b)


async def _sign_in(client: httpx.AsyncClient, id_number: str, claim_code: str, lang: str = "en") -> httpx.Response:
    return await client.post(
        "/v1/holder/sessions",
        json={"id_type": "resident_id", "id_number": id_number, "claim_code": claim_code},
        headers={"Accept-Language": lang},
    )


async def _holder_of(client: httpx.AsyncClient, id_number: str, claim_code: str) -> dict[str, str]:
    signed_in = await _sign_in(client, id_number, claim_code)
    assert signed_in.status_code == 201, signed_in.text
    return bearer(signed_in.json()["access_token"])


async def test_a_body_cannot_read_another_bodys_certificates_through_a_claim_code_it_minted_itself(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Body B knows only the person's identity number: it issues them any certificate of its own, is handed the claim
    code and signs in as the holder. The session lists B's certificate only, and says why the others are missing."""
    person = await _one_person_two_bodies(app, client)
    await asyncio.sleep(1.1)  # issued_at counts whole seconds: A's is now the holder's latest certificate
    holder = {"name": "王晓红", "id_type": "resident_id", "id_number": person.id_number}
    await issued_certificate(client, person.body_a, holder=holder, level="intermediate")
    direct = await client.get(f"/v1/certificates/{person.from_a['number']}", headers=bearer(person.body_b))
    assert direct.status_code == 404  # B cannot read A's certificate directly ...
    signed_in = await _sign_in(client, person.id_number, person.from_b["claim_code"])
    assert signed_in.status_code == 201, signed_in.text
    assert signed_in.json()["certificates_of"] == "BJ-BODY-B"
    assert signed_in.json()["holder_name"] == "随便"  # B's spelling, not the one on A's latest certificate
    assert NOTICE_EN in signed_in.json()["notice"]
    listed = await client.get("/v1/holder/certificates", headers=bearer(signed_in.json()["access_token"]))
    assert listed.status_code == 200, listed.text
    # ... nor through the holder's account it opened with its own code.
    assert [item["number"] for item in listed.json()] == [person.from_b["number"]]
    assert person.from_a["qr_token"] not in listed.text
    assert listed.headers["Holder-Scope"] == "issuing-body"
    in_chinese = await _sign_in(client, person.id_number, person.from_b["claim_code"], lang="zh")
    assert NOTICE_ZH in in_chinese.json()["notice"]
    assert in_chinese.headers["Content-Language"] == "zh-CN"


async def test_a_claim_code_session_reads_no_other_bodys_certificate_by_its_number(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The certificate's number is no way around the list: every read of one certificate answers 404, as for a
    number that does not exist, while the same reads of the issuing body's own certificate work."""
    person = await _one_person_two_bodies(app, client)
    holder = await _holder_of(client, person.id_number, person.from_b["claim_code"])
    reads = [
        "/v1/certificates/{number}/credential",
        "/v1/certificates/{number}/qr.png",
        "/v1/certificates/{number}/qr.svg",
        "/v1/holder/certificates/{number}.pdf",
    ]
    for path in reads:
        own = await client.get(path.format(number=person.from_b["number"]), headers=holder)
        assert own.status_code == 200, (path, own.text)
        theirs = await client.get(path.format(number=person.from_a["number"]), headers=holder)
        assert theirs.status_code == 404, (path, theirs.status_code)
    for number, expected in ((person.from_b["number"], 201), (person.from_a["number"], 404)):
        link = await client.post("/v1/holder/share-links", json={"number": number, "purpose": "hiring"}, headers=holder)
        assert link.status_code == expected, link.text


async def test_share_links_and_who_looked_at_another_bodys_certificate_stay_hidden_from_a_claim_code_session(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """What the holder did with A's certificate through the identity provider (a share link) and who verified it are
    not shown to a session opened with B's code, which can neither list nor withdraw that link."""
    person = await _one_person_two_bodies(app, client)
    key = Ed25519PrivateKey.generate()
    _provider(app, key)
    proven = await client.post("/v1/holder/sessions/external", json={"id_token": _id_token(key, person.id_number)})
    assert proven.status_code == 201, proven.text
    everything = bearer(proven.json()["access_token"])
    links = {}
    for certificate in (person.from_a, person.from_b):
        body = {"number": certificate["number"], "purpose": "hiring"}
        created = await client.post("/v1/holder/share-links", json=body, headers=everything)
        assert created.status_code == 201, created.text
        links[certificate["number"]] = created.json()["id"]
        assert (await client.get(f"/v1/verify/{certificate['qr_token']}")).status_code == 200
    await app.state.visits.flush()

    holder = await _holder_of(client, person.id_number, person.from_b["claim_code"])
    listed = await client.get("/v1/holder/share-links", headers=holder)
    assert [link["number"] for link in listed.json()] == [person.from_b["number"]]
    withdrawn = await client.delete(f"/v1/holder/share-links/{links[person.from_a['number']]}", headers=holder)
    assert withdrawn.status_code == 404
    looked = await client.get("/v1/holder/verifications", headers=holder)
    assert [visit["number"] for visit in looked.json()] == [person.from_b["number"]]
    still = await client.get("/v1/holder/share-links", headers=everything)
    assert {link["state"] for link in still.json()} == {"active"}  # A's link was not withdrawn
    seen = await client.get("/v1/holder/verifications", headers=everything)
    assert sorted(visit["number"] for visit in seen.json()) == sorted(links)


async def test_an_identity_provider_session_still_reads_every_bodys_certificates(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Signing in through the identity provider proves the identity: that session lists the certificates of every
    body and reads each of them, with no notice."""
    person = await _one_person_two_bodies(app, client)
    key = Ed25519PrivateKey.generate()
    _provider(app, key)
    proven = await client.post("/v1/holder/sessions/external", json={"id_token": _id_token(key, person.id_number)})
    assert proven.status_code == 201, proven.text
    assert proven.json()["certificates_of"] is None
    assert proven.json()["notice"] is None
    holder = bearer(proven.json()["access_token"])
    listed = await client.get("/v1/holder/certificates", headers=holder)
    assert sorted(item["number"] for item in listed.json()) == sorted(
        [person.from_a["number"], person.from_b["number"]]
    )
    assert listed.headers["Holder-Scope"] == "all"
    for certificate in (person.from_a, person.from_b):
        credential = await client.get(f"/v1/certificates/{certificate['number']}/credential", headers=holder)
        assert credential.status_code == 200, credential.text


async def test_the_holder_pages_of_a_claim_code_session_show_one_body_and_say_why_in_both_languages(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    person = await _one_person_two_bodies(app, client)
    form = await client.get("/holder")
    body = {
        "csrf": csrf_of(form),
        "id_type": "resident_id",
        "id_number": person.id_number,
        "claim_code": person.from_b["claim_code"],
    }
    signed_in = await client.post("/holder/sign-in", data=body, headers={"Origin": "https://registry.test"})
    assert signed_in.status_code == 303, signed_in.text
    home = await client.get("/holder")
    assert person.from_b["number_display"] in home.text
    assert person.from_a["number_display"] not in home.text
    assert NOTICE_ZH in home.text
    assert NOTICE_EN.replace("'", "&#39;") in home.text
    for path in ("/holder/certificates/{number}.pdf", "/holder/certificates/{number}/credential.jwt"):
        assert (await client.get(path.format(number=person.from_b["number"]))).status_code == 200, path
        assert (await client.get(path.format(number=person.from_a["number"]))).status_code == 404, path


async def test_the_claim_code_of_a_certificate_revoked_as_issued_in_error_no_longer_opens_the_account(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Body A typed a stranger's identity number on its applicant's certificate and revoked it (issued_in_error). The
    applicant still has the notice with the claim code and the number: that code opens nothing, answered exactly as a
    wrong code, and counted as one towards the lockout."""
    person = await _one_person_two_bodies(app, client)
    revoked = await client.post(
        f"/v1/certificates/{person.from_a['number']}/revoke",
        json={"reason": "wrong identity number typed", "reason_code": "issued_in_error"},
        headers=bearer(person.body_a),
    )
    assert revoked.status_code == 200, revoked.text
    mistaken = await _sign_in(client, person.id_number, person.from_a["claim_code"])
    wrong = await _sign_in(client, person.id_number, "AAAA-BBBB-CCCC")
    assert mistaken.status_code == wrong.status_code == 401, mistaken.text
    assert mistaken.json()["detail"] == wrong.json()["detail"]
    for _ in range(MAX_FAILURES - 2):  # two strikes so far
        assert (await _sign_in(client, person.id_number, person.from_a["claim_code"])).status_code == 401
    locked = await _sign_in(client, person.id_number, person.from_b["claim_code"])
    assert locked.status_code == 429, locked.text


async def test_the_claim_code_of_a_certificate_corrected_into_one_issued_in_error_opens_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Body A issued its applicant's certificate on a stranger's identity number, corrected the name on it twice (each
    predecessor superseded, each successor with a new code), then saw the number was wrong and revoked the last as
    issued_in_error. None of the chain was ever the stranger's: the notices the applicant still holds (the number and
    an earlier claim code) open nothing, answered as a wrong code, instead of the stranger's certificates from A."""
    person = await _one_person_two_bodies(app, client)  # the stranger, with a genuine certificate from A (from_a)
    holder = {"name": "李四", "id_type": "resident_id", "id_number": person.id_number}
    chain = [await issued_certificate(client, person.body_a, holder=holder, level="intermediate")]
    for name in ("李思", "李斯"):
        corrected = await client.post(
            f"/v1/certificates/{chain[-1]['number']}/correct",
            json={"reason": "name misspelt", "holder_name": name},
            headers=bearer(person.body_a),
        )
        assert corrected.status_code == 201, corrected.text
        chain.append(corrected.json())
    revoked = await client.post(
        f"/v1/certificates/{chain[-1]['number']}/revoke",
        json={"reason": "wrong identity number typed", "reason_code": "issued_in_error"},
        headers=bearer(person.body_a),
    )
    assert revoked.status_code == 200, revoked.text
    wrong = await _sign_in(client, person.id_number, "AAAA-BBBB-CCCC")
    for certificate in chain:
        refused = await _sign_in(client, person.id_number, certificate["claim_code"])
        assert refused.status_code == 401, (certificate["number"], refused.text)
        assert refused.json()["detail"] == wrong.json()["detail"]
    listed = await client.get(
        "/v1/holder/certificates", headers=await _holder_of(client, person.id_number, person.from_b["claim_code"])
    )
    assert [item["number"] for item in listed.json()] == [person.from_b["number"]]  # the stranger's own: still open


async def test_a_certificate_revoked_for_another_reason_or_corrected_keeps_its_claim_code(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Revoked for fraud, the certificate was still the holder's, who must be able to see that it is; a corrected
    one was superseded for the same holder. Both codes keep opening their body's certificates."""
    person = await _one_person_two_bodies(app, client)
    revoked = await client.post(
        f"/v1/certificates/{person.from_b['number']}/revoke",
        json={"reason": "falsified material", "reason_code": "fraud"},
        headers=bearer(person.body_b),
    )
    assert revoked.status_code == 200, revoked.text
    listed = await client.get(
        "/v1/holder/certificates", headers=await _holder_of(client, person.id_number, person.from_b["claim_code"])
    )
    assert [(item["number"], item["result"]) for item in listed.json()] == [(person.from_b["number"], "revoked")]
    corrected = await client.post(
        f"/v1/certificates/{person.from_a['number']}/correct",
        json={"reason": "name misspelt", "holder_name": "王晓红"},
        headers=bearer(person.body_a),
    )
    assert corrected.status_code == 201, corrected.text
    holder = await _holder_of(client, person.id_number, person.from_a["claim_code"])
    listed = await client.get("/v1/holder/certificates", headers=holder)
    assert sorted(item["number"] for item in listed.json()) == sorted(
        [person.from_a["number"], corrected.json()["number"]]
    )


async def test_a_holder_token_signed_before_sessions_were_limited_to_one_body_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Such a token cannot say how its session was opened; read as unlimited, a claim-code session would keep
    reading every body's certificates. Holder tokens live 15 minutes: the holder signs in once more."""
    person = await _one_person_two_bodies(app, client)
    holder = await _holder_of(client, person.id_number, person.from_b["claim_code"])
    subject = (await client.get("/v1/holder/certificates", headers=holder)).json()[0]["holder"]
    assert subject  # the session works; now a token as the registry signed them before
    async with app.state.sessions() as session:
        index = (await tokens.authenticate(app.state.context, session, holder["Authorization"][7:])).holder_index
        claims = {"sub": f"holder:{index}", "role": Role.holder.value, "scope": ""}
        old = await tokens.sign(
            app.state.context, session, typ=tokens.HOLDER_TOKEN_TYPE, claims=claims, ttl=tokens.HOLDER_TOKEN_TTL
        )
    refused = await client.get("/v1/holder/certificates", headers=bearer(old))
    assert refused.status_code == 401
    assert "sign in again" in refused.json()["detail"]
