"""The transparency log's tables, all append-only (triggers refuse UPDATE and DELETE): the leaves, the hash of every
complete subtree (so a proof for any tree size is a few look-ups, not a walk over every leaf), and the tree head
after each appending transaction (so a checkpoint is one row, and ``registry audit verify`` has roots to check)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, LargeBinary, SmallInteger
from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime


class LeafKind(StrEnum):
    issuance = "issuance"
    correction = "correction"  # the issuance of a corrected successor
    status_change = "status_change"


BIRTH_KINDS = frozenset({LeafKind.issuance, LeafKind.correction})  # the leaf that brought a number into being


class TransparencyLeaf(SQLModel, table=True):
    __tablename__ = "transparency_leaves"

    # The leaf's position in the tree: 0, 1, 2… with no gap, drawn under the log's lock.
    leaf_index: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    kind: str = Field(max_length=16)
    number: str = Field(max_length=16, index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    data: bytes = Field(sa_type=LargeBinary)  # the canonical JSON that was hashed: d in HASH(0x00 || d)
    leaf_hash: bytes = Field(sa_type=LargeBinary)


class TransparencyNode(SQLModel, table=True):
    """A complete subtree of ``2**level`` leaves (level ≥ 1; the leaves' own hashes are on their rows). Once
    complete, a subtree never changes: the log only ever adds nodes."""

    __tablename__ = "transparency_nodes"

    level: int = Field(primary_key=True, sa_type=SmallInteger, sa_column_kwargs={"autoincrement": False})
    position: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    hash: bytes = Field(sa_type=LargeBinary)


class TransparencyHead(SQLModel, table=True):
    """The tree's size and root after one appending transaction."""

    __tablename__ = "transparency_heads"

    tree_size: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    root_hash: bytes = Field(sa_type=LargeBinary)
    at: datetime = Field(sa_type=UTCDateTime)
