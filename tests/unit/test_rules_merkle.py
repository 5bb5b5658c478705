"""The Merkle tree math at its edges: the empty tree, empty ranges and a frontier that does not fit its tree (the
published RFC 6962 vectors are exercised in test_merkle.py)."""

from __future__ import annotations

import pytest

from registry.transparency import merkle


def test_appending_nothing_to_the_empty_tree_leaves_the_empty_root() -> None:
    appended = merkle.append(0, [], [])
    assert appended == merkle.Appended(nodes=[], size=0, edge=[], root=merkle.EMPTY_ROOT)


def test_appending_nothing_to_a_tree_keeps_its_root() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(5)]
    grown = merkle.append(0, [], leaves)
    assert merkle.append(5, grown.edge, []).root == grown.root == merkle.root(leaves)


@pytest.mark.parametrize(("begin", "end"), [(3, 3), (0, 0), (-1, 2), (4, 2)])
def test_a_range_with_no_leaves_is_refused(begin: int, end: int) -> None:
    with pytest.raises(ValueError, match=rf"^\[{begin}, {end}\) is not a non-empty range$"):
        merkle.range_nodes(begin, end)


def test_a_frontier_of_the_wrong_length_is_refused_with_both_counts() -> None:
    one_hash = [merkle.leaf_hash(b"")]
    with pytest.raises(ValueError, match=r"^a tree of 3 leaves has 2 frontier nodes, not 1$"):
        merkle.append(3, one_hash, [])


@pytest.mark.parametrize("size", [0, 1])
def test_a_tree_of_fewer_than_two_leaves_does_not_split(size: int) -> None:
    with pytest.raises(ValueError, match=rf"^a tree of {size} leaves does not split$"):
        merkle.split_point(size)
