"""Review of the bureau's hold over a body's suspension (c6a4bfc), of answers about a certificate whose node could not
be asked (ebaf2bb), and of the issuing re-check (b14d6fe): a client disabled, or its tokens ended, between the
re-check and the commit must not issue; a verifier reads the day a held certificate stopped being valid."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import col

from registry import clock
from registry.auth.scopes import Role
from registry.certificates import issuance
from registry.certificates.models import Certificate, CertificateEvent
from registry.config import Settings
from registry.db import transaction, utcnow
from tests.checks import assert_problem
from tests.conftest import RegistryClock
from tests.factories import (
    bearer,
    certificate_body,
    create_client,
    issued_certificate,
    resident_id,
    row_count,
    token_for,
)
from tests.integration.federation_support import HOLDER, fake_certificate, tianjin_with_fake_beijing
from tests.integration.holds_support import Ending, disable, issuer_world, race, rotate
from tests.integration.lifecycle_support import act, set_up


async def _issue(client: httpx.AsyncClient, token: str, *, batch: bool) -> httpx.Response:
    if batch:
        rows = {"certificates": [certificate_body(), certificate_body()]}
        headers = {**bearer(token), "Idempotency-Key": "paused", "Content-Type": "application/json"}
        return await client.post("/v1/certificate-batches", content=json.dumps(rows).encode(), headers=headers)
    return await client.post("/v1/certificates", json=certificate_body(), headers=bearer(token))


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
@pytest.mark.parametrize("ending", [disable, rotate], ids=["disable", "rotate-no-grace"])
async def test_access_ended_between_the_recheck_and_the_commit_waits_for_the_issue_or_stops_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    batch: bool,
    ending: Callable[[httpx.AsyncClient, str, str], Ending],
) -> None:
    """Found: the re-check in the issuing transaction was a plain SELECT. On PostgreSQL a disable (or a rotation with
    no grace) that landed after it committed at once, and the batch then committed too: 201 with claim codes for a
    client disabled before the certificates existed. Expected: the one ordering or the other — the disable waits for
    the issue (the issue committed first), or the issue sees the disable (401, nothing issued)."""
    admin, client_id, token = await issuer_world(app, client)
    before = await row_count(app, "certificates")
    name = "issue_batch" if batch else "issue_one"
    issuing = await race(
        monkeypatch, issuance, name, lambda: _issue(client, token, batch=batch), ending(client, admin, client_id)
    )
    answer = issuing.answer
    assert issuing.ended.status_code == 200, issuing.ended.text
    if answer.status_code == 401:  # the issue saw the end of the client's access: nothing issued
        assert "claim_code" not in answer.text
        assert await row_count(app, "certificates") == before
        return
    assert answer.status_code == 201, answer.text
    assert issuing.ended_before_commit is False, "the client's access ended while its certificates were being issued"
    assert await row_count(app, "certificates") == before + (2 if batch else 1)
    again = await _issue(client, token, batch=False)
    assert_problem(again, 401, slug="unauthenticated")


# --- the day a held certificate stopped being valid -----------------------------------------------------------------


async def _backdate(app: FastAPI, number: str, days_ago: list[int]) -> None:
    """The certificate's status changes (issuance left out), oldest first, moved to ``days_ago`` days before now:
    a history that took weeks, as the registry's own clock cannot make one (events are stamped with the real time)."""
    async with transaction(app.state.sessions) as session:
        cert = (await session.execute(select(Certificate).where(col(Certificate.number) == number))).scalar_one()
        query = (
            select(CertificateEvent)
            .where(col(CertificateEvent.certificate_id) == cert.id, col(CertificateEvent.event) != "issued")
            .order_by(col(CertificateEvent.id))
        )
        events = list((await session.execute(query)).scalars())
        assert len(events) >= len(days_ago)
        for event, days in zip(events, days_ago, strict=False):
            event.at = event.at - timedelta(days=days)


def _day(days_ago: int) -> str:
    return (clock.today() - timedelta(days=days_ago)).isoformat()


