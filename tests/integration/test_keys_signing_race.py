"""A download that read the body's keys just before a compromise of them committed: the answer is never signed by a
key already compromised when it is sent. Interleaved deterministically with events, on PostgreSQL (on SQLite every
transaction holds the database's write lock from BEGIN IMMEDIATE, so a mark and a download never overlap).

The download re-reads its keys once its audit record holds the audit chain, which every mark holds to its commit too:
a mark committed before is seen (503, ask again: then the key that took over signs), a mark not yet committed waits
for the download — nothing is locked beside that, so neither waits on the other in a cycle."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.audit import service as audit
from registry.credentials import service as credentials
from registry.db import transaction, utcnow
from registry.keys import documents
from tests.factories import bearer, issued_certificate
from tests.integration.lifecycle_support import World, set_up, verified
from tests.integration.test_key_compromise_windows import _checked_by_crl, _compromise, _pdf, _signer_of


@pytest.fixture(autouse=True)
def _postgres_only(backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite serializes every transaction (BEGIN IMMEDIATE): a mark cannot commit during a download")


def _paused(original: Callable[..., Awaitable[Any]], reached: asyncio.Event, release: asyncio.Event) -> Any:
    """``original``, but once done it says so and waits to be let go (the first call only)."""

    async def paused(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        if not reached.is_set():
            reached.set()
            await release.wait()
        return result

    return paused


async def _started(client: httpx.AsyncClient, world: World, path: str, reached: asyncio.Event) -> asyncio.Task[Any]:
    download = asyncio.create_task(client.get(path, headers=bearer(world.issuer)))
    await asyncio.wait({download, asyncio.create_task(reached.wait())}, return_when=asyncio.FIRST_COMPLETED)
    assert reached.is_set(), "the download ended before it signed"
    return download


async def test_a_pdf_whose_keys_were_compromised_while_it_was_signed_is_not_served(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    path = f"/v1/certificates/{certificate['number']}.pdf"
    before = _signer_of(await _pdf(client, world, certificate["number"]))  # the body's document key D
    reached, release = asyncio.Event(), asyncio.Event()
    monkeypatch.setattr(documents, "document_signer", _paused(documents.document_signer, reached, release))

    download = await _started(client, world, path, reached)  # D (and the credential key K) read, not yet signed
    # K stolen: marked from now (its certificate, signed before, stays valid), which cuts D off with it.
    marked = await _compromise(client, world, certificate["kid"], utcnow().isoformat())
    assert marked.status_code == 200, marked.text
    assert marked.json()["status"] == "compromised"
    release.set()
    answer = await download

    assert answer.status_code == 503, (answer.status_code, answer.headers.get("content-type"))
    assert answer.headers["retry-after"] == "1"
    assert "marked compromised while this answer was being signed" in answer.json()["detail"]
    # Asked again, it is signed by a newly certified key, which no CRL lists, and its credential by K's successor.
    again = await _pdf(client, world, certificate["number"])
    assert _signer_of(again).serial_number != before.serial_number
    assert await _checked_by_crl(client, again)
    assert (await verified(client, certificate))["result"] == "valid"
    assert await _downloads(app) == 2  # the first and the one asked again: the refused answer left no record


async def test_a_credential_whose_key_was_compromised_while_it_was_signed_is_not_served(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    path = f"/v1/certificates/{certificate['number']}/credential"
    reached, release = asyncio.Event(), asyncio.Event()
    monkeypatch.setattr(credentials, "signed_credential", _paused(credentials.signed_credential, reached, release))

    download = await _started(client, world, path, reached)
    marked = await _compromise(client, world, certificate["kid"], utcnow().isoformat())
    assert marked.status_code == 200, marked.text
    release.set()
    answer = await download

    assert answer.status_code == 503, answer.text
    again = await client.get(path, headers=bearer(world.issuer))
    assert again.status_code == 200, again.text
    # Signed by the key that took over (its header names the key's URL, ending in its kid).
    assert not jwt.get_unverified_header(again.text)["kid"].endswith("/" + certificate["kid"])


async def _downloads(app: FastAPI) -> int:
    async with transaction(app.state.sessions) as session:
        found = await session.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'certificate.pdf_downloaded'")
        )
        return int(found.scalar_one())


async def _someone_waits_for_a_lock(app: FastAPI) -> bool:
    async with transaction(app.state.sessions) as session:
        found = await session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return int(found.scalar_one()) > 0


async def test_a_mark_asked_once_the_download_is_recorded_waits_for_it_and_neither_is_refused(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: the download holds the audit chain (its record appended) when the mark comes. The mark waits
    for the download's commit: the PDF, signed before the key was compromised, is served; then the mark is taken."""
    world = await set_up(app, client)
    certificate = await issued_certificate(client, world.issuer)
    before = _signer_of(await _pdf(client, world, certificate["number"]))
    reached, release = asyncio.Event(), asyncio.Event()
    append = audit.append

    async def recorded(*args: Any, **kwargs: Any) -> Any:
        record = await append(*args, **kwargs)
        if kwargs.get("action") == "certificate.pdf_downloaded" and not reached.is_set():
            reached.set()
            await release.wait()
        return record

    monkeypatch.setattr(audit, "append", recorded)
    download = await _started(client, world, f"/v1/certificates/{certificate['number']}.pdf", reached)
    mark = asyncio.create_task(_compromise(client, world, certificate["kid"], utcnow().isoformat()))
    while not mark.done() and not await _someone_waits_for_a_lock(app):  # noqa: ASYNC110 — the server says it
        await asyncio.sleep(0.01)
    assert not mark.done(), "the mark did not wait for the download holding the audit chain"
    release.set()
    answer, marked = await download, await mark

    assert answer.status_code == 200, answer.text
    assert _signer_of(answer.content).serial_number == before.serial_number
    assert marked.status_code == 200, marked.text
