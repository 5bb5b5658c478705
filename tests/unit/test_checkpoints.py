"""Checkpoints as C2SP signed notes: the note format against Go's reference implementation (golang.org/x/mod
sumdb/note, whose test vectors are below), and a checkpoint's signatures against tampering."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.transparency import checkpoints, merkle

# golang.org/x/mod/sumdb/note, note_test.go (TestSign, TestOpen): a signer key, two verifier keys, a text and the
# signature lines Go makes for it.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

ORIGIN = "registry.test/transparency"
ROOT = merkle.root([merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b"), merkle.leaf_hash(b"c")])


def _verifier(vkey: str) -> tuple[str, str, Ed25519PublicKey]:
    name, key_hash, encoded = vkey.split("+", 2)
    raw = base64.b64decode(encoded)
    assert raw[0] == checkpoints.CHECKPOINT_SIGNATURE
    return name, key_hash, Ed25519PublicKey.from_public_bytes(raw[1:])


def test_note_signatures_are_byte_for_byte_gos() -> None:
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])[1:]
    key = Ed25519PrivateKey.from_private_bytes(seed)
    name, key_hash, _ = _verifier(PETER_VKEY)

    key_id = checkpoints.key_id(name, checkpoints.CHECKPOINT_SIGNATURE, key.public_key())
    line = checkpoints.signature_line(name, key_id + key.sign(TEXT.encode()))

    assert key_id.hex() == key_hash
    assert line == PETER_SIG


@pytest.mark.parametrize("vkey", [PETER_VKEY, ENOCH_VKEY])
def test_a_note_signed_by_go_opens_with_either_key_ignoring_the_other(vkey: str) -> None:
    name, key_hash, key = _verifier(vkey)

    text, timestamp, _ = checkpoints.open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, name=name, key=key)

    assert checkpoints.key_id(name, checkpoints.CHECKPOINT_SIGNATURE, key).hex() == key_hash
    assert text == TEXT
    assert timestamp is None


def test_a_note_whose_text_changed_does_not_open() -> None:
    name, _, key = _verifier(PETER_VKEY)

    with pytest.raises(ValueError, match="does not verify"):
        checkpoints.open_note(TEXT.replace("answer", "Answer") + "\n" + PETER_SIG, name=name, key=key)
    with pytest.raises(ValueError, match="no signature by the EnochRoot key"):
        checkpoints.open_note(TEXT + "\n" + PETER_SIG, name="EnochRoot", key=_verifier(ENOCH_VKEY)[2])


def _signed(key: Ed25519PrivateKey) -> checkpoints.Checkpoint:
    return checkpoints.sign(origin=ORIGIN, tree_size=3, root_hash=ROOT, timestamp=1796198400, key=key)


def test_a_checkpoint_is_a_c2sp_note_with_a_signed_time() -> None:
    key = Ed25519PrivateKey.generate()
    signed = _signed(key)

    opened = checkpoints.verify(signed.note, origin=ORIGIN, key=key.public_key())

    lines = signed.note.splitlines()
    assert lines[:4] == [ORIGIN, "3", base64.b64encode(ROOT).decode(), ""]
    assert [line.split(" ")[1] for line in lines[4:]] == [ORIGIN, ORIGIN]
    assert (opened.tree_size, opened.root_hash, opened.timestamp) == (3, ROOT, 1796198400)
    message = f"cosignature/v1\ntime 1796198400\n{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}\n".encode()
    key.public_key().verify(signed.signature, message)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda note: note.replace(f"{ORIGIN}\n3\n", f"{ORIGIN}\n4\n", 1), "does not verify"),
        (lambda note: note.replace(base64.b64encode(ROOT).decode(), base64.b64encode(ROOT[::-1]).decode()), "verify"),
        (lambda note: note.replace(ORIGIN, "elsewhere.example/log"), "no signature by"),
        (lambda note: note.split("\n\n")[0] + "\n", "no blank line"),
    ],
)
def test_a_tampered_checkpoint_is_refused(change: Callable[[str], str], reason: str) -> None:
    key = Ed25519PrivateKey.generate()
    note = _signed(key).note

    with pytest.raises(ValueError, match=reason):
        checkpoints.verify(change(note), origin=ORIGIN, key=key.public_key())


def test_a_forged_time_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    note = _signed(key).note
    text, _, block = note.rpartition("\n\n")
    stamped_line = block.splitlines()[1]
    blob = bytearray(base64.b64decode(stamped_line.rsplit(" ", 1)[1]))
    blob[11] ^= 1  # one second later
    forged = f"{text}\n\n{block.splitlines()[0]}\n{checkpoints.signature_line(ORIGIN, bytes(blob))}"

    with pytest.raises(ValueError, match="does not verify"):
        checkpoints.verify(forged, origin=ORIGIN, key=key.public_key())


def test_a_checkpoint_by_another_key_is_refused() -> None:
    note = _signed(Ed25519PrivateKey.generate()).note

    with pytest.raises(ValueError, match="no signature by"):
        checkpoints.verify(note, origin=ORIGIN, key=Ed25519PrivateKey.generate().public_key())


def test_the_origin_is_the_public_url_without_its_scheme() -> None:
    assert checkpoints.origin_of("https://registry.test") == ORIGIN
    assert checkpoints.origin_of("https://hr.beijing.example/registry/") == "hr.beijing.example/registry/transparency"