async def _told(client: httpx.AsyncClient, holder: dict[str, str], certificate: dict[str, Any]) -> list[dict[str, Any]]:
    """What the scan, the look-up by number and name, and the holder's own list say about ``certificate``."""
    scanned = await client.get(f"/v1/verify/{certificate['qr_token']}")
    asked = await client.post("/v1/verify", json={"number": certificate["number"], "holder_name": "张三"})
    listed = await client.get("/v1/holder/certificates", headers=holder)
    for response in (scanned, asked, listed):
        assert response.status_code == 200, response.text
    mine = next(c for c in listed.json() if c["number"] == certificate["number"])
    return [scanned.json(), asked.json(), mine]


async def _holder_headers(client: httpx.AsyncClient, certificate: dict[str, Any], id_number: str) -> dict[str, str]:
    body = {"id_type": "resident_id", "id_number": id_number, "claim_code": certificate["claim_code"]}
    session = await client.post("/v1/holder/sessions", json=body)
    assert session.status_code == 201, session.text
    return bearer(session.json()["access_token"])


async def _a_holders_certificate(app: FastAPI, client: httpx.AsyncClient) -> tuple[Any, dict[str, Any], str]:
    """The bodies and admin (``set_up``), and a certificate of theirs whose holder can sign in: with its ID number."""
    world = await set_up(app, client)
    id_number = resident_id()
    certificate = await issued_certificate(
        client, world.issuer, holder={"name": "张三", "id_type": "resident_id", "id_number": id_number}
    )
    return world, certificate, id_number


