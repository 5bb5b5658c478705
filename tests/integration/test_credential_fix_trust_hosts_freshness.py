"""`registry verify-credential` holds a credential to the verifier's trust list whatever keys came with it, shows every
registry's host in ASCII (as an address bar does), and, when it may fetch, does not take a status list the holder
saved long ago for the registry's current word."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from fastapi import FastAPI

from registry.credentials import sources
from registry.credentials.hosts import ascii_host, ascii_hosts
from registry.credentials.offline import STEPS, verify_credential
from registry.credentials.report import Report, claims_line
from registry.i18n import _
from tests.factories import issued_certificate
from tests.integration.lifecycle_support import act
from tests.integration.test_credential_trust import JWKS, REGISTRY, _Network, _registry
from tests.integration.test_offline import (
    CODE,
    _credential,
    _fetch,
    _resign,
    _save,
    _setup,
    _signing_key_of,
    _status_urls,
)

LOOK_ALIKE = "https://rcrs.hrss.b\u0435ijing.gov.cn"  # U+0435 CYRILLIC SMALL LETTER IE
PUNYCODE = "https://rcrs.hrss.xn--bijing-3of.gov.cn"


def test_a_look_alike_host_is_shown_in_ascii_wherever_a_line_names_it() -> None:
    assert ascii_host("rcrs.hrss.b\u0435ijing.gov.cn") == "rcrs.hrss.xn--bijing-3of.gov.cn"
    assert ascii_host("registry.test") == "registry.test"
    assert (
        ascii_hosts(f"key {LOOK_ALIKE}/v1/issuers/X/keys/k1 verifies")
        == f"key {PUNYCODE}/v1/issuers/X/keys/k1 verifies"
    )
    # A port, a user part, and a Chinese sentence going on right after the address.
    assert ascii_hosts(f"{LOOK_ALIKE}:8443/x") == f"{PUNYCODE}:8443/x"
    assert ascii_hosts(f"以 {LOOK_ALIKE}，不是") == f"以 {PUNYCODE}，不是"
    # A host IDNA refuses (a bidi override) is still shown in ASCII, and plainly not the registry's.
    refused = ascii_hosts("https://rcrs.hrss.beijing.gov.cn\u202e.evil/x", prose=False)
    assert refused.isascii(), refused
    assert "%E2%80%AE" in refused, refused
    # The step's words and the claims line, in either language: the look-alike in no line, whatever punctuation a
    # host of its own puts in front of it.
    sly = f"https://x\uff0c{LOOK_ALIKE.removeprefix('https://')}"
    report = Report()
    report.add("format", "pass", _("compact JWS, typ {typ}, kid {kid}", typ="vc+jwt", kid=f"{sly}/keys/k1"))
    report.add("signature", "unknown", _("JWKS {source} is not JSON", source=f"{LOOK_ALIKE}/.well-known/jwks.json"))
    for lang in (None, "en", "zh"):
        shown = claims_line(f"BJ-1 · 张三 · {LOOK_ALIKE}", lang) + "\n" + report.render(lang)
        assert "\u0435" not in shown, shown
        assert "xn--bijing-3of" in shown, shown


def test_a_look_alike_host_is_not_the_registry_it_imitates() -> None:
    assert not sources.same_registry(LOOK_ALIKE, "https://rcrs.hrss.beijing.gov.cn")
    assert sources.same_registry(LOOK_ALIKE, PUNYCODE)  # what is compared is what is printed and fetched
    assert not sources.under_registry(f"{LOOK_ALIKE}/v1/status-lists/x", "https://rcrs.hrss.beijing.gov.cn")


async def test_with_a_trust_list_the_keys_given_do_not_make_another_registry_trusted(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    genuine, _list_url, network = await _registry(app, client)
    jwks_file = str(_save(tmp_path, {"jwks.json": network.served[JWKS]})["jwks.json"])
    bureau = "https://rcrs.hrss.beijing.gov.cn"
    for jwks in (jwks_file, JWKS):
        gathered, requests = network.gather(genuine, jwks=jwks, trusted=[bureau])
        assert requests == [], (jwks, requests)
        said = _steps(genuine, gathered)["signature"]
        assert said.startswith(f"unknown the credential names {REGISTRY} as its registry, which is none"), said
        assert f"give --trust {REGISTRY} if that is the registry you mean" in said, said
    # Trusted, and its keys given as a file or fetched from under it: every step passes.
    for keys in (jwks_file, JWKS, None):
        gathered, _requests = network.gather(genuine, jwks=keys, trusted=[bureau, REGISTRY])
        assert [step.split()[0] for step in _steps(genuine, gathered).values()] == ["pass"] * len(STEPS), keys
    # Trusted, but the key set comes from a URL elsewhere: whoever serves it chooses the keys.
    elsewhere = "https://keys.example/.well-known/jwks.json"
    gathered, requests = network.gather(genuine, jwks=elsewhere, trusted=[REGISTRY])
    assert requests == []
    assert _steps(genuine, gathered)["signature"].startswith(f"unknown JWKS {elsewhere} is not under {REGISTRY}")
    # A credential naming no registry at all is none of those trusted.
    key, kid = await _signing_key_of(app, CODE)
    nameless = _resign(genuine, key=key, kid=kid, change={"iss": "urn:x"})
    gathered, requests = network.gather(nameless, jwks=jwks_file, trusted=[REGISTRY])
    assert requests == []
    assert "names no registry, so none of those you trust" in _steps(nameless, gathered)["signature"]


async def test_a_saved_status_list_past_its_ttl_is_replaced_by_the_current_one(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    _, issuer = await _setup(app, client)
    certificate = await issued_certificate(client, issuer)
    genuine = await _credential(client, issuer, certificate["number"])
    (list_url,) = _status_urls(genuine).values()
    network = _Network({JWKS: await _fetch(client, JWKS), list_url: await _fetch(client, list_url)})
    saved = _save(tmp_path, {"jwks.json": network.served[JWKS], "list.vc.jwt": network.served[list_url]})
    jwks, given = str(saved["jwks.json"]), [str(saved["list.vc.jwt"])]
    assert (await act(client, issuer, certificate["number"], "revoke")).status_code == 200
    network.served[list_url] = await _fetch(client, list_url)  # what the registry serves now: revoked
    now = datetime.now(UTC)
    # Within its ttl (a minute, and the minute validFrom is rounded to): taken as given, nothing fetched.
    fresh, requests = _gather(network, genuine, jwks, given, now=now)
    assert requests == []
    assert list_url in fresh.status_lists
    # Kept five minutes: the current list is fetched from its own URL under the registry, and decides.
    later = now + timedelta(minutes=5)
    replaced, requests = _gather(network, genuine, jwks, given, now=later)
    assert requests == [list_url]
    assert replaced.status_lists[list_url] == network.served[list_url].strip()
    status = _steps(genuine, replaced, now=later)["status"]
    assert status.startswith("fail message status 0x2 at index"), status
    # The current one cannot be had: unknown, saying how old the given one is — never the snapshot's "valid".
    del network.served[list_url]
    lost, requests = _gather(network, genuine, jwks, given, now=later)
    assert requests == [list_url]
    assert list_url not in lost.status_lists
    said = _steps(genuine, lost, now=later)["status"]
    assert said.startswith(f"unknown the status list given for {list_url} was signed 5 min ago, longer than its "), said
    assert "could not be fetched: the server answered HTTP 404" in said, said
    # --offline: nothing is fetched; the saved list counts until its validUntil, and the report says how old it is.
    kept, requests = _gather(network, genuine, jwks, given, now=later, offline=True)
    assert requests == []
    assert list_url in kept.status_lists
    report = verify_credential(genuine, jwks=kept.jwks, status_lists=kept.status_lists, now=later)
    assert report.valid, report.render()
    assert ", 5 min ago, valid until " in report.steps[-1].detail, report.steps[-1].detail
    assert "5 分钟前" in report.render("zh"), report.render("zh")


async def test_a_stale_list_is_fetched_only_from_under_the_registry_that_verified_the_credential(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A credential signed with a body's key (an insider's) names a list elsewhere; a stale copy given of it does
    not make the verifier fetch from there."""
    genuine, list_url, network = await _registry(app, client)
    key, kid = await _signing_key_of(app, CODE)
    entry: dict[str, Any] = jwt.decode(genuine, options={"verify_signature": False})["credentialStatus"]
    elsewhere = "http://169.254.169.254/v1/status-lists/x"
    token = _resign(
        genuine, key=key, kid=kid, change={"credentialStatus": {**entry, "statusListCredential": elsewhere}}
    )
    listed = jwt.decode(network.served[list_url], options={"verify_signature": False})
    stale_copy = _resign(network.served[list_url], key=key, kid=kid, change={**listed, "id": elsewhere})
    saved = _save(tmp_path, {"jwks.json": network.served[JWKS], "list.vc.jwt": stale_copy})
    later = datetime.now(UTC) + timedelta(minutes=5)
    gathered, requests = _gather(network, token, str(saved["jwks.json"]), [str(saved["list.vc.jwt"])], now=later)
    assert requests == []
    assert f"{elsewhere} is not under {REGISTRY}, the registry whose keys verified" in gathered.unreadable[elsewhere]


def _gather(
    network: _Network, token: str, jwks: str, given: list[str], *, now: datetime, offline: bool = False
) -> tuple[sources.Sources, list[str]]:
    network.requests = []
    with httpx.Client(transport=httpx.MockTransport(network._answer)) as http:
        gathered = sources.gather(token, jwks=jwks, status_lists=given, http=http, offline=offline, now=now)
    return gathered, network.requests


def _steps(token: str, gathered: sources.Sources, now: datetime | None = None) -> dict[str, str]:
    report = verify_credential(
        token, jwks=gathered.jwks, status_lists=gathered.status_lists, unreadable=gathered.unreadable, now=now
    )
    return {step.name: f"{step.outcome} {step.detail}" for step in report.steps}
