"""The audit log as the bureau reads it (GET /v1/audit) and checks it (`registry audit verify`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.auth.scopes import Role
from registry.db import transaction
from registry.pagination import encode_cursor
from tests.checks import assert_problem
from tests.factories import (
    bearer,
    create_client,
    create_issuer,
    issued_certificate,
    issuer_token,
    resident_id,
    token_for,
)
from tests.integration.cli_support import registry_env, run_registry

FIELDS = {"id", "at", "actor", "action", "object_type", "object_id", "purpose", "details", "hash", "prev_hash"}


async def _bureau_at_work(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str]:
    """An admin registers a body and a partner client over the API; the body issues two certificates. Returns the
    admin's client id and token."""
    admin_id, admin_secret = await create_client(app, role=Role.admin)
    admin = await token_for(client, admin_id, admin_secret)
    await create_issuer(client, admin)
    partner = await client.post(
        "/v1/clients", json={"role": "partner", "name": "天津市人社局", "region": "TJ"}, headers=bearer(admin)
    )
    assert partner.status_code == 201, partner.text
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    for _ in range(2):
        await issued_certificate(client, issuer)
    return admin_id, admin


async def _audit(client: httpx.AsyncClient, admin: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/audit", params=params, headers=bearer(admin))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_admin_reads_every_record_oldest_first_with_its_chain(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin_id, admin = await _bureau_at_work(app, client)

    page = await _audit(client, admin)

    records = page["data"]
    assert page["next_cursor"] is None
    assert [r["action"] for r in records] == [
        "client.created",
        "issuer.registered",
        "client.created",
        "client.created",
        "certificate.issued",
        "certificate.issued",
    ]
    assert all(set(r) == FIELDS for r in records)
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)
    assert records[1]["actor"] == f"client:{admin_id}"
    assert records[1]["object_type"] == "issuer"
    assert records[1]["object_id"] == "BJ-AI-COMMITTEE"
    assert records[1]["purpose"] == "filing of an evaluation body"
    assert records[2]["details"]["region"] == "TJ"
    assert records[0]["prev_hash"] == "0" * 64
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in pairwise(records))


