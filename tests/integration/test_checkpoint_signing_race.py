"""A checkpoint whose key was marked compromised while the registry was signing it is not served: it follows the
downloads' rule (``registry.keys.service.refuse_compromised_signers``): 503, ask again, and then the key that took
over signs. Interleaved deterministically with events, on PostgreSQL only: on SQLite every transaction holds the
database's write lock from BEGIN IMMEDIATE, so a mark cannot commit while a checkpoint is being signed."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI

from registry.audit.service import Actor
from registry.db import transaction, utcnow
from registry.keys import compromise
from registry.transparency import checkpoints
from registry.transparency import service as transparency

PATH = "/v1/transparency/checkpoint"


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only (see the module docstring): the one backend where a mark commits during the signing."""
    return str(request.param)


async def _checkpoint(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get(PATH)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _jwk(client: httpx.AsyncClient, kid: str) -> dict[str, Any]:
    keys: list[dict[str, Any]] = (await client.get("/.well-known/jwks.json")).json()["keys"]
    return next(key for key in keys if key["kid"] == kid)


async def _mark_compromised(app: FastAPI, kid: str) -> None:
    """What ``registry keys compromise KID --registry --compromised-from NOW`` does, in a transaction of its own."""
    async with transaction(app.state.sessions) as session:
        await compromise.mark_registry_key(
            session, app.state.context.keyring, actor=Actor(id="cli"), kid=kid, since=utcnow()
        )


async def test_a_checkpoint_whose_key_was_compromised_while_it_was_signed_is_not_served(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await _checkpoint(client)  # the registry's key, made on first use
    reached, release = asyncio.Event(), asyncio.Event()
    signed_checkpoint = transparency.checkpoint

    async def paused(*args: Any, **kwargs: Any) -> Any:
        """The checkpoint signed with the key read as current; then it waits to be let go (the first time)."""
        result = await signed_checkpoint(*args, **kwargs)
        if not reached.is_set():
            reached.set()
            await release.wait()
        return result

    monkeypatch.setattr(transparency, "checkpoint", paused)
    asked = asyncio.create_task(client.get(PATH))
    await asyncio.wait({asked, asyncio.create_task(reached.wait())}, return_when=asyncio.FIRST_COMPLETED)
    assert reached.is_set(), "the checkpoint was answered before it was signed"
    await _mark_compromised(app, first["kid"])  # stolen: marked from now, while a checkpoint is signed with it
    release.set()
    answer = await asked

    assert answer.status_code == 503, (answer.status_code, answer.text)
    assert answer.headers["retry-after"] == "1"
    assert "marked compromised while this answer was being signed" in answer.json()["detail"]
    assert (await _jwk(client, first["kid"]))["status"] == "compromised"
    # Asked again, it is signed by the key that took over, and verifies with it as the JWKS publishes it.
    again = await _checkpoint(client)
    assert again["kid"] != first["kid"]
    key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode((await _jwk(client, again["kid"]))["x"] + "=="))
    checked = checkpoints.verify(again["note"], origin=again["origin"], key=key)
    assert (checked.tree_size, base64.b64encode(checked.root_hash).decode()) == (again["tree_size"], again["root_hash"])
