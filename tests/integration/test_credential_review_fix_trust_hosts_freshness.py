"""Review of ca58701, fixed: with a trust list a key set given as a FILE never decides alone online (the registry's own
keys are fetched and used); offline the report says the file is the verifier's own saved copy. A status list's ``ttl``
is judged only of a list whose signature verifies, and a huge one is no ttl. An issuer's address reaches the report
in ASCII whatever scheme it is written with."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI

from registry.credentials import freshness, sources
from registry.credentials.hosts import ascii_hosts
from registry.credentials.report import Report, claims_line
from registry.credentials.status_list import CACHE_SECONDS
from registry.i18n import _
from tests.integration.test_credential_fix_trust_hosts_freshness import _gather, _steps
from tests.integration.test_credential_trust import JWKS, REGISTRY, _Network, _registry
from tests.integration.test_offline import _resign, _save

LOOK_ALIKE_HOST = "rcrs.hrss.b\u0435ijing.gov.cn"  # U+0435 CYRILLIC SMALL LETTER IE
PUNYCODE_HOST = "rcrs.hrss.xn--bijing-3of.gov.cn"


def _impostor(genuine: str, published: str) -> tuple[str, str]:
    """A credential naming the trusted registry, signed by a key of the applicant's own under the genuine kid, and a
    JWKS like the registry's in which that kid is the applicant's key."""
    key = Ed25519PrivateKey.generate()
    kid = str(jwt.get_unverified_header(genuine)["kid"])
    x = base64.urlsafe_b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).rstrip(b"=")
    jwks: dict[str, Any] = json.loads(published)
    short = kid.rsplit("/keys/", 1)[-1]
    jwks["keys"] = [{**jwk, "x": x.decode()} if jwk.get("kid") in {kid, short} else jwk for jwk in jwks["keys"]]
    return _resign(genuine, key=key, kid=kid, change={"credentialSubject": {"name": "李四"}}), json.dumps(jwks)


def _online(network: _Network, token: str, jwks: str, given: list[str]) -> tuple[sources.Sources, list[str]]:
    network.requests = []
    with httpx.Client(transport=httpx.MockTransport(network._answer)) as http:
        gathered = sources.gather(token, jwks=jwks, status_lists=given, http=http, trusted=[REGISTRY])
    return gathered, network.requests


async def test_with_a_trust_list_a_key_file_is_held_against_the_registrys_own_keys(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    genuine, list_url, network = await _registry(app, client)
    forged, impostor_keys = _impostor(genuine, network.served[JWKS])
    saved = _save(tmp_path, {"jwks.json": network.served[JWKS], "impostor.json": impostor_keys})
    mine, theirs = str(saved["jwks.json"]), str(saved["impostor.json"])
    # The applicant's key file: the registry's own keys are fetched and decide; the file's key is named as foreign.
    gathered, requests = _online(network, forged, theirs, [])
    assert requests == [JWKS], requests
    assert gathered.jwks == json.loads(network.served[JWKS])
    assert gathered.keys_note is not None
    assert f"JWKS {theirs} offers key " in gathered.keys_note, gathered.keys_note
    assert f"which {REGISTRY} does not publish" in gathered.keys_note, gathered.keys_note
    assert not _steps(forged, gathered)["signature"].startswith("pass"), _steps(forged, gathered)
    # A faithful copy of the registry's keys: checked against what the registry publishes, every step passes.
    gathered, requests = _online(network, genuine, mine, [])
    assert requests == [JWKS, list_url], requests
    assert gathered.keys_note is None
    assert [step.split()[0] for step in _steps(genuine, gathered).values()] == ["pass"] * 5
    # The registry's keys cannot be had: the file does not stand in for them.
    del network.served[JWKS]
    gathered, requests = _online(network, genuine, mine, [])
    assert requests == [JWKS], requests
    signature = _steps(genuine, gathered)["signature"]
    assert signature.startswith(f"unknown JWKS {mine} is a file, and the keys of {REGISTRY}, which you trust, "), (
        signature
    )
    assert "could not be fetched to hold it against" in signature, signature


async def test_offline_a_key_file_with_a_trust_list_is_said_to_be_the_verifiers_own_copy(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    genuine, list_url, network = await _registry(app, client)
    saved = _save(tmp_path, {"jwks.json": network.served[JWKS], "list.vc.jwt": network.served[list_url]})
    report = sources.check(
        genuine,
        jwks=str(saved["jwks.json"]),
        status_lists=[str(saved["list.vc.jwt"])],
        offline=True,
        trusted=[REGISTRY],
    )
    assert report.valid, report.render()
    said = f"keys from {saved['jwks.json']}: your own saved copy of the keys of {REGISTRY}, as trustworthy as"
    assert said in report.render(), report.render()
    assert f"您自己保存的 {REGISTRY} 密钥副本" in report.render("zh"), report.render("zh")


def test_a_ttl_no_timedelta_holds_is_no_ttl() -> None:
    for ttl in (10**20, 10**30, int(freshness.MOST_KEPT.total_seconds() * 1000) + 1):
        list_claims = {"credentialSubject": {"ttl": ttl}, "validFrom": "2026-01-01T00:00:00+00:00"}
        assert freshness.kept_for(list_claims) == timedelta(seconds=CACHE_SECONDS), ttl
        assert freshness.stale(list_claims, datetime(2026, 1, 1, 0, 5, tzinfo=UTC)), ttl
    assert freshness.kept_for({"credentialSubject": {"ttl": 120_000}}) == timedelta(minutes=2)


async def test_only_a_list_whose_signature_verifies_is_judged_stale(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A doctored list (any ttl, any age) is neither judged nor replaced: the status step refuses it."""
    genuine, list_url, network = await _registry(app, client)
    header, payload, signature = network.served[list_url].strip().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["credentialSubject"]["ttl"] = 10**20
    doctored = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    saved = _save(tmp_path, {"jwks.json": network.served[JWKS], "list.vc.jwt": f"{header}.{doctored}.{signature}"})
    later = datetime.now(UTC) + timedelta(minutes=5)
    gathered, requests = _gather(network, genuine, str(saved["jwks.json"]), [str(saved["list.vc.jwt"])], now=later)
    assert requests == []
    status = _steps(genuine, gathered, now=later)["status"]
    assert not status.startswith("pass"), status
    assert "signature does not verify" in status, status


