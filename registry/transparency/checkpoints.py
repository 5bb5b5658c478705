"""Checkpoints: the log's signed tree head as a C2SP signed note (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

The note text is three lines — origin, tree size, base64 root hash — and carries two signatures by the registry's
Ed25519 token key, both under the origin as key name (the key hash in each picks the key out):

- the checkpoint signature (type 0x01) over the note text, what any checkpoint tool checks;
- a timestamped signature (c2sp.org/tlog-cosignature, type 0x04) over ``cosignature/v1``, ``time <t>`` and the note
  text: the registry's statement that at POSIX time t this was its largest tree. Its bare Ed25519 signature is the
  ``signature`` of the JSON form, which therefore covers every field the JSON gives.

The JWKS publishes that key for good, under the kid the JSON form names: ``key_use: access_token`` while it is current
and the tokens it signed may live, ``checkpoint`` after (it is retired then, and verifies no token).

Pure functions: signing takes the private key, verifying the public key; nothing here reads the database.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from registry.transparency.merkle import HASH_SIZE

CHECKPOINT_SIGNATURE = 0x01  # Ed25519 over the note text
TIMESTAMPED_SIGNATURE = 0x04  # Ed25519 over "cosignature/v1\ntime <t>\n" + note text
SIGNATURE_PREFIX = "\u2014 "  # em dash, space


def origin_of(public_base_url: str) -> str:
    """The log's name: the node's public URL without its scheme, plus ``/transparency`` (a schema-less URL)."""
    parts = urlsplit(public_base_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}/transparency"


def note_text(origin: str, tree_size: int, root_hash: bytes) -> str:
    return f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode('ascii')}\n"


def timestamped_message(text: str, timestamp: int) -> bytes:
    """What the timestamped signature (and the JSON ``signature``) signs."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def key_id(name: str, signature_type: int, public_key: Ed25519PublicKey) -> bytes:
    """SHA-256(key name || 0x0A || signature type || 32-byte public key)[:4], as the note spec recommends."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + raw).digest()[:4]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    timestamp: int
    signature: bytes  # Ed25519 over timestamped_message(note text, timestamp)
    note: str


def signature_line(name: str, blob: bytes) -> str:
    return f"{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode('ascii')}\n"


def sign(*, origin: str, tree_size: int, root_hash: bytes, timestamp: int, key: Ed25519PrivateKey) -> Checkpoint:
    text = note_text(origin, tree_size, root_hash)
    public_key = key.public_key()
    stamped = key.sign(timestamped_message(text, timestamp))
    signatures = signature_line(origin, key_id(origin, CHECKPOINT_SIGNATURE, public_key) + key.sign(text.encode()))
    signatures += signature_line(
        origin, key_id(origin, TIMESTAMPED_SIGNATURE, public_key) + timestamp.to_bytes(8, "big") + stamped
    )
    return Checkpoint(origin, tree_size, root_hash, timestamp, stamped, f"{text}\n{signatures}")


def open_note(note: str, *, name: str, key: Ed25519PublicKey) -> tuple[str, int | None, bytes]:
    """The text of a signed note whose Ed25519 signature (type 0x01) by ``key`` under ``name`` verifies, with the
    time and bare signature of its timestamped signature by the same key, if it has one. Signatures by other keys
    are ignored, as the note spec requires; one by this key that does not verify rejects the note (ValueError)."""
    text, separator, block = note.rpartition("\n\n")
    if not separator or not block.endswith("\n"):
        raise ValueError("not a signed note: no blank line before the signatures")
    text += "\n"
    signed, timestamp, stamped = False, None, b""
    for line in block.splitlines():
        line_name, _, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        if not line.startswith(SIGNATURE_PREFIX) or line_name != name:
            continue
        blob = base64.b64decode(encoded, validate=True)
        try:
            if blob[:4] == key_id(name, CHECKPOINT_SIGNATURE, key):
                key.verify(blob[4:], text.encode())
                signed = True
            elif blob[:4] == key_id(name, TIMESTAMPED_SIGNATURE, key):
                timestamp, stamped = int.from_bytes(blob[4:12], "big"), blob[12:]
                key.verify(stamped, timestamped_message(text, timestamp))
        except InvalidSignature:
            raise ValueError(f"a signature by the {name} key does not verify") from None
    if not signed:
        raise ValueError(f"no signature by the {name} key")
    return text, timestamp, stamped


def verify(note: str, *, origin: str, key: Ed25519PublicKey) -> Checkpoint:
    """The checkpoint a signed note states, once its signatures by ``key`` under ``origin`` verify; ValueError
    saying why otherwise."""
    text, timestamp, stamped = open_note(note, name=origin, key=key)
    lines = text.splitlines()
    if len(lines) < 3 or lines[0] != origin:
        raise ValueError(f"not a checkpoint of {origin}")
    if not lines[1].isdigit() or (lines[1].startswith("0") and lines[1] != "0"):
        raise ValueError("the tree size is not a decimal number")
    root_hash = base64.b64decode(lines[2], validate=True)
    if len(root_hash) != HASH_SIZE:
        raise ValueError("the root hash is not a SHA-256 hash")
    return Checkpoint(origin, int(lines[1]), root_hash, timestamp or 0, stamped, note)
