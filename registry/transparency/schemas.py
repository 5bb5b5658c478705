"""What the transparency endpoints answer. Hashes and signatures are standard base64 (RFC 4648 §4), as in notes."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from registry.transparency.checkpoints import Checkpoint
from registry.transparency.service import InclusionProof


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


class CheckpointPublic(BaseModel):
    origin: str = Field(description="The log's name: the first line of the note and the signatures' key name.")
    tree_size: int
    root_hash: str = Field(description="RFC 6962 root of the first tree_size leaves, base64.")
    timestamp: int = Field(description="POSIX time at which the registry signed this as its largest tree.")
    kid: str = Field(description="The key in /.well-known/jwks.json that signed (the registry's own key).")
    signature: str = Field(
        description="Ed25519 signature, base64, over 'cosignature/v1\\ntime <timestamp>\\n<origin>\\n<tree_size>\\n"
        "<root_hash>\\n': it covers every field above."
    )
    note: str = Field(description="The same head as a C2SP signed note (c2sp.org/tlog-checkpoint).")

    @classmethod
    def of(cls, checkpoint: Checkpoint, *, kid: str) -> CheckpointPublic:
        return cls(
            origin=checkpoint.origin,
            tree_size=checkpoint.tree_size,
            root_hash=b64(checkpoint.root_hash),
            timestamp=checkpoint.timestamp,
            kid=kid,
            signature=b64(checkpoint.signature),
            note=checkpoint.note,
        )


class InclusionProofPublic(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || leaf_data), base64.")
    leaf_data: str = Field(description="The leaf's canonical JSON, base64: what the log says happened.")
    audit_path: list[str] = Field(description="RFC 9162 §2.1.3 inclusion path, leaf to root, base64.")

    @classmethod
    def of(cls, proof: InclusionProof) -> InclusionProofPublic:
        return cls(
            leaf_index=proof.leaf_index,
            tree_size=proof.tree_size,
            leaf_hash=b64(proof.leaf_hash),
            leaf_data=b64(proof.leaf_data),
            audit_path=[b64(h) for h in proof.audit_path],
        )


class ConsistencyProofPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: int = Field(alias="from")
    to: int
    proof: list[str] = Field(description="RFC 9162 §2.1.4 consistency proof, base64.")

    @classmethod
    def of(cls, *, old_size: int, new_size: int, proof: Sequence[bytes]) -> ConsistencyProofPublic:
        return cls(from_=old_size, to=new_size, proof=[b64(h) for h in proof])
