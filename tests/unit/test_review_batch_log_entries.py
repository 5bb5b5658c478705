"""A batch's log entries (recording._Logged, built on audit.Preparing and transparency.Leaves) are the bytes the general
path makes (audit.prepare of the entry recording used to build, transparency.leaf of its Entry), for a correction
(``supersedes`` set: the audit detail and the leaf's kind and field) and for values JSON must escape: a Chinese
catalogue code and level, an actor and purpose with quotes, a number with a backslash, a holder index with a control
character."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from registry.audit import service as audit
from registry.certificates import drafting, journal, recording
from registry.transparency import service as transparency
from registry.transparency.models import LeafKind


@pytest.mark.parametrize("supersedes", [None, 'TJ-"旧"\\2026'])
def test_a_batch_entry_is_the_entry_the_general_path_makes(supersedes: str | None) -> None:
    actor = audit.Actor('client:"评审"\u2028')
    at = datetime(2026, 12, 5, 9, 30, 1, tzinfo=UTC)
    begun = cast(drafting.Begun, SimpleNamespace(supersedes=supersedes, issued_at=at))
    logs = journal.Journal(actor)
    logged = recording._Logged(logs, begun, issuer_code="京-评\u00e9", purpose='import "滚动"\n', supersedes=supersedes)
    record: list[Any] = [None] * len(recording.COLUMNS)
    values = {
        "number": "11\\0000\u0001X",
        "catalogue_code": "职业-\U0001f642",
        "level": "三级/高级工",
        "kid": "k\u2029",
        "signature": "eyJhbGciOiJFZERTQSJ9..c2ln",
    }
    for column, value in values.items():
        record[recording.COLUMNS.index(column)] = value
    holder = SimpleNamespace(index="\x00" + "ab" * 20)
    logged(cast(recording.Minted, SimpleNamespace(record=record, accepted=SimpleNamespace(holder=holder))))

    details: dict[str, Any] = {
        "issuer": "京-评\u00e9",
        "catalogue_code": values["catalogue_code"],
        "level": values["level"],
        "kid": values["kid"],
        "holder_ref": holder.index[:16],
    }
    if supersedes is not None:
        details["supersedes"] = supersedes
    entry = audit.Entry("certificate.issued", "certificate", values["number"], 'import "滚动"\n', details)
    leaf = transparency.Entry(
        LeafKind.issuance if supersedes is None else LeafKind.correction,
        values["number"],
        at,
        "issued",
        "active",
        "京-评\u00e9",
        values["signature"],
        supersedes,
    )
    assert logs._audit == [audit.prepare(entry, actor=actor)]
    assert logs._leaves == [transparency.leaf(leaf)]
