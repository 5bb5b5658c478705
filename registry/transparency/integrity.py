"""Checking the stored log against itself: every leaf's hash against its data, the tree rebuilt from the leaves
against every stored subtree hash and every recorded head, and no leaf missing. ``registry audit verify`` runs it.

The leaves are read in pages, so the check runs in constant memory however long the log is. A head is recorded after
every appending transaction, so a leaf altered together with its stored hash is still narrowed down to the leaves of
one transaction (one leaf for a single issuance or status change), and further by the first stored subtree that
no longer matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.transparency import merkle
from registry.transparency.merkle import Node
from registry.transparency.models import TransparencyHead, TransparencyLeaf, TransparencyNode

PAGE = 4096


@dataclass(frozen=True, slots=True)
class LogBreak:
    """The first leaf (or stored hash) where the log does not check out, said in a sentence."""

    leaf_index: int
    message: str

    def describe(self) -> str:
        return self.message


@dataclass(slots=True)
class _Rebuild:
    """The tree as rebuilt so far: its size and the hashes of its frontier."""

    size: int = 0
    edge: list[bytes] = field(default_factory=list)
    checked_head: int = 0  # the size of the last head whose root matched


async def first_broken_leaf(session: AsyncSession) -> LogBreak | None:
    tree = _Rebuild()
    while True:
        leaves = (
            await session.execute(
                select(col(TransparencyLeaf.leaf_index), col(TransparencyLeaf.data), col(TransparencyLeaf.leaf_hash))
                .where(col(TransparencyLeaf.leaf_index) >= tree.size)
                .order_by(col(TransparencyLeaf.leaf_index))
                .limit(PAGE)
            )
        ).all()
        if not leaves:
            break
        hashes: list[bytes] = []
        for expected, (index, data, stored_hash) in enumerate(leaves, start=tree.size):
            if index != expected:
                return LogBreak(expected, f"transparency leaf {expected} was removed")
            hashes.append(merkle.leaf_hash(bytes(data)))
            if hashes[-1] != bytes(stored_hash):
                return LogBreak(index, f"transparency leaf {index} was altered: its hash does not match its data")
        broken = await _check_page(session, tree, hashes)
        if broken is not None:
            return broken
    last_head = (await session.execute(select(func.max(col(TransparencyHead.tree_size))))).scalar_one_or_none()
    if last_head is not None and last_head > tree.size:
        return LogBreak(tree.size, f"transparency leaf {tree.size} was removed (the log had {last_head} leaves)")
    if tree.size > tree.checked_head:
        return LogBreak(tree.checked_head, f"transparency leaf {tree.checked_head} was added without a tree head")
    return None


async def _check_page(session: AsyncSession, tree: _Rebuild, hashes: list[bytes]) -> LogBreak | None:
    """Rebuild the tree over one page of leaf hashes, head by head, checking what was stored along the way."""
    begin, end = tree.size, tree.size + len(hashes)
    heads = (
        await session.execute(
            select(col(TransparencyHead.tree_size), col(TransparencyHead.root_hash))
            .where(col(TransparencyHead.tree_size) > begin, col(TransparencyHead.tree_size) <= end)
            .order_by(col(TransparencyHead.tree_size))
        )
    ).all()
    stored = await _stored_nodes(session, begin, end)
    stops: list[tuple[int, bytes | None]] = [(int(size), bytes(root)) for size, root in heads]
    if not stops or stops[-1][0] != end:
        stops.append((end, None))  # the page ends inside a transaction's leaves: its head is on the next page
    for stop, root in stops:
        appended = merkle.append(tree.size, tree.edge, hashes[tree.size - begin : stop - begin])
        stale = next((n for n, h in appended.nodes if n.level > 0 and stored.get(n) != h), None)
        tree.size, tree.edge = appended.size, appended.edge
        if root is not None and root != appended.root:
            return _altered(tree.checked_head, stop, stale)
        if root is not None:
            tree.checked_head = stop
        if stale is not None:
            return LogBreak(
                stale.begin,
                f"the stored hash over transparency leaves {stale.begin}..{stale.end - 1} was altered: it does not "
                "match them, so proofs through it would not verify",
            )
    return None


def _altered(good: int, stop: int, stale: Node | None) -> LogBreak:
    """The leaves after the last head that checked out (at size ``good``) no longer make the root recorded at
    ``stop``; the first stale subtree (one that no longer matches its leaves) narrows down which."""
    low, high = good, stop
    if stale is not None:
        low, high = max(low, stale.begin), min(high, stale.end)
    which = f"transparency leaf {low}" if high - low == 1 else f"one of transparency leaves {low}..{high - 1}"
    return LogBreak(low, f"{which} was altered: the tree no longer has the root recorded at size {stop}")


async def _stored_nodes(session: AsyncSession, begin: int, end: int) -> dict[Node, bytes]:
    """The stored subtrees whose last leaf is one of begin..end-1: those that rebuilding these leaves completes."""
    node = TransparencyNode
    levels = [
        and_(col(node.level) == level, col(node.position).between(begin >> level, (end >> level) - 1))
        for level in range(1, end.bit_length())
        if begin >> level <= (end >> level) - 1
    ]
    if not levels:
        return {}
    rows = await session.execute(select(col(node.level), col(node.position), col(node.hash)).where(or_(*levels)))
    return {Node(int(level), int(position)): bytes(h) for level, position, h in rows}


async def count_leaves(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(TransparencyLeaf))).scalar_one())
