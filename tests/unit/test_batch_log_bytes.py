"""The batch path's shortcuts write the bytes the general functions write: a batch's audit records
(``audit.Preparing``), its transparency leaves (``transparency.Leaves``) and every keyed hash (``SecretsBox``)."""

from __future__ import annotations

import hmac
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from registry.audit import service as audit
from registry.keys.secrets_box import SecretsBox
from registry.transparency import service as transparency
from registry.transparency.models import LeafKind

# Values that JSON must escape or that sort oddly: quotes, backslashes, control characters, Chinese, an emoji.
AWKWARD = ['BJ-"AI"\\', "评审委员会\n", "\x00\x1f", "🙂", ""]


@pytest.mark.parametrize("text", AWKWARD)
def test_a_batch_audit_record_is_the_record_prepare_makes(text: str) -> None:
    actor = audit.Actor(f"client:{text}")
    preparing = audit.Preparing(actor=actor, action=f"certificate.issued{text}", object_type=text, purpose=text)
    details: dict[str, Any] = {"issuer": text, "catalogue_code": "ENG-AI", "level": 3, "kid": None, "z": [text]}
    entry = audit.Entry(f"certificate.issued{text}", text, f"11{text}", text, details)
    assert preparing.prepare(f"11{text}", details) == audit.prepare(entry, actor=actor)


@pytest.mark.parametrize("text", AWKWARD)
@pytest.mark.parametrize("supersedes", [None, "1100000000000000X"])
def test_a_batch_leaf_is_the_leaf_its_entry_makes(text: str, supersedes: str | None) -> None:
    at = datetime(2026, 12, 5, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    kind = LeafKind.issuance if supersedes is None else LeafKind.correction
    leaves = transparency.Leaves(kind=kind, at=at, event="issued", status="active", issuer=text, supersedes=supersedes)
    for number, signature in ((f"N{text}", "eyJhbGciOiJFZERTQSJ9..c2ln"), ("", "")):
        entry = transparency.Entry(kind, number, at, "issued", "active", text, signature, supersedes)
        assert leaves.leaf(number, signature) == transparency.leaf(entry)


@pytest.mark.parametrize("key_bytes", [0, 1, 32, 63, 64, 65, 200])
def test_keyed_hashes_are_hmac_sha256(key_bytes: int) -> None:
    key = os.urandom(key_bytes)
    box = SecretsBox(key, key, key, key, key)
    at = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    for text in [*AWKWARD, "x" * 200]:
        assert box.blind_index(text, kind="k") == hmac.new(key, f"k\x00{text}".encode(), "sha256").hexdigest()
        assert box.hash_secret(text, kind="s") == hmac.new(key, f"s\x00{text}".encode(), "sha256").hexdigest()
        fields = (text, None, 7, at, LeafKind.issuance)
        sealed = f"r\x00{text}\x1f\x1f7\x1f{at.isoformat()}\x1fissuance"
        assert box.seal(*fields, kind="r") == hmac.new(key, sealed.encode(), "sha256").hexdigest()
