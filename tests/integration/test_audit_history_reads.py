"""The bureau reading a certificate's status history (``GET /v1/certificates/{number}/events``: the body's free-text
reasons for revoking or suspending it) is an access to personal data, audited like its lists and exports: one
``certificate.history_read`` record with the bureau's actor and its ``purpose``. ``purpose`` is optional on this route
(it predates the rule; making it required would break clients), and a read without one is recorded as ``not stated``.
An evaluation body reading its own certificate's history is not audited, as none of its reads of its own certificates
are (list, export, PDF, credential).
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.checks import assert_problem
from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token
from tests.integration.test_certificate_search import audit_records

REASON = "falsified thesis, police case 2026-117"


async def _revoked(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str, str]:
    """The bureau's token, a body's token and the number of a certificate the body revoked, giving ``REASON``."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin, code="BJ-BODY-A")
    body = await issuer_token(app, client, "BJ-BODY-A")
    number = (await issued_certificate(client, body))["number"]
    revoked = await client.post(
        f"/v1/certificates/{number}/revoke", json={"reason": REASON, "reason_code": "fraud"}, headers=bearer(body)
    )
    assert revoked.status_code == 200, revoked.text
    return admin, body, number


async def test_the_bureau_reading_a_certificates_history_is_audited_with_its_purpose(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """With a ``purpose``, the record names it; without one, the read is still recorded, as ``not stated``."""
    admin, _, number = await _revoked(app, client)
    history = await client.get(f"/v1/certificates/{number}/events", headers=bearer(admin))
    assert history.status_code == 200, history.text
    assert REASON in history.text  # the bureau read the body's reasons ...
    [unstated] = await audit_records(client, admin, "certificate.history_read")  # ... and the audit log says so
    listed = await client.get("/v1/certificates", params={"purpose": "filing review"}, headers=bearer(admin))
    assert listed.status_code == 200, listed.text
    [bureau_list] = await audit_records(client, admin, "certificate.listed")
    assert unstated["actor"] == bureau_list["actor"]  # the bureau's client, as on its other reads
    assert (unstated["object_type"], unstated["object_id"]) == ("certificate", number)
    assert unstated["purpose"] == "not stated"
    assert unstated["details"] == {"issuer": "BJ-BODY-A", "events": 2, "purpose_stated": False}
    purpose = "complaint 2026-031 about this body"
    stated = await client.get(f"/v1/certificates/{number}/events", params={"purpose": purpose}, headers=bearer(admin))
    assert stated.json() == history.json()
    records = await audit_records(client, admin, "certificate.history_read")
    assert len(records) == 2
    assert {record["purpose"] for record in records} == {"not stated", purpose}


async def test_a_bad_purpose_for_a_history_is_refused_naming_the_field_and_nothing_is_recorded(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """``purpose`` is checked as the list's and the export's are (1-256 characters of clean text)."""
    admin, _, number = await _revoked(app, client)
    for bad in ("x" * 257, "line\u0000break"):
        answer = await client.get(f"/v1/certificates/{number}/events", params={"purpose": bad}, headers=bearer(admin))
        assert_problem(answer, 422, field="purpose")
    assert await audit_records(client, admin, "certificate.history_read") == []


async def test_a_body_reading_its_own_certificates_history_is_not_audited(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Like its other reads of its own certificates; a ``purpose`` it gives is ignored. The bureau's read, after, is
    the only record."""
    admin, body, number = await _revoked(app, client)
    own = await client.get(f"/v1/certificates/{number}/events", params={"purpose": "ours"}, headers=bearer(body))
    assert own.status_code == 200, own.text
    assert REASON in own.text
    assert await audit_records(client, admin, "certificate.history_read") == []
    assert (await client.get(f"/v1/certificates/{number}/events", headers=bearer(admin))).status_code == 200
    assert len(await audit_records(client, admin, "certificate.history_read")) == 1


async def test_a_search_for_a_round_holding_an_identity_number_keeps_it_masked_in_the_audit_log(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A round is searched for as given (certificates issued before rounds refused identity numbers may hold one), and
    the bureau's search is audited with its filters: the append-only log never keeps the number whole."""
    admin = await admin_token(app, client)
    number = "11010519491231002X"
    for path in ("/v1/certificates", "/v1/certificates/export.csv"):
        params = {"evaluation_batch": f"2026 {number}", "purpose": "filing review"}
        found = await client.get(path, params=params, headers=bearer(admin))
        assert found.status_code == 200, found.text
    records = await audit_records(client, admin, "certificate.listed")
    records += await audit_records(client, admin, "certificate.exported")
    assert len(records) == 2, records
    for record in records:
        assert number not in str(record), record
        assert record["details"]["filters"]["evaluation_batch"].endswith("2X"), record
