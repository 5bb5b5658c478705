"""The signed credential against the standards' own artefacts (tests/vendor/README.md names each file's source and
licence): 1EdTech's Open Badges 3.0 AchievementCredential JSON schema, and JSON-LD expansion with the VC 2.0, OB 3.0.3
and the registry's own contexts only — zero schema violations, zero dropped terms. Then the two-bit ``message``
status list, the older two-entry shape offline, status-list freshness, and the last valid day in Beijing."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from jsonschema import Draft201909Validator
from pyld import jsonld

from registry.certificates.status_lists import bit, decode
from registry.clock import CHINA_STANDARD_TIME
from registry.credentials.jsonld import CONTEXT_FILE
from registry.credentials.message_list import status_value
from registry.credentials.offline import verify_credential
from registry.issuers import service as issuers
from registry.keys import service as keys
from registry.keys.models import KeyUse
from tests.conftest import RegistryClock
from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, resident_id
from tests.integration.lifecycle_support import CODE, act

VENDOR = Path(__file__).parent.parent / "vendor"
SCHEMA = json.loads((VENDOR / "ob_v3p0_achievementcredential_schema.json").read_text(encoding="utf-8"))
CONTEXTS = {
    "https://www.w3.org/ns/credentials/v2": VENDOR / "credentials-v2.jsonld",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": VENDOR / "ob-context-3.0.3.json",
    "https://registry.test/contexts/talent-registry/v1": CONTEXT_FILE,
}
JWT_CLAIMS = ("iss", "sub", "jti", "iat", "exp", "nbf")  # the JOSE layer, not JSON-LD terms
DROPPED = "urn:dropped-term#"
SKILL_CODE = "BJ-SKILL-ORG"
BIRTH = "19880712"


def _loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Only the vendored contexts and the registry's shipped one: nothing is fetched."""
    if url not in CONTEXTS:
        raise LookupError(f"{url} is not a vendored or shipped context")
    document = json.loads(CONTEXTS[url].read_text(encoding="utf-8"))
    return {"contextUrl": None, "documentUrl": url, "document": document}


def _iris(node: Any) -> set[str]:
    """Every property and node type IRI in an expanded JSON-LD document. (Not a value's datatype: OB 3.0.3 types
    ``awardedDate`` as ``xsd:dateTime`` without defining the ``xsd`` prefix, an upstream quirk no later context
    can mend; the term itself is defined.)"""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _iris(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "@type" and "@value" not in node:
                found |= set(value) if isinstance(value, list) else {value}
            elif not key.startswith("@"):
                found.add(key)
            found |= _iris(value)
    return found


def _dropped_terms(document: dict[str, Any]) -> set[str]:
    """Terms no context defines. Expanded as is, a JSON-LD processor drops them silently; with a catch-all ``@vocab``
    appended they surface under it instead — and a document with nothing undefined expands the same both ways."""
    plain = jsonld.expand(document, {"documentLoader": _loader})
    probe = {**document, "@context": [*document["@context"], {"@vocab": DROPPED}]}
    caught = jsonld.expand(probe, {"documentLoader": _loader})
    dropped = {iri.removeprefix(DROPPED) for iri in _iris(caught) if iri.startswith(DROPPED)}
    assert dropped or plain == caught, "nothing surfaced, yet the expansions differ"
    relative = {iri for iri in _iris(plain) if not iri.startswith(("http://", "https://", "urn:"))}
    assert relative == set(), relative
    return dropped


def _schema_errors(claims: dict[str, Any]) -> list[str]:
    checker = Draft201909Validator.FORMAT_CHECKER
    assert "date-time" in checker.checkers, "install rfc3339-validator: date-time would not be checked at all"
    validator = Draft201909Validator(SCHEMA, format_checker=checker)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(claims)]


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _document(claims: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in claims.items() if key not in JWT_CLAIMS}


