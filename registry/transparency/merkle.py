"""RFC 6962 / RFC 9162 §2.1 Merkle tree math, with no storage: hashing, subtree roots, inclusion and consistency
proofs (which subtrees make them, and the proofs themselves over an in-memory list of leaf hashes), their
verification, and appending leaves to a tree known only by its frontier.

A ``Node`` is a complete subtree: ``2**level`` leaves starting at leaf ``position * 2**level``. Every subtree the RFC's
recursion visits (a "range") splits into a few such nodes, left to right, of decreasing size; storage keeps the hash
of every node (``registry.transparency.service``), so any proof for any past tree size is a handful of look-ups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = HASH()


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = HASH(0x00 || d)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """HASH(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


class Node(NamedTuple):
    """The complete subtree of ``2**level`` leaves that starts at leaf ``position << level``. A tuple, not a
    dataclass: appending a batch of 10,000 leaves makes 20,000 of them."""

    level: int
    position: int

    @property
    def begin(self) -> int:
        return self.position << self.level

    @property
    def end(self) -> int:
        return (self.position + 1) << self.level


def split_point(size: int) -> int:
    """k, the largest power of two smaller than ``size`` (``size`` > 1): where the RFC splits D[n]."""
    if size < 2:
        raise ValueError(f"a tree of {size} leaves does not split")
    return 1 << ((size - 1).bit_length() - 1)


def range_nodes(begin: int, end: int) -> list[Node]:
    """The complete subtrees that make up D[begin:end], left to right; it must be a subtree the RFC's recursion
    visits (``begin`` aligned to the size of its left part), which every range of a proof is."""
    if not 0 <= begin < end:
        raise ValueError(f"[{begin}, {end}) is not a non-empty range")
    nodes: list[Node] = []
    while begin < end:
        size = end - begin
        part = size if size & (size - 1) == 0 else split_point(size)
        level = part.bit_length() - 1
        if begin % part:
            raise ValueError(f"[{begin}, {end}) is not a subtree of an RFC 6962 tree")
        nodes.append(Node(level, begin >> level))
        begin += part
    return nodes


def range_root(begin: int, end: int, hashes: Mapping[Node, bytes]) -> bytes:
    """MTH(D[begin:end]) from the hashes of ``range_nodes(begin, end)``: each node is the left child of the part
    of the range to its right, so they fold from the right."""
    nodes = range_nodes(begin, end)
    root = hashes[nodes[-1]]
    for node in reversed(nodes[:-1]):
        root = node_hash(hashes[node], root)
    return root


def frontier(size: int) -> list[Node]:
    """The complete subtrees of a tree of ``size`` leaves, left to right (the nodes its root is folded from)."""
    return range_nodes(0, size) if size else []


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees whose roots are PATH(index, D[size]) (RFC 9162 §2.1.3.1), in proof order: leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    ranges: list[tuple[int, int]] = []
    begin, end = 0, size
    while end - begin > 1:
        k = begin + split_point(end - begin)
        if index < k:
            ranges.append((k, end))
            end = k
        else:
            ranges.append((begin, k))
            begin = k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The subtrees whose roots are PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1), in proof order."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size} leaves")
    ranges: list[tuple[int, int]] = []
    begin, end, old, whole = 0, new_size, old_size, True
    while old != end - begin:
        k = split_point(end - begin)
        if old <= k:
            ranges.append((begin + k, end))
            end = begin + k
        else:
            ranges.append((begin, begin + k))
            begin, old, whole = begin + k, old - k, False
    if not whole:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        ranges.append((begin, end))
    ranges.reverse()
    return ranges


# --- over an in-memory list of leaf hashes (tests, and the integrity check's reference) -----------------------------


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the leaves with these hashes."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def _subtree_root(leaf_hashes: Sequence[bytes], begin: int, end: int) -> bytes:
    if end - begin == 1:
        return leaf_hashes[begin]
    k = begin + split_point(end - begin)
    return node_hash(_subtree_root(leaf_hashes, begin, k), _subtree_root(leaf_hashes, k, end))


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    return [_subtree_root(leaf_hashes, b, e) for b, e in inclusion_ranges(index, len(leaf_hashes))]


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    return [_subtree_root(leaf_hashes, b, e) for b, e in consistency_ranges(old_size, len(leaf_hashes))]


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------------------------------


def _is_hash(value: bytes) -> bool:
    return len(value) == HASH_SIZE


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The root that ``proof`` makes for the leaf hash ``leaf`` at ``index`` in a tree of ``size``, or None when the
    proof cannot be one for that position (wrong length, a value that is not a hash)."""
    if not 0 <= index < size or not _is_hash(leaf) or not all(_is_hash(p) for p in proof):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """Whether ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``root_hash``."""
    return root_from_inclusion_proof(index, size, leaf, proof) == root_hash


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree of ``new_size`` with ``new_root`` extends the one of ``old_size`` with
    ``old_root``. A proof from the empty tree means nothing and is refused, as in RFC 9162."""
    if not 0 < old_size <= new_size or not all(_is_hash(h) for h in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a complete subtree: the old root is the proof's first value
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# --- appending ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Appended:
    """What appending leaves to a tree made: every node it completed (leaves included), the new size, the hashes of
    the new ``frontier(size)`` and the new root."""

    nodes: list[tuple[Node, bytes]]
    size: int
    edge: list[bytes]
    root: bytes


def append(size: int, frontier_hashes: Sequence[bytes], leaf_hashes: Sequence[bytes]) -> Appended:
    """Add ``leaf_hashes`` to the tree of ``size`` leaves whose ``frontier(size)`` nodes have ``frontier_hashes``.
    Each new leaf completes the nodes above it while it is a right child: O(1) hashes per leaf on average."""
    nodes = frontier(size)
    if len(nodes) != len(frontier_hashes):
        raise ValueError(f"a tree of {size} leaves has {len(nodes)} frontier nodes, not {len(frontier_hashes)}")
    stack = list(zip(nodes, frontier_hashes, strict=True))  # right edge of the tree, smallest last
    made: list[tuple[Node, bytes]] = []
    for offset, leaf in enumerate(leaf_hashes):
        node, value = Node(0, size + offset), leaf
        made.append((node, value))
        while node.position & 1:
            _, left_value = stack.pop()
            node, value = Node(node.level + 1, node.position >> 1), node_hash(left_value, value)
            made.append((node, value))
        stack.append((node, value))
    edge = [value for _, value in stack]
    new_root = edge[-1] if edge else EMPTY_ROOT
    for value in reversed(edge[:-1]):
        new_root = node_hash(value, new_root)
    return Appended(nodes=made, size=size + len(leaf_hashes), edge=edge, root=new_root)
