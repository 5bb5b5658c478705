"""The transparency log's tree math against the published RFC 6962 vectors (transparency-dev/merkle, vendored in
tests/vectors/rfc6962), against the RFC's own recursive definitions, and against single-bit tampering."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from registry.transparency import merkle
from registry.transparency.merkle import Node

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc6962"
TREE = json.loads((VECTORS / "tree.json").read_text(encoding="utf-8"))
MAX_SIZE = 64


def _probes(kind: str) -> list[dict[str, Any]]:
    probes: list[dict[str, Any]] = json.loads((VECTORS / f"{kind}.json").read_text(encoding="utf-8"))["probes"]
    return probes


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(values: Sequence[str] | None) -> list[bytes]:
    return [_b64(value) for value in values or []]


def _leaves(size: int) -> list[bytes]:
    """The leaf hashes of a tree whose leaf i holds the one byte i (the data of the subtree vectors' tree)."""
    return [merkle.leaf_hash(bytes([i])) for i in range(size)]


REFERENCE_LEAVES = [merkle.leaf_hash(bytes.fromhex(data)) for data in TREE["leaf_inputs"]]


# --- the RFC's definitions, written as the RFC writes them: the reference for what the module generates ------------


def _mth(d: Sequence[bytes]) -> bytes:
    if len(d) == 1:
        return d[0]
    k = merkle.split_point(len(d))
    return merkle.node_hash(_mth(d[:k]), _mth(d[k:]))


def _path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = merkle.split_point(len(d))
    return [*_path(m, d[:k]), _mth(d[k:])] if m < k else [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [_mth(d)]
    k = merkle.split_point(len(d))
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


# --- published vectors ------------------------------------------------------------------------------------------------


def test_hashes_match_the_rfc6962_hasher_vectors() -> None:
    hasher = TREE["hasher"]
    assert merkle.EMPTY_ROOT.hex() == hasher["empty_root"]
    assert merkle.leaf_hash(b"").hex() == hasher["empty_leaf"]
    assert merkle.leaf_hash(hasher["leaf"]["input"].encode()).hex() == hasher["leaf"]["hash"]
    node = hasher["node"]
    assert merkle.node_hash(node["left"].encode(), node["right"].encode()).hex() == node["hash"]


def test_roots_of_the_reference_tree_at_every_size() -> None:
    for size, expected in enumerate(TREE["root_hashes"]):
        assert merkle.root(REFERENCE_LEAVES[:size]).hex() == expected, size


def test_appending_one_leaf_at_a_time_makes_every_node_of_the_reference_tree() -> None:
    size, edge, made = 0, list[bytes](), dict[Node, bytes]()
    for leaf in REFERENCE_LEAVES:
        appended = merkle.append(size, edge, [leaf])
        made.update(appended.nodes)
        size, edge = appended.size, appended.edge
        assert edge == [made[node] for node in merkle.frontier(size)]
        assert appended.root.hex() == TREE["root_hashes"][size]
    for level, hashes in enumerate(TREE["node_hashes"]):
        for position, expected in enumerate(hashes):
            assert made[Node(level, position)].hex() == expected, (level, position)


def _named(probes: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(probe, id=probe["file"].removeprefix("testdata/")) for probe in probes]


@pytest.mark.parametrize("probe", _named(_probes("inclusion")))
def test_inclusion_probe(probe: dict[str, Any]) -> None:
    verified = merkle.verify_inclusion(
        probe["leafIdx"], probe["treeSize"], _b64(probe["leafHash"]), _proof(probe["proof"]), _b64(probe["root"])
    )
    assert verified is not probe["wantErr"], probe["desc"]


@pytest.mark.parametrize("probe", _named(_probes("consistency")))
def test_consistency_probe(probe: dict[str, Any]) -> None:
    verified = merkle.verify_consistency(
        probe["size1"], probe["size2"], _b64(probe["root1"]), _b64(probe["root2"]), _proof(probe["proof"])
    )
    assert verified is not probe["wantErr"], probe["desc"]


def test_generated_proofs_equal_the_published_happy_paths() -> None:
    """Every happy-path probe is about the reference tree: the module makes exactly those proofs."""
    checked = 0
    for probe in _probes("inclusion"):
        if probe["desc"] == "happy path" and probe["treeSize"] <= len(REFERENCE_LEAVES):
            leaves = REFERENCE_LEAVES[: probe["treeSize"]]
            assert merkle.inclusion_proof(probe["leafIdx"], leaves) == _proof(probe["proof"]), probe["file"]
            checked += 1
    for probe in _probes("consistency"):
        if probe["desc"] == "happy path":
            leaves = REFERENCE_LEAVES[: probe["size2"]]
            assert merkle.consistency_proof(probe["size1"], leaves) == _proof(probe["proof"]), probe["file"]
            checked += 1
    assert checked == 10


# --- every size up to 64 --------------------------------------------------------------------------------------------


def test_every_inclusion_proof_up_to_64_leaves_is_the_rfcs_and_verifies() -> None:
    leaves = _leaves(MAX_SIZE)
    for size in range(1, MAX_SIZE + 1):
        root = merkle.root(leaves[:size])
        assert root == _mth(leaves[:size])
        for index in range(size):
            proof = merkle.inclusion_proof(index, leaves[:size])
            assert proof == _path(index, leaves[:size]), (index, size)
            assert merkle.verify_inclusion(index, size, leaves[index], proof, root), (index, size)


def test_every_consistency_proof_up_to_64_leaves_is_the_rfcs_and_verifies() -> None:
    leaves = _leaves(MAX_SIZE)
    roots = [merkle.root(leaves[:size]) for size in range(MAX_SIZE + 1)]
    for new in range(1, MAX_SIZE + 1):
        for old in range(1, new + 1):
            proof = merkle.consistency_proof(old, leaves[:new])
            assert proof == _subproof(old, leaves[:new], True), (old, new)
            assert merkle.verify_consistency(old, new, roots[old], roots[new], proof), (old, new)


def test_proofs_from_stored_nodes_equal_proofs_from_the_leaves() -> None:
    """The service keeps every complete node and folds ranges from them: same proofs, for any past size."""
    leaves = _leaves(MAX_SIZE)
    rng = random.Random(6962)
    size, edge, stored = 0, list[bytes](), dict[Node, bytes]()
    while size < MAX_SIZE:
        batch = leaves[size : size + rng.randint(1, 9)]
        appended = merkle.append(size, edge, batch)
        stored.update(appended.nodes)
        size, edge = appended.size, appended.edge
        assert edge == [stored[node] for node in merkle.frontier(size)]
        assert appended.root == merkle.root(leaves[:size])
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            from_nodes = [merkle.range_root(b, e, stored) for b, e in merkle.inclusion_ranges(index, size)]
            assert from_nodes == merkle.inclusion_proof(index, leaves[:size])
        for old in range(1, size + 1):
            from_nodes = [merkle.range_root(b, e, stored) for b, e in merkle.consistency_ranges(old, size)]
            assert from_nodes == merkle.consistency_proof(old, leaves[:size])


def test_ranges_outside_the_tree_are_refused() -> None:
    for index, size in ((0, 0), (5, 5), (-1, 3)):
        with pytest.raises(ValueError, match="not in a tree"):
            merkle.inclusion_ranges(index, size)
    for old, new in ((0, 4), (5, 4)):
        with pytest.raises(ValueError, match="no consistency proof"):
            merkle.consistency_ranges(old, new)
    with pytest.raises(ValueError, match="not a subtree"):
        merkle.range_nodes(1, 3)


# --- single-bit tampering -------------------------------------------------------------------------------------------

BITS = (0, 1, 7, 100, 255)


def _flipped(value: bytes, bit: int) -> bytes:
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


def test_flipping_any_bit_of_leaf_path_or_root_breaks_inclusion() -> None:
    leaves = _leaves(32)
    for size in range(1, 33):
        root = merkle.root(leaves[:size])
        for index in range(size):
            leaf, proof = leaves[index], merkle.inclusion_proof(index, leaves[:size])
            for bit in BITS:
                assert not merkle.verify_inclusion(index, size, _flipped(leaf, bit), proof, root)
                assert not merkle.verify_inclusion(index, size, leaf, proof, _flipped(root, bit))
                for i in range(len(proof)):
                    tampered = [*proof[:i], _flipped(proof[i], bit), *proof[i + 1 :]]
                    assert not merkle.verify_inclusion(index, size, leaf, tampered, root)
            for other_index in {index - 1, index + 1} - {-1, size}:
                assert not merkle.verify_inclusion(other_index, size, leaf, proof, root)


def test_flipping_any_bit_of_either_root_or_the_proof_breaks_consistency() -> None:
    leaves = _leaves(32)
    roots = [merkle.root(leaves[:size]) for size in range(33)]
    for new in range(2, 33):
        for old in range(1, new):
            proof = merkle.consistency_proof(old, leaves[:new])
            for bit in BITS:
                assert not merkle.verify_consistency(old, new, _flipped(roots[old], bit), roots[new], proof)
                assert not merkle.verify_consistency(old, new, roots[old], _flipped(roots[new], bit), proof)
                for i in range(len(proof)):
                    tampered = [*proof[:i], _flipped(proof[i], bit), *proof[i + 1 :]]
                    assert not merkle.verify_consistency(old, new, roots[old], roots[new], tampered)
            assert not merkle.verify_consistency(old, new, roots[old], roots[new], proof[:-1])