async def test_filter_by_actor_keeps_only_that_actors_records(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin_id, admin = await _bureau_at_work(app, client)

    records = (await _audit(client, admin, actor=f"client:{admin_id}"))["data"]

    assert [(r["actor"], r["action"]) for r in records] == [
        (f"client:{admin_id}", "issuer.registered"),
        (f"client:{admin_id}", "client.created"),
    ]
    assert (await _audit(client, admin, actor="client:nobody"))["data"] == []


async def test_filter_by_action_is_exact_or_a_prefix(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, admin = await _bureau_at_work(app, client)

    exact = (await _audit(client, admin, action="issuer.registered"))["data"]
    prefix = (await _audit(client, admin, action="certificate.*"))["data"]
    partial = (await _audit(client, admin, action="certificate"))["data"]

    assert [r["action"] for r in exact] == ["issuer.registered"]
    assert [r["action"] for r in prefix] == ["certificate.issued", "certificate.issued"]
    assert partial == []


async def test_filter_by_since_keeps_records_at_or_after_it(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, admin = await _bureau_at_work(app, client)
    everything = (await _audit(client, admin))["data"]
    since = everything[-2]["at"]

    records = (await _audit(client, admin, since=since))["data"]

    moment = datetime.fromisoformat(since)
    expected = [r["id"] for r in everything if datetime.fromisoformat(r["at"]) >= moment]
    assert [r["id"] for r in records] == expected
    assert everything[0]["id"] not in expected
    assert everything[-1]["id"] in expected


async def test_filter_by_since_takes_a_date_as_its_first_moment_in_utc(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, admin = await _bureau_at_work(app, client)
    everything = (await _audit(client, admin))["data"]
    first_day = datetime.fromisoformat(everything[0]["at"]).date()

    from_first_day = (await _audit(client, admin, since=first_day.isoformat()))["data"]
    from_later = (await _audit(client, admin, since=(first_day + timedelta(days=2)).isoformat()))["data"]

    assert [r["id"] for r in from_first_day] == [r["id"] for r in everything]
    assert from_later == []


async def test_following_next_cursor_returns_every_record_exactly_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, admin = await _bureau_at_work(app, client)
    everything = [r["id"] for r in (await _audit(client, admin))["data"]]

    seen: list[int] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = await _audit(client, admin, **params)
        assert len(page["data"]) <= 2
        seen += [r["id"] for r in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == everything
    assert pages == 3


async def test_cursor_pages_keep_the_filter(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, admin = await _bureau_at_work(app, client)

    first = await _audit(client, admin, action="client.created", limit=2)
    second = await _audit(client, admin, action="client.created", limit=2, cursor=first["next_cursor"])

    assert [r["action"] for r in first["data"] + second["data"]] == ["client.created"] * 3
    assert second["next_cursor"] is None


@pytest.mark.parametrize("role", [Role.partner, Role.issuer])
async def test_partner_and_issuer_clients_may_not_read_the_audit_log(
    app: FastAPI, client: httpx.AsyncClient, role: Role
) -> None:
    await _bureau_at_work(app, client)
    options = {"region": "TJ"} if role is Role.partner else {"issuer_code": "BJ-AI-COMMITTEE"}
    token = await token_for(client, *await create_client(app, role=role, **options))

    response = await client.get("/v1/audit", headers=bearer(token))

    assert_problem(response, 403)


async def test_the_audit_log_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/audit", params={"since": "not a time"})

    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-30"}, "since"),
        ({"since": "2026-11-01T08:00:00"}, "since"),  # no zone: 08:00 where?
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"action": "certificate.%"}, "action"),
        ({"actor": ""}, "actor"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"cursor": encode_cursor(["x"])}, "cursor"),
        ({"cursor": encode_cursor([2**40])}, "cursor"),
        ({"cursor": "x" * 300}, "cursor"),
    ],
)
async def test_bad_filters_are_refused_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    admin = await token_for(client, *await create_client(app, role=Role.admin))

    response = await client.get("/v1/audit", params=params, headers=bearer(admin))

    assert_problem(response, 422, field=field)


async def test_no_audit_record_carries_a_clear_identity_number(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await token_for(client, *await create_client(app, role=Role.admin))
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    number = resident_id()
    holder = {"name": "李四", "id_type": "resident_id", "id_number": number}
    certificate = await issued_certificate(client, issuer, holder=holder)
    signed_in = await client.post(
        "/v1/holder/sessions",
        json={"id_type": "resident_id", "id_number": number, "claim_code": certificate["claim_code"]},
    )
    assert signed_in.status_code == 201, signed_in.text
    revoked = await client.post(
        f"/v1/certificates/{certificate['number']}/revoke",
        json={"reason": "issued in error", "reason_code": "issued_in_error"},
        headers=bearer(issuer),
    )
    assert revoked.status_code == 200, revoked.text

    response = await client.get("/v1/audit", params={"limit": 500}, headers=bearer(admin))

    assert response.status_code == 200
    actions = [r["action"] for r in response.json()["data"]]
    assert {"certificate.issued", "holder.session_opened", "certificate.revoked"} <= set(actions)
    assert number not in response.text
    assert number[:-1] not in response.text  # nor the number short of its check character


async def _tamper(app: FastAPI, statement: str, **params: object) -> None:
    """What an attacker with the table owner's rights could do: switch off the append-only guard, change the log,
    switch the guard back on (PostgreSQL) — or drop the guard (SQLite, whose file they could edit anyway)."""
    async with transaction(app.state.sessions) as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            await session.execute(text(statement), params)
            await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        else:
            await session.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            await session.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
            await session.execute(text(statement), params)


async def _record_ids(app: FastAPI) -> list[int]:
    async with transaction(app.state.sessions) as session:
        return [int(i) for i in (await session.execute(text("SELECT id FROM audit_log ORDER BY id"))).scalars()]


async def test_audit_verify_reports_an_intact_chain(app: FastAPI, client: httpx.AsyncClient, database_url: str) -> None:
    await _bureau_at_work(app, client)
    ids = await _record_ids(app)

    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url))

    assert code == 0, out + err
    assert f"audit chain intact: {len(ids)} records" in out


async def test_audit_verify_names_a_record_altered_in_the_database(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    await _bureau_at_work(app, client)
    ids = await _record_ids(app)
    altered = ids[2]
    await _tamper(app, "UPDATE audit_log SET purpose = 'nothing to see' WHERE id = :id", id=altered)

    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url))

    assert code == 1, out + err
    assert f"audit record {altered} was altered" in out


async def test_audit_verify_names_the_record_after_one_removed(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    await _bureau_at_work(app, client)
    ids = await _record_ids(app)
    removed, following = ids[len(ids) // 2], ids[len(ids) // 2 + 1]
    await _tamper(app, "DELETE FROM audit_log WHERE id = :id", id=removed)

    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url))

    assert code == 1, out + err
    assert f"audit record {following} does not follow on from the record before it" in out
    assert "the record before it was removed" in out


async def test_audit_verify_on_an_empty_log_is_intact(database_url: str) -> None:
    code, out, err = await run_registry("audit", "verify", env=registry_env(database_url))

    assert code == 0, out + err
    assert "audit chain intact: 0 records" in out
