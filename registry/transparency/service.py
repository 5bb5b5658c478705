"""Appending to the transparency log (in the caller's transaction), and reading its heads and proofs.

Appends are serialised by a lock held to the end of the transaction (PostgreSQL: an advisory lock; SQLite: every
transaction holds the write lock), so leaf indexes are consecutive whatever the number of writers: each append reads
the tree's size and frontier, hashes only what its own leaves complete, and bulk-inserts leaves, nodes and one head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk
from registry.canonical import canonical_json, iso_time
from registry.context import RegistryContext
from registry.db import utcnow
from registry.errors import InvalidInput, NotFound
from registry.i18n import _
from registry.keys import service as keys
from registry.transparency import checkpoints, merkle
from registry.transparency.merkle import Node
from registry.transparency.models import (
    BIRTH_KINDS,
    LeafKind,
    TransparencyHead,
    TransparencyLeaf,
    TransparencyNode,
)

LEAF_VERSION = 1
_LOG_LOCK = 0x746C6F67  # "tlog": one appender at a time, so leaf indexes never clash or skip


@dataclass(frozen=True, slots=True)
class Entry:
    """One event as the public log states it: the certificate number, what happened and when, and the SHA-256 of the
    certificate's detached signature, which ties the leaf to exactly one signed certificate. Never a name or an
    identity number: the log is public, and a leaf can never be taken back."""

    kind: LeafKind
    number: str
    at: datetime
    event: str
    status: str
    issuer: str
    signature: str
    supersedes: str | None = None
    reason_code: str | None = None

    def data(self) -> bytes:
        """The leaf data d: canonical JSON, so anyone holding the same facts makes the same bytes."""
        body: dict[str, Any] = {
            "v": LEAF_VERSION,
            "type": self.kind.value,
            "number": self.number,
            "at": iso_time(self.at),
            "event": self.event,
            "status": self.status,
            "issuer": self.issuer,
            "signature_sha256": _sha256_hex(self.signature.encode("ascii")),
        }
        if self.supersedes is not None:
            body["supersedes"] = self.supersedes
        if self.reason_code is not None:
            body["reason_code"] = self.reason_code
        return canonical_json(body)


@dataclass(frozen=True, slots=True)
class Head:
    tree_size: int
    root_hash: bytes


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    leaf_data: bytes
    audit_path: list[bytes]


class Leaf(NamedTuple):
    """An entry as its leaf stores it (``leaf``): its kind, number and time, the leaf data d and MTH({d}), made before
    the log's turn is taken. A tuple, not a dataclass: a batch makes 10,000."""

    kind: LeafKind
    number: str
    at: datetime
    data: bytes
    hash: bytes


def leaf(entry: Entry) -> Leaf:
    """``entry``'s leaf made (``Leaf``), ready for ``append_leaves``: it needs nothing of the tree."""
    data = entry.data()
    return Leaf(entry.kind, entry.number, entry.at, data, merkle.leaf_hash(data))


class Leaves:
    """``leaf`` for many entries alike but for their numbers and signatures (a batch's issuances): the rest of the
    leaf data is written once, and each leaf's joined around its own two values — the bytes ``Entry.data`` makes,
    without an ``Entry`` or a dictionary per leaf."""

    __slots__ = ("_after_number", "_after_signature", "_at", "_before_number", "_kind")

    def __init__(self, *, kind: LeafKind, at: datetime, event: str, status: str, issuer: str, supersedes: str | None):
        self._kind, self._at = kind, at
        data = Entry(kind, "", at, event, status, issuer, "", supersedes).data()  # own values empty
        number, signature = b'"number":""', b'"signature_sha256":"' + _sha256_hex(b"").encode() + b'"'
        before_number, _, rest = data.partition(number)
        between, found, after_signature = rest.partition(signature)
        if not found or number in rest or signature in after_signature:
            raise RuntimeError("transparency.Leaves no longer writes what Entry.data writes")
        self._before_number = before_number + b'"number":'
        self._after_number = between + b'"signature_sha256":"'
        self._after_signature = b'"' + after_signature

    def leaf(self, number: str, signature: str) -> Leaf:
        signed = _sha256_hex(signature.encode("ascii")).encode()
        data = self._before_number + canonical_json(number) + self._after_number + signed + self._after_signature
        return Leaf(self._kind, number, self._at, data, merkle.leaf_hash(data))


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_LEAF_COLUMNS = ("leaf_index", "kind", "number", "at", "data", "leaf_hash")
_NODE_COLUMNS = ("level", "position", "hash")


async def append_leaves(session: AsyncSession, leaves: Sequence[Leaf]) -> Head | None:
    """Add the leaves (``leaf``), in order, with consecutive indexes; returns the new head (None when nothing was
    added). Call it in the same transaction as the change it records, after the audit log's append (lock order):
    the log's turn is taken here."""
    if not leaves:
        return None
    if bulk.is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOG_LOCK})
    head = await latest_head(session)
    frontier = merkle.frontier(head.tree_size)
    stored = await _hashes(session, frontier)
    records = (
        (index, item.kind.value, item.number, item.at, item.data, item.hash)
        for index, item in enumerate(leaves, start=head.tree_size)
    )
    await bulk.insert_records(session, bulk.table_of(TransparencyLeaf), _LEAF_COLUMNS, records)
    leaf_hashes = [item.hash for item in leaves]
    appended = merkle.append(head.tree_size, [stored[node] for node in frontier], leaf_hashes)
    nodes = ((n.level, n.position, h) for n, h in appended.nodes if n.level > 0)
    await bulk.insert_records(session, bulk.table_of(TransparencyNode), _NODE_COLUMNS, nodes)
    new_head = {"tree_size": appended.size, "root_hash": appended.root, "at": utcnow()}
    await bulk.insert_rows(session, bulk.table_of(TransparencyHead), [new_head])
    return Head(appended.size, appended.root)


