"""Two admins registering the same thing at once, on PostgreSQL: an evaluation body (same code or same credit code)
or a catalogue entry (same code). The one that commits first wins; the other is answered as if it had come second —
409 naming the field — never 500. Before, both looked, found nothing, and the loser's insert hit the unique index."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.checks import assert_problem
from tests.factories import admin_token, bearer, create_issuer, credit_code, issuer_body, row_count

POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has one write lock: nothing to race


def _entry(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "cert_type": "title",
        "series_zh": "工程技术",
        "name_zh": "量子计算",
        "name_en": "Quantum computing",
        "levels": ["intermediate", "senior"],
        "effective_from": "2026-01-01",
        "basis": "京人社发〔2026〕9号",
    }


async def _someone_waits_for_a_lock(app: FastAPI) -> bool:
    async with app.state.engine.connect() as connection:
        found = await connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return int(found.scalar_one()) > 0


async def _answer_beside(
    app: FastAPI, under_way: str, values: dict[str, Any], request: Callable[[], Coroutine[Any, Any, httpx.Response]]
) -> httpx.Response:
    """``request``'s answer when another registration (``under_way``, with ``values``) has written its row but not
    yet committed when the request looks, and commits while the request waits to write its own."""
    async with app.state.engine.connect() as other:
        transaction = await other.begin()
        await other.execute(text(under_way), values)
        answer = asyncio.create_task(request())
        for _ in range(400):  # until the request's insert waits on the other's row (it cannot finish before)
            if answer.done() or await _someone_waits_for_a_lock(app):
                break
            await asyncio.sleep(0.05)
        assert not answer.done(), answer.result().text
        await transaction.commit()
    return await asyncio.wait_for(answer, timeout=30)


_ISSUER_ROW = (
    "INSERT INTO issuers (code, name, credit_code, kind, region, status, created_at) "
    "VALUES (:code, '另一个评审委员会', :credit_code, 'title_committee', 'BJ', 'active', now())"
)


@POSTGRESQL_ONLY
@pytest.mark.parametrize("clash", ["code", "credit_code"])
async def test_a_body_registered_while_the_same_one_is_being_registered_is_refused_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, clash: str
) -> None:
    admin = await admin_token(app, client)
    body = issuer_body("BJ-QC-COMMITTEE")
    other = {"code": "BJ-OTHER", "credit_code": credit_code()} | {clash: body[clash]}

    answer = await _answer_beside(
        app, _ISSUER_ROW, other, lambda: client.post("/v1/issuers", json=body, headers=bearer(admin))
    )

    assert_problem(answer, 409, field=clash, message="already registered")
    assert await row_count(app, "issuers") == 1  # the other's, and nothing of this one (scopes, keys, audit)
    assert await row_count(app, "issuer_filed_scopes") == 0


_ENTRY_ROW = (
    "INSERT INTO catalogue_entries (code, version, cert_type, name_zh, name_en, levels, effective_from, created_at) "
    "VALUES (:code, 1, 'title', '量子计算', 'Quantum computing', '[\"senior\"]', '2026-01-01', now())"
)


@POSTGRESQL_ONLY
async def test_a_catalogue_entry_added_while_the_same_one_is_being_added_is_refused_naming_the_code(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    before = await row_count(app, "catalogue_entries")

    answer = await _answer_beside(
        app,
        _ENTRY_ROW,
        {"code": "ENG-QC"},
        lambda: client.post("/v1/catalogue", json=_entry("ENG-QC"), headers=bearer(admin)),
    )

    assert_problem(answer, 409, field="code", message="already exists")
    assert await row_count(app, "catalogue_entries") == before + 1


@POSTGRESQL_ONLY
async def test_five_admins_registering_one_body_at_once_register_it_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    body = issuer_body("BJ-QC-COMMITTEE")

    answers = await asyncio.gather(*(client.post("/v1/issuers", json=body, headers=bearer(admin)) for _ in range(5)))

    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409], [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, field="code")
    # The winner is whole: its filing, its signing key, and one audit record of the registration.
    registered = await client.get("/v1/issuers/BJ-QC-COMMITTEE")
    assert registered.status_code == 200, registered.text
    assert len(registered.json()["scopes"]) == 1
    issuer = await create_issuer(client, admin, code="BJ-QC-OTHER")  # and the next registration goes on as usual
    assert issuer["code"] == "BJ-QC-OTHER"


@POSTGRESQL_ONLY
async def test_five_admins_adding_one_catalogue_entry_at_once_add_it_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await admin_token(app, client)
    before = await row_count(app, "catalogue_entries")

    answers = await asyncio.gather(
        *(client.post("/v1/catalogue", json=_entry("ENG-QC"), headers=bearer(admin)) for _ in range(5))
    )

    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409], [a.text for a in answers]
    assert await row_count(app, "catalogue_entries") == before + 1
