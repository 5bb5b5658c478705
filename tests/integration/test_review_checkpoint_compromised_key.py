"""Review of cfdb961: marking the registry's key compromised does not stop the README's offline checkpoint check.

The README now says that once `registry keys compromise KID --registry` has run, the JWKS lists the key
``status: compromised`` with ``compromised_from``, "so a checkpoint it signed at or after that date proves nothing".
Two things are wrong with that. First, the one offline recipe the README gives ("Checking a certificate offline, with
nothing but a checkpoint, a proof and the registry's JWKS") picks the key by kid and never looks at its status.
Second, a checkpoint's time is signed by the same key, so whoever stole the key also chooses the time, and any date
before ``compromised_from`` passes a date check. So a thief can sign a one-leaf tree holding a certificate the registry
never issued, date it before the compromise, and the README's recipe accepts it: every assert holds.

What should happen: the README recipe (the registry's word on how to check offline) refuses a checkpoint whose key the
JWKS lists as compromised, whatever time the checkpoint claims. It can trust such a key only for a checkpoint the
verifier itself kept from before the compromise date, and the tool cannot know that.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.config import Settings
from registry.transparency import checkpoints, merkle
from tests.integration.cli_support import registry_env, run_registry
from tests.integration.lifecycle_support import key_named, published_keys, set_up
from tests.integration.test_offline import _signing_key_of

README = Path(__file__).resolve().parents[2] / "README.md"


def _recipe() -> str:
    """The README's offline check, as a verifier copies it."""
    text = README.read_text(encoding="utf-8")
    start = text.index("Checking a certificate offline, with nothing but a checkpoint")
    match = re.search(r"```python\n(.*?)```", text[start:], re.DOTALL)
    assert match is not None
    return match.group(1)


async def test_a_checkpoint_forged_with_a_key_listed_compromised_is_refused_by_the_readme_recipe(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    await set_up(app, client)
    kept = (await client.get("/v1/transparency/checkpoint")).json()
    stolen, kid = await _signing_key_of(app, None)
    assert kid == kept["kid"]
    since = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    env = {**registry_env(settings.database_url), "LC_ALL": "C"}
    code, out, err = await run_registry("keys", "compromise", kid, "--registry", "--compromised-from", since, env=env)
    assert code == 0, (out, err)
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert key_named(await published_keys(client), kid)["status"] == "compromised"

    # The thief's checkpoint: a one-leaf tree holding a certificate never issued, dated an hour before the mark.
    number, signature = "BJT2026FORGED001", "forged.credential.signature"
    leaf_data = json.dumps({"number": number, "signature_sha256": hashlib.sha256(signature.encode()).hexdigest()})
    leaf = merkle.leaf_hash(leaf_data.encode())
    forged = checkpoints.sign(
        origin=kept["origin"], tree_size=1, root_hash=leaf, timestamp=kept["timestamp"] - 4200, key=stolen
    )
    checkpoint: dict[str, Any] = {**kept, "note": forged.note, "tree_size": 1, "timestamp": forged.timestamp}
    b64 = base64.b64encode
    proof = {
        "leaf_index": 0,
        "leaf_data": b64(leaf_data.encode()).decode(),
        "leaf_hash": b64(leaf).decode(),
        "audit_path": [],
    }
    scope = {"jwks": jwks, "checkpoint": checkpoint, "proof": proof, "number": number, "signature": signature}
    # Before a fix: the recipe runs to its end; the forged certificate is "in the log".
    with pytest.raises((AssertionError, ValueError, StopIteration, KeyError)):
        exec(_recipe(), scope)  # noqa: S102 — the README's own code, run as a reader would