async def _credential(client: httpx.AsyncClient, token: str, number: str) -> str:
    response = await client.get(f"/v1/certificates/{number}/credential", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.text.strip()


async def _issuers(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str]:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    skill = {"code": SKILL_CODE, "cert_type": "skill", "kind": "evaluation_organisation"}
    await create_issuer(client, admin, catalogue_codes=("SK-6-31-01-03",), levels=("level_3", "level_2"), **skill)
    return await issuer_token(app, client, CODE), await issuer_token(app, client, SKILL_CODE)


def _variants(title: str, skill: str) -> list[tuple[str, dict[str, Any]]]:
    """Title and skill, with and without an expiry, a resident ID card and a passport."""
    skill_award = {"cert_type": "skill", "catalogue_code": "SK-6-31-01-03", "level": "level_2"}
    passport = {"name": "John Smith", "id_type": "passport", "id_number": "E12345678"}
    return [
        (title, {"holder": {"name": "张三", "id_type": "resident_id", "id_number": resident_id(birth=BIRTH)}}),
        (title, {"valid_until": "2031-06-30", "holder": {**passport, "id_number": "E87654321"}}),
        (skill, {**skill_award, "holder": {"name": "李四", "id_type": "resident_id", "id_number": resident_id()}}),
        (skill, {**skill_award, "valid_until": "2030-12-31", "holder": passport}),
    ]


async def test_every_credential_validates_against_open_badges_and_expands_without_dropping_a_term(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    title, skill = await _issuers(app, client)
    for token, award in _variants(title, skill):
        certificate = await issued_certificate(client, token, **award)
        claims = _claims(await _credential(client, token, certificate["number"]))
        assert _schema_errors(claims) == [], json.dumps(claims, ensure_ascii=False, indent=1)
        assert _dropped_terms(_document(claims)) == set(), json.dumps(claims, ensure_ascii=False, indent=1)
        assert isinstance(claims["credentialStatus"], dict)  # OB 3.0 allows one
        achievement = claims["credentialSubject"]["achievement"]
        assert " / " in achievement["description"]
        assert " / " in achievement["criteria"]["narrative"]
        assert claims["awardedDate"] == f"{award.get('awarded_on', '2026-06-30')}T00:00:00+08:00"


async def test_the_holder_is_a_salted_hash_never_the_number(app: FastAPI, client: httpx.AsyncClient) -> None:
    title, skill = await _issuers(app, client)
    for token, award in _variants(title, skill):
        holder = award["holder"]
        certificate = await issued_certificate(client, token, **award)
        first = await _credential(client, token, certificate["number"])
        again = await _credential(client, token, certificate["number"])
        text = json.dumps(_claims(first), ensure_ascii=False)
        assert holder["id_number"] not in text
        assert certificate["holder"]["id_masked"] not in text
        assert BIRTH not in text
        assert "1988-07-12" not in text
        assert "identityMasked" not in text
        [identity] = _claims(first)["credentialSubject"]["identifier"]
        expected_type = "nationalIdentityNumber" if holder["id_type"] == "resident_id" else "ext:passport"
        assert identity["type"] == "IdentityObject"
        assert identity["hashed"] is True
        assert identity["identityType"] == expected_type
        # A relying party shown the identity card confirms it is the holder's.
        digest = hashlib.sha256((holder["id_number"] + identity["salt"]).encode()).hexdigest()
        assert identity["identityHash"] == f"sha256${digest}"
        assert len(identity["salt"]) >= 32
        # Signed again, the same hash: the salt belongs to the certificate.
        assert _claims(again)["credentialSubject"]["identifier"] == [identity]


async def test_the_registry_context_is_served_as_shipped(client: httpx.AsyncClient) -> None:
    response = await client.get("/contexts/talent-registry/v1")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    assert response.content == CONTEXT_FILE.read_bytes()
    assert int(response.headers["cache-control"].split("max-age=")[1]) >= 86_400
    unchanged = await client.get("/contexts/talent-registry/v1", headers={"If-None-Match": response.headers["etag"]})
    assert unchanged.status_code == 304


def test_the_document_loader_fetches_nothing() -> None:
    document = {"@context": ["https://www.w3.org/ns/credentials/v2", "https://example.org/ctx"], "name": "x"}
    with pytest.raises(jsonld.JsonLdError):
        jsonld.expand(document, {"documentLoader": _loader})


async def _list(client: httpx.AsyncClient, url: str) -> tuple[dict[str, Any], httpx.Response]:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return _claims(response.text), response


async def test_the_message_list_agrees_with_the_revocation_and_suspension_lists(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    title, _ = await _issuers(app, client)
    number = (await issued_certificate(client, title))["number"]
    entry = _claims(await _credential(client, title, number))["credentialStatus"]
    assert (entry["statusPurpose"], entry["statusSize"]) == ("message", 2)
    assert {item["status"]: item["message"] for item in entry["statusMessage"]} == {
        "0x0": "valid",
        "0x1": "suspended",
        "0x2": "revoked",
        "0x3": "revoked",
    }
    url, index = entry["statusListCredential"], int(entry["statusListIndex"])
    assert url.endswith("-message")
    base = url.removesuffix("-message")

    async def values() -> tuple[int, bool, bool]:
        message, response = await _list(client, url)
        subject = message["credentialSubject"]
        assert subject["statusPurpose"] == "message"
        assert _dropped_terms(_document(message)) == set()
        # Fresh status: ttl is the Cache-Control max-age, and the list is valid an hour.
        assert subject["ttl"] == 60_000
        assert response.headers["cache-control"] == "public, max-age=60"
        valid_for = datetime.fromisoformat(message["validUntil"]) - datetime.fromisoformat(message["validFrom"])
        assert valid_for == timedelta(hours=1)
        bits = decode(subject["encodedList"])
        assert len(bits) * 8 == 2 * 131_072
        revocation = decode((await _list(client, f"{base}-revocation"))[0]["credentialSubject"]["encodedList"])
        suspension = decode((await _list(client, f"{base}-suspension"))[0]["credentialSubject"]["encodedList"])
        return status_value(bits, index), bit(revocation, index), bit(suspension, index)

    assert await values() == (0, False, False)
    assert (await act(client, title, number, "suspend")).status_code == 200
    assert await values() == (1, False, True)
    assert (await act(client, title, number, "reinstate")).status_code == 200
    assert await values() == (0, False, False)
    assert (await act(client, title, number, "suspend")).status_code == 200
    assert (await act(client, title, number, "revoke")).status_code == 200
    assert (await values())[0] in (2, 3)


async def _old_shape(app: FastAPI, token: str) -> str:
    """The credential as the registry signed it before the message list: two one-bit entries, same body key."""
    claims = _claims(token)
    url = claims["credentialStatus"]["statusListCredential"].removesuffix("-message")
    index = claims["credentialStatus"]["statusListIndex"]
    claims["credentialStatus"] = [
        {
            "id": f"{url}-{purpose}#{index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": purpose,
            "statusListIndex": index,
            "statusListCredential": f"{url}-{purpose}",
        }
        for purpose in ("revocation", "suspension")
    ]
    async with app.state.sessions() as session:
        issuer = await issuers.get_by_code(session, CODE)
        assert issuer is not None
        key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
        assert key is not None
        private = app.state.context.keyring.private_key(key)
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key.kid, "typ": "vc+jwt"})


async def _verify(client: httpx.AsyncClient, token: str, **kwargs: Any) -> tuple[str, dict[str, str], str]:
    jwks = (await client.get("/.well-known/jwks.json")).json()
    claims = _claims(token)
    status = claims["credentialStatus"]
    urls = [entry["statusListCredential"] for entry in (status if isinstance(status, list) else [status])]
    lists = {url: (await client.get(url)).text.strip() for url in urls}
    report = verify_credential(token, jwks=jwks, status_lists=lists, **kwargs)
    return report.verdict, {step.name: step.outcome for step in report.steps}, report.render()


async def test_old_and_new_credentials_both_verify_offline(app: FastAPI, client: httpx.AsyncClient) -> None:
    title, _ = await _issuers(app, client)
    number = (await issued_certificate(client, title))["number"]
    new = await _credential(client, title, number)
    old = await _old_shape(app, new)
    for token in (new, old):
        verdict, _steps, render = await _verify(client, token)
        assert verdict == "VALID", render
    assert (await act(client, title, number, "suspend")).status_code == 200
    verdict, steps, render = await _verify(client, new)
    assert (verdict, steps["status"]) == ("NOT VALID", "fail"), render
    assert "the certificate is suspended" in render
    assert (await act(client, title, number, "revoke")).status_code == 200
    for token in (new, old):
        verdict, steps, render = await _verify(client, token)
        assert (verdict, steps["status"]) == ("NOT VALID", "fail"), render
        assert "revoked" in render


async def test_a_status_list_past_its_validity_is_unknown_offline(app: FastAPI, client: httpx.AsyncClient) -> None:
    title, _ = await _issuers(app, client)
    number = (await issued_certificate(client, title))["number"]
    credential = await _credential(client, title, number)
    verdict, steps, render = await _verify(client, credential, now=datetime.now(UTC) + timedelta(minutes=61))
    assert (verdict, steps["dates"], steps["status"]) == ("UNKNOWN", "pass", "unknown"), render
    assert "out of date" in render


async def test_the_last_valid_day_is_valid_online_and_offline_until_midnight_in_beijing(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    title, _ = await _issuers(app, client)
    last_day = date(2030, 6, 30)
    certificate = await issued_certificate(client, title, valid_until=last_day.isoformat())
    credential = await _credential(client, title, certificate["number"])
    assert _claims(credential)["validUntil"] == "2030-06-30T23:59:59+08:00"
    for moment, online, offline in (
        (datetime.combine(last_day, time(23, 59, 59), tzinfo=CHINA_STANDARD_TIME), "valid", "VALID"),
        (datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=CHINA_STANDARD_TIME), "expired", "NOT VALID"),
    ):
        registry_clock.set_now(moment)  # the status lists are signed at that moment too
        answer = await client.get(f"/v1/verify/{certificate['qr_token']}")
        assert answer.json()["result"] == online, (moment, answer.json())
        verdict, steps, render = await _verify(client, credential, now=moment)
        assert verdict == offline, (moment, render)
        assert steps["dates"] == ("pass" if online == "valid" else "fail"), render


def test_the_vendored_artefacts_are_the_recorded_ones() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    for name in ("ob_v3p0_achievementcredential_schema.json", "ob-context-3.0.3.json", "credentials-v2.jsonld"):
        digest = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
        assert f"{digest}  {name}" in readme, name


def test_a_changed_credential_would_be_caught() -> None:
    """The checks themselves bite: a second status entry, a clear number, an undefined term."""
    sample: dict[str, Any] = {
        "@context": list(CONTEXTS),
        "id": "urn:uuid:00000000-0000-0000-0000-000000000000",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": "https://registry.test/v1/issuers/X", "type": ["Profile"], "name": "X"},
        "validFrom": "2026-06-30T00:00:00+08:00",
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [{"type": "IdentityObject", "identityType": "resident_id", "identityMasked": "1101**"}],
            "achievement": {"id": "urn:x", "type": ["Achievement"], "name": "x", "criteria": {}},
            "catalogue_code": "ENG-EAI",
        },
        "credentialStatus": [{"type": "BitstringStatusListEntry"}, {"type": "BitstringStatusListEntry"}],
    }
    errors = " ".join(_schema_errors(copy.deepcopy(sample)))
    for expected in ("credentialStatus", "identifier", "description"):
        assert expected in errors, errors
    assert "catalogue_code" in _dropped_terms(sample)
