"""Review of the authorization and federation commits: what they left inconsistent, each a real request (or the
operator's command) with the answer the caller gets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.factories import bearer, issued_certificate
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.federation_support import Certificate as FederatedCertificate
from tests.integration.federation_support import Node, three_nodes
from tests.integration.lifecycle_support import act, history, set_up


async def test_the_bureaus_hold_over_a_bodys_suspension_passes_audit_verify_and_ends_in_a_revocation(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    """Found: the bureau's suspension of a certificate its body had suspended (200 since b14d6fe) is written as a
    second 'suspended' event, audit record and transparency leaf; ``registry audit verify`` replays the history
    through the lifecycle's transitions, where 'suspended after suspended' is illegal, and so reported the
    certificate's records as tampered with (exit 1) after a legitimate request."""
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    number = certificate["number"]
    assert (await act(client, world.issuer, number, "suspend")).status_code == 200
    held = await act(client, world.admin, number, "suspend")
    assert held.status_code == 200, held.text
    # The body still cannot suspend it again, nor the bureau a second time: one hold each is all there is.
    again = await act(client, world.admin, number, "suspend")
    assert again.status_code == 409, again.text
    by_body = await act(client, world.issuer, number, "suspend")
    assert by_body.status_code == 409, by_body.text
    events = await history(client, world.issuer, number)
    assert [(e["event"], e["reason_code"]) for e in events] == [
        ("issued", None),
        ("suspended", None),
        ("suspended", "bureau"),
    ]

    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url))
    assert code == 0, out + err
    assert "certificate statuses agree with their history and status lists" in out

    revoked = await act(client, world.admin, number, "revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url))
    assert code == 0, out + err


# --- real nodes: an honest rotation of both nodes' registry keys ----------------------------------------------------


async def _asked(tj: Node, certificate: FederatedCertificate) -> dict[str, Any]:
    question = {"number": certificate.number, "holder_name": certificate.holder_name}
    response = await tj.http.post("/v1/verify", json=question)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_an_honest_rotation_of_both_nodes_registry_keys_keeps_forwarded_verification_working(
    tmp_path: Path,
) -> None:
    """Each node keeps signing with the key it read for up to a minute (its signer cache): the retired key's answers
    and service tokens must still be trusted by the other node right after the rotation (the 240 s grace), on a real
    pair of nodes, not only on a fake peer."""
    async with three_nodes(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/BJ.db") as network:
        bj, tj = network.nodes["BJ"], network.nodes["TJ"]
        before = await _asked(tj, network.certificates["bj_ai"])  # both signers and key sets read: the old keys
        for node in (bj, tj):
            rotated = await node.http.post("/v1/registry/keys/rotate", headers=bearer(node.admin))
            assert rotated.status_code in (200, 201), rotated.text
        after = await _asked(tj, network.certificates["bj_eai"])  # a new question: not from TJ's answer cache

    assert (before["result"], before["answered_by"]) == ("valid", "BJ"), before
    assert (after["result"], after["answered_by"]) == ("valid", "BJ"), after


async def test_a_body_and_the_bureau_suspending_at_once_leave_the_bureaus_hold_either_way(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Both requests lock the certificate's row: whichever comes second sees the first's suspension. The body's
    first: the bureau's takes it over (200); the bureau's first: the body's is 409. Either way the hold is the
    bureau's, and the body's reinstate is 403."""
    world = await set_up(app, client)
    for _ in range(3):
        number = (await issued_certificate(client, world.issuer))["number"]
        by_body, by_bureau = await asyncio.gather(
            act(client, world.issuer, number, "suspend"), act(client, world.admin, number, "suspend")
        )
        assert by_bureau.status_code == 200, by_bureau.text
        assert by_body.status_code in (200, 409), by_body.text
        events = await history(client, world.issuer, number)
        assert [e["reason_code"] for e in events if e["event"] == "suspended"][-1] == "bureau", events
        lifted = await act(client, world.issuer, number, "reinstate")
        assert lifted.status_code == 403, lifted.text