async def test_the_bureaus_hold_over_a_bodys_suspension_keeps_the_day_it_stopped_being_valid(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    """Found: after the bureau's hold over a body's suspension, verification and the holder's list dated the
    suspension by the latest 'suspended' event — the bureau's, days later — so an employer read that the certificate
    was valid until the bureau acted. Expected: the day the body suspended it (when it stopped being valid), with the
    hold's reason code (``bureau``: why it is held now)."""
    registry_clock.freeze()
    world, certificate, id_number = await _a_holders_certificate(app, client)
    number = certificate["number"]
    assert (await act(client, world.issuer, number, "suspend")).status_code == 200
    await _backdate(app, number, [10])
    assert (await act(client, world.admin, number, "suspend")).status_code == 200
    holder = await _holder_headers(client, certificate, id_number)
    for told in await _told(client, holder, certificate):
        assert told["result"] == "suspended", told
        assert (told["status_changed_on"], told["status_reason"]) == (_day(10), "bureau"), told
    page = await client.get(f"/v/{certificate['qr_token']}", params={"lang": "en"})
    assert page.status_code == 200
    assert _day(10) in page.text  # the page dates the suspension as the API does


async def test_a_suspension_after_a_reinstatement_is_dated_by_its_own_run(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    """Suspended 20 days ago, reinstated 15 days ago, suspended again 5 days ago, then held by the bureau today: it
    stopped being valid 5 days ago — not 20 (the first run ended), not today."""
    registry_clock.freeze()
    world, certificate, id_number = await _a_holders_certificate(app, client)
    number = certificate["number"]
    for action in ("suspend", "reinstate", "suspend"):
        assert (await act(client, world.issuer, number, action)).status_code == 200
    await _backdate(app, number, [20, 15, 5])
    holder = await _holder_headers(client, certificate, id_number)
    for told in await _told(client, holder, certificate):  # before the hold: the body's own, as it always was
        assert (told["status_changed_on"], told["status_reason"]) == (_day(5), None), told
    assert (await act(client, world.admin, number, "suspend")).status_code == 200
    for told in await _told(client, holder, certificate):
        assert (told["status_changed_on"], told["status_reason"]) == (_day(5), "bureau"), told
    # Lifted and held again by the bureau alone: a run of its own, dated today.
    assert (await act(client, world.admin, number, "reinstate")).status_code == 200
    assert (await act(client, world.admin, number, "suspend")).status_code == 200
    for told in await _told(client, holder, certificate):
        assert (told["status_changed_on"], told["status_reason"]) == (_day(0), "bureau"), told


async def test_a_revocation_after_the_hold_is_dated_by_the_revocation(
    app: FastAPI, client: httpx.AsyncClient, registry_clock: RegistryClock
) -> None:
    registry_clock.freeze()
    world, certificate, id_number = await _a_holders_certificate(app, client)
    number = certificate["number"]
    assert (await act(client, world.issuer, number, "suspend")).status_code == 200
    assert (await act(client, world.admin, number, "suspend")).status_code == 200
    assert (await act(client, world.admin, number, "revoke")).status_code == 200
    await _backdate(app, number, [10, 3])
    holder = await _holder_headers(client, certificate, id_number)
    for told in await _told(client, holder, certificate):
        assert (told["result"], told["status_changed_on"], told["status_reason"]) == ("revoked", _day(0), "fraud")


# --- a peer that is up and answers unknown itself -------------------------------------------------------------------


def _peer_unknown(number: str, *, certificate: bool, answered_by: str = "BJ") -> dict[str, Any]:
    """Beijing's own judgement: it could not tell (a certificate signed under a key it has since found compromised)."""
    return {
        "result": "unknown",
        "reason": "key_compromised",
        "certificate": fake_certificate(number) if certificate else None,
        "signature_valid": False,
        "checked_at": utcnow().isoformat(),
        "answered_by": answered_by,
    }


def _peer_unknown_recognition(number: str, to_region: str, *, answered_by: str = "BJ") -> dict[str, Any]:
    said = _peer_unknown(number, certificate=False, answered_by=answered_by)
    return {
        **{key: said[key] for key in ("result", "reason", "certificate", "answered_by", "checked_at")},
        "number": number,
        "to_region": to_region,
        "decision": "not_recognised",
        "decision_reason": "unknown",
    }


@pytest.mark.parametrize("certificate", [True, False], ids=["with-certificate", "no-certificate"])
async def test_a_peer_that_answers_unknown_itself_is_named_as_the_node_that_answered(
    settings: Settings, certificate: bool
) -> None:
    """The peer judged it (unknown is its judgement, with its reason): the answer names the peer, as for any other
    judgement it makes; only an answer the peer did not give (down, or not trusted) is this node's."""
    async with tianjin_with_fake_beijing(settings) as tianjin:
        tianjin.peer.verify_answer = lambda q: {
            "status": 200,
            "body": _peer_unknown(q["number"], certificate=certificate),
        }
        question = {"number": tianjin.peer.number, "holder_name": HOLDER}
        answer = await tianjin.http.post("/v1/verify", json=question)
        page = await tianjin.http.post("/v", data=question, params={"lang": "en"})
    assert answer.status_code == 200, answer.text
    said = answer.json()
    assert (said["result"], said["reason"], said["answered_by"]) == ("unknown", "key_compromised", "BJ")
    assert page.status_code == 200, page.text
    assert "Answered by the Beijing registry" in page.text


async def test_a_peer_recognition_answer_of_unknown_is_passed_on_in_its_name(settings: Settings) -> None:
    async with tianjin_with_fake_beijing(settings) as tianjin:
        tianjin.peer.recognition_answer = lambda q: [
            {"index": i, "status": 200, "answer": _peer_unknown_recognition(item["number"], q["to_region"])}
            for i, item in enumerate(q["items"])
        ]
        partner = bearer(
            await token_for(tianjin.http, *await create_client(tianjin.app, role=Role.partner, region="TJ"))
        )
        params = {"holder_name": HOLDER, "purpose": "hiring"}
        response = await tianjin.http.get(f"/v1/recognition/{tianjin.peer.number}", params=params, headers=partner)
    assert response.status_code == 200, response.text
    said = response.json()
    assert (said["result"], said["decision"], said["answered_by"]) == ("unknown", "not_recognised", "BJ")


async def test_a_peer_claiming_this_node_answered_is_not_passed_on(settings: Settings) -> None:
    """A peer's 'unknown' in this node's name (answered_by TJ) is no judgement of the peer's to pass on: not trusted,
    answered by this node with that reason."""
    async with tianjin_with_fake_beijing(settings) as tianjin:
        tianjin.peer.verify_answer = lambda q: {
            "status": 200,
            "body": _peer_unknown(q["number"], certificate=False, answered_by="TJ"),
        }
        answer = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": HOLDER})
    assert answer.status_code == 200, answer.text
    said = answer.json()
    assert (said["result"], said["reason"], said["answered_by"]) == ("unknown", "peer_answer_not_trusted", "TJ")