async def latest_head(session: AsyncSession) -> Head:
    """The tree as of the last committed append (the empty tree before the first)."""
    row = (
        await session.execute(
            select(col(TransparencyHead.tree_size), col(TransparencyHead.root_hash))
            .order_by(col(TransparencyHead.tree_size).desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return Head(0, merkle.EMPTY_ROOT)
    return Head(int(row[0]), bytes(row[1]))


async def checkpoint(ctx: RegistryContext, session: AsyncSession) -> tuple[checkpoints.Checkpoint, str]:
    """The current tree head, signed now by the registry's key; and that key's kid in the JWKS, which lists it for good
    (retired and outlived, as ``keys.CHECKPOINT_KEY_USE``), so a checkpoint kept for years still verifies."""
    key = await keys.registry_token_key(session, ctx.box)
    head = await latest_head(session)
    signed = checkpoints.sign(
        origin=checkpoints.origin_of(ctx.settings.public_base_url),
        tree_size=head.tree_size,
        root_hash=head.root_hash,
        timestamp=int(utcnow().timestamp()),
        key=ctx.keyring.private_key(key),
    )
    return signed, key.kid


async def _hashes(session: AsyncSession, nodes: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of these complete subtrees: leaves from their rows, larger ones from the node table."""
    wanted = set(nodes)
    found: dict[Node, bytes] = {}
    leaf_positions = sorted(n.position for n in wanted if n.level == 0)
    if leaf_positions:
        leaves = await session.execute(
            select(col(TransparencyLeaf.leaf_index), col(TransparencyLeaf.leaf_hash)).where(
                col(TransparencyLeaf.leaf_index).in_(leaf_positions)
            )
        )
        found.update({Node(0, int(i)): bytes(h) for i, h in leaves})
    inner = sorted((n.level, n.position) for n in wanted if n.level > 0)
    if inner:
        key = tuple_(col(TransparencyNode.level), col(TransparencyNode.position))
        stored = await session.execute(
            select(col(TransparencyNode.level), col(TransparencyNode.position), col(TransparencyNode.hash)).where(
                key.in_(inner)
            )
        )
        found.update({Node(int(level), int(position)): bytes(h) for level, position, h in stored})
    missing = wanted - found.keys()
    if missing:
        # Only a damaged log gets here (``registry audit verify`` says where); never answer with a made-up proof.
        raise RuntimeError(f"the transparency log lacks {len(missing)} stored subtree(s), e.g. {min(missing)}")
    return found


async def _roots(session: AsyncSession, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    hashes = await _hashes(session, (node for begin, end in ranges for node in merkle.range_nodes(begin, end)))
    return [merkle.range_root(begin, end, hashes) for begin, end in ranges]


async def inclusion(session: AsyncSession, *, number: str, tree_size: int | None = None) -> InclusionProof:
    """The inclusion proof of the leaf that brought ``number`` into being (its issuance, or its correction), in the
    current tree or in the tree of ``tree_size`` leaves (an older checkpoint's)."""
    leaf = (
        await session.execute(
            select(TransparencyLeaf)
            .where(col(TransparencyLeaf.number) == number, col(TransparencyLeaf.kind).in_(sorted(BIRTH_KINDS)))
            .order_by(col(TransparencyLeaf.leaf_index))
            .limit(1)
        )
    ).scalar_one_or_none()
    if leaf is None:
        raise NotFound(_("certificate {number} is not in the transparency log", number=number))
    head = await latest_head(session)
    size = head.tree_size if tree_size is None else tree_size
    if size > head.tree_size:
        raise InvalidInput.field("tree_size", _("must not exceed the log's size, {size}", size=head.tree_size))
    if size <= leaf.leaf_index:
        raise InvalidInput.field("tree_size", _("must be over {index}: the leaf came later", index=leaf.leaf_index))
    path = await _roots(session, merkle.inclusion_ranges(leaf.leaf_index, size))
    return InclusionProof(leaf.leaf_index, size, bytes(leaf.leaf_hash), bytes(leaf.data), path)


async def consistency(session: AsyncSession, *, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``new_size`` leaves extends the tree of ``old_size`` leaves."""
    if old_size < 1:
        raise InvalidInput.field("from", _("must be at least 1: every tree extends the empty one"))
    if old_size > new_size:
        raise InvalidInput.field("from", _("must not exceed to"))
    head = await latest_head(session)
    if new_size > head.tree_size:
        raise InvalidInput.field("to", _("must not exceed the log's size, {size}", size=head.tree_size))
    return await _roots(session, merkle.consistency_ranges(old_size, new_size))
