"""An issuance beside a suspension of its body, on PostgreSQL: the issuance reads the body's status under a share
lock, so it either commits before the suspension or waits for it and is refused. Before, an issuance that had read
"active" went on while the suspension committed, and the suspended body's certificate was issued after all."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.checks import assert_problem
from tests.factories import batch_rows, bearer, certificate_body, issued_certificate, resident_id, row_count
from tests.integration.lifecycle_support import CODE, set_up

POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has one write lock: nothing to race


@POSTGRESQL_ONLY
@pytest.mark.parametrize("entry_point", ["single", "batch"])
async def test_an_issuance_waits_for_a_suspension_under_way_and_is_then_refused(
    app: FastAPI, client: httpx.AsyncClient, entry_point: str
) -> None:
    world = await set_up(app, client)
    await issued_certificate(client, world.issuer)
    before = await row_count(app, "certificates")
    holder = {"name": "周九", "id_type": "resident_id", "id_number": resident_id(sequence=77)}
    async with app.state.engine.connect() as suspension:
        under_way = await suspension.begin()  # a suspension that has changed the body's row and not yet committed
        await suspension.execute(text("UPDATE issuers SET status = 'suspended' WHERE code = :code"), {"code": CODE})
        if entry_point == "single":
            request = client.post(
                "/v1/certificates", json=certificate_body(holder=holder), headers=bearer(world.issuer)
            )
        else:
            rows = {"certificates": batch_rows(3)}
            keyed = bearer(world.issuer) | {"Idempotency-Key": "suspension-race"}
            request = client.post("/v1/certificate-batches", json=rows, headers=keyed)
        issuing = asyncio.create_task(request)
        await asyncio.sleep(0.5)
        assert not issuing.done(), issuing.result().text  # it waits for the suspension to end, either way
        await under_way.commit()
    answer = await asyncio.wait_for(issuing, timeout=20)
    problem = assert_problem(answer, 403)
    assert CODE in problem["detail"]
    assert "suspended" in problem["detail"]
    assert await row_count(app, "certificates") == before


@POSTGRESQL_ONLY
async def test_an_issuance_beside_a_suspension_that_is_rolled_back_goes_ahead(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await set_up(app, client)
    async with app.state.engine.connect() as suspension:
        under_way = await suspension.begin()
        await suspension.execute(text("UPDATE issuers SET status = 'suspended' WHERE code = :code"), {"code": CODE})
        issuing = asyncio.create_task(
            client.post("/v1/certificates", json=certificate_body(), headers=bearer(world.issuer))
        )
        await asyncio.sleep(0.3)
        await under_way.rollback()
    answer = await asyncio.wait_for(issuing, timeout=20)
    assert answer.status_code == 201, answer.text