def test_an_address_without_https_reaches_the_report_in_ascii() -> None:
    for written, shown in (
        (f"did:web:{LOOK_ALIKE_HOST}", f"did:web:{PUNYCODE_HOST}"),
        (f"did:web:{LOOK_ALIKE_HOST}%3A8443:v1", f"did:web:{PUNYCODE_HOST}%3A8443:v1"),
        (f"{LOOK_ALIKE_HOST}/v1/issuers/X", f"{PUNYCODE_HOST}/v1/issuers/X"),
        (f"{LOOK_ALIKE_HOST}:8443/v1/issuers/\u0425", f"{PUNYCODE_HOST}:8443/v1/issuers/%D0%A5"),
        ("rcrs\u3002hrss\u3002b\u0435ijing\u3002gov\u3002cn", PUNYCODE_HOST),
        (f"https://{LOOK_ALIKE_HOST}/v1/issuers/\u0425", f"https://{PUNYCODE_HOST}/v1/issuers/%D0%A5"),
    ):
        assert ascii_hosts(written, prose=False) == shown, written
    # What is no address stays as written: a holder's name, a title and its level.
    assert ascii_hosts("BJ-1 · 张三 · 具身智能 副高级", prose=False) == "BJ-1 · 张三 · 具身智能 副高级"
    for iss in (f"did:web:{LOOK_ALIKE_HOST}", f"{LOOK_ALIKE_HOST}/v1/issuers/X"):
        report = Report()
        report.add("key", "fail", _("key {kid} is not a certificate key of the issuer {iss!r}", kid="k1", iss=iss))
        for lang in (None, "en", "zh"):
            shown = claims_line("BJ-1 · 张三", lang) + "\n" + report.render(lang)
            assert "\u0435" not in shown, shown
            assert PUNYCODE_HOST in shown, shown
            assert "张三" in shown, shown
