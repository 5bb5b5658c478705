"""A holder is told what an employer is told: their list and pages give each certificate the standing public
verification gives it today (expired past its validity, suspended, revoked, superseded, unknown under a compromised
key), with the same reason, in the reader's language — never only the stored status."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from tests.conftest import RegistryClock
from tests.factories import bearer, issued_certificate, resident_id
from tests.integration.lifecycle_support import CODE, World, act, set_up

HOLDER_NAME = "孙八"
# What verification answers and the holder's list must repeat, field for field.
_SAME = ("result", "reason", "status_changed_on", "status_reason", "superseded_by", "supersedes")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_BANNER = re.compile(r'<section class="banner ([a-z]+)"')


class Holder:
    """One person holding certificates of the body ``world.issuer`` speaks for."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.id_number = resident_id(birth="19900505")
        self.claim_code = ""

    @property
    def person(self) -> dict[str, str]:
        return {"name": HOLDER_NAME, "id_type": "resident_id", "id_number": self.id_number}

    async def receives(self, client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
        certificate = await issued_certificate(client, self.world.issuer, holder=self.person, **overrides)
        self.claim_code = self.claim_code or certificate["claim_code"]
        return certificate

    async def signs_in(self, client: httpx.AsyncClient) -> dict[str, str]:
        body = {"id_type": "resident_id", "id_number": self.id_number, "claim_code": self.claim_code}
        session = await client.post("/v1/holder/sessions", json=body)
        assert session.status_code == 201, session.text
        return bearer(session.json()["access_token"])


async def _listed(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, dict[str, Any]]:
    response = await client.get("/v1/holder/certificates", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return {certificate["number"]: certificate for certificate in response.json()}


async def _verified(client: httpx.AsyncClient, certificate: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(f"/v1/verify/{certificate['qr_token']}")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _holder_sees_what_employer_sees(
    client: httpx.AsyncClient, headers: dict[str, str], certificate: dict[str, Any]
) -> dict[str, Any]:
    mine = (await _listed(client, headers))[certificate["number"]]
    public = await _verified(client, certificate)
    assert {key: mine[key] for key in _SAME} == {key: public[key] for key in _SAME}
    return mine


async def test_an_expired_certificate_is_expired_to_its_holder_as_to_an_employer(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    registry_clock.freeze()
    holder = Holder(await set_up(app, client))
    ends = registry_clock.today() + timedelta(days=1)
    lapsing = await holder.receives(client, valid_until=ends.isoformat())
    registry_clock.advance(timedelta(days=2))  # its stored status stays active
    headers = await holder.signs_in(client)

    mine = await _holder_sees_what_employer_sees(client, headers, lapsing)
    assert mine["status"] == "active"
    assert mine["result"] == "expired"
    assert mine["status_changed_on"] == (ends + timedelta(days=1)).isoformat()
    assert mine["result_text"] == "The certificate is past its validity date."
    zh = (await _listed(client, headers | {"Accept-Language": "zh-CN"}))[lapsing["number"]]
    assert zh["result_text"] == "证书已超过有效期。"


async def test_a_certificate_the_body_suspended_reads_suspended_alike(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = Holder(await set_up(app, client))
    certificate = await holder.receives(client)
    assert (await act(client, holder.world.issuer, certificate["number"], "suspend")).status_code == 200
    mine = await _holder_sees_what_employer_sees(client, await holder.signs_in(client), certificate)
    assert mine["result"] == "suspended"
    assert mine["reason_text"] is None  # the body gives the public no reason code for a suspension


async def test_a_certificate_the_bureau_suspended_says_so_in_chinese(app: FastAPI, client: httpx.AsyncClient) -> None:
    holder = Holder(await set_up(app, client))
    certificate = await holder.receives(client)
    assert (await act(client, holder.world.admin, certificate["number"], "suspend")).status_code == 200
    headers = await holder.signs_in(client)
    mine = await _holder_sees_what_employer_sees(client, headers, certificate)
    assert (mine["result"], mine["status_reason"]) == ("suspended", "bureau")
    zh = (await _listed(client, headers, lang="zh"))[certificate["number"]]
    assert (zh["result_text"], zh["reason_text"]) == ("证书已被人力资源社会保障部门暂停。", "人力资源社会保障部门暂停")


async def test_a_revoked_certificate_gives_its_holder_the_public_reason(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = Holder(await set_up(app, client))
    certificate = await holder.receives(client)
    assert (await act(client, holder.world.issuer, certificate["number"], "revoke", "fraud")).status_code == 200
    headers = await holder.signs_in(client)
    mine = await _holder_sees_what_employer_sees(client, headers, certificate)
    assert (mine["status"], mine["result"], mine["reason"]) == ("revoked", "revoked", "fraud")
    assert mine["reason_text"] == "obtained by deception"
    listed = await client.get("/v1/holder/certificates", headers=headers | {"Accept-Language": "zh-CN"})
    assert listed.headers["content-language"] == "zh-CN"
    assert "Accept-Language" in listed.headers["vary"]
    assert {c["number"]: c for c in listed.json()}[certificate["number"]]["reason_text"] == "以不正当手段取得"


async def test_a_corrected_certificate_is_superseded_for_its_holder_too(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = Holder(await set_up(app, client))
    certificate = await holder.receives(client)
    corrected = await client.post(
        f"/v1/certificates/{certificate['number']}/correct",
        json={"reason": "等级有误", "level": "senior"},
        headers=bearer(holder.world.issuer),
    )
    assert corrected.status_code in (200, 201), corrected.text
    headers = await holder.signs_in(client)
    mine = await _holder_sees_what_employer_sees(client, headers, certificate)
    assert mine["result"] == "superseded"
    assert mine["superseded_by"] == corrected.json()["number"]
    successor = await _holder_sees_what_employer_sees(client, headers, corrected.json())
    assert successor["result"] == "valid"


async def test_under_a_compromised_key_the_holder_is_told_unknown_as_an_employer_is(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = Holder(await set_up(app, client))
    certificate = await holder.receives(client)
    compromised = await client.post(
        f"/v1/issuers/{CODE}/keys/{certificate['kid']}/compromise",
        json={"compromised_from": certificate["issued_at"]},
        headers=bearer(holder.world.admin),
    )
    assert compromised.status_code == 200, compromised.text
    headers = await holder.signs_in(client)
    mine = await _holder_sees_what_employer_sees(client, headers, certificate)
    assert (mine["status"], mine["result"], mine["reason"]) == ("active", "unknown", "signing_key_compromised")
    assert mine["reason_text"] == "signing key compromised"


async def test_a_suspended_body_leaves_its_certificates_valid_for_holder_and_employer(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = Holder(await set_up(app, client))
    certificate = await holder.receives(client)
    suspended = await client.post(
        f"/v1/issuers/{CODE}/suspend", json={"reason": "under investigation"}, headers=bearer(holder.world.admin)
    )
    assert suspended.status_code == 200, suspended.text
    mine = await _holder_sees_what_employer_sees(client, await holder.signs_in(client), certificate)
    assert mine["result"] == "valid"
    assert mine["reason_text"] is None


async def test_the_dashboard_gives_the_date_and_reason_an_employer_sees(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = Holder(await set_up(app, client))
    certificate = await holder.receives(client)
    assert (await act(client, holder.world.issuer, certificate["number"], "revoke", "fraud")).status_code == 200
    public = await _verified(client, certificate)
    form = await client.get("/holder")
    csrf = _CSRF.search(form.text)
    assert csrf is not None
    body = {"csrf": csrf.group(1), "id_type": "resident_id", "id_number": holder.id_number}
    signed_in = await client.post("/holder/sign-in", data=body | {"claim_code": holder.claim_code})
    assert signed_in.status_code == 303, signed_in.text
    zh = (await client.get("/holder", params={"lang": "zh"})).text
    assert f"撤销日期 {public['status_changed_on']}" in zh
    assert "原因：以不正当手段取得" in zh
    en = (await client.get("/holder", params={"lang": "en"})).text
    assert f"Revoked on {public['status_changed_on']}" in en
    assert "Reason: obtained by deception" in en


async def test_a_share_link_of_an_expired_certificate_shows_what_the_qr_code_shows(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    registry_clock.freeze()
    holder = Holder(await set_up(app, client))
    lapsing = await holder.receives(client, valid_until=(registry_clock.today() + timedelta(days=1)).isoformat())
    registry_clock.advance(timedelta(days=2))
    headers = await holder.signs_in(client)
    shared = await client.post(
        "/v1/holder/share-links", json={"number": lapsing["number"], "purpose": "hiring"}, headers=headers
    )
    assert shared.status_code == 201, shared.text
    link_page = await client.get(shared.json()["url"])
    qr_page = await client.get(f"/v/{lapsing['qr_token']}")
    assert _BANNER.findall(link_page.text) == _BANNER.findall(qr_page.text) == ["expired"]
    assert (await _listed(client, headers))[lapsing["number"]]["result"] == "expired"


@contextmanager
def _statements(app: FastAPI) -> Iterator[list[str]]:
    said: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        said.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield said
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_the_list_costs_the_same_queries_for_two_certificates_as_for_eight(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    holder = Holder(await set_up(app, client))
    awards = [
        {"catalogue_code": code, "level": level}
        for code in ("ENG-AI", "ENG-IC", "ENG-EAI", "ENG-BCI")
        for level in ("intermediate", "senior")
    ]  # a live certificate for each: never a duplicate of another
    for award, action in zip(awards[:2], ("revoke", "suspend"), strict=True):
        certificate = await holder.receives(client, **award)
        assert (await act(client, holder.world.issuer, certificate["number"], action)).status_code == 200
    headers = await holder.signs_in(client)
    await _listed(client, headers)  # the verifier's caches (keys, filed scopes) filled
    with _statements(app) as few:
        await _listed(client, headers)
    for award, action in zip(awards[2:], ("revoke", "suspend") * 3, strict=True):
        certificate = await holder.receives(client, **award)
        assert (await act(client, holder.world.issuer, certificate["number"], action)).status_code == 200
    with _statements(app) as many:
        listed = await _listed(client, headers)
    assert len(listed) == 8
    assert all(c["status_changed_on"] for c in listed.values())
    assert len(many) == len(few), many
