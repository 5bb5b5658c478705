"""Transparency log: an append-only RFC 6962 Merkle tree of issuances, corrections and status changes — its leaves,
the hash of every complete subtree, and the tree head after each append. Certificates already issued are logged
once, in the order their events happened.

Revision ID: 20261203_0009
Revises: 20261203_0008
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "20261203_0009"
down_revision: str | None = "20261203_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("transparency_leaves", "transparency_nodes", "transparency_heads")


def _create_tables() -> tuple[sa.Table, sa.Table, sa.Table]:
    leaves = op.create_table(
        "transparency_leaves",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", name=op.f("pk_transparency_leaves")),
    )
    with op.batch_alter_table("transparency_leaves", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transparency_leaves_number"), ["number"], unique=False)
    nodes = op.create_table(
        "transparency_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "position", name=op.f("pk_transparency_nodes")),
    )
    heads = op.create_table(
        "transparency_heads",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_transparency_heads")),
    )
    return leaves, nodes, heads


def upgrade() -> None:
    leaves, nodes, heads = _create_tables()
    _log_existing_certificates(leaves, nodes, heads)
    _make_append_only()


# The log is append-only in the database itself: the service's role cannot rewrite history, only add to it.
def _make_append_only() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION transparency_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
            END;
            $$
            """
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION transparency_log_is_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION transparency_log_is_append_only()"
            )
        return
    for table in TABLES:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


_STATUS_AFTER = {"suspended": "suspended", "reinstated": "active", "revoked": "revoked", "superseded": "superseded"}


def _log_existing_certificates(leaves: sa.Table, nodes: sa.Table, heads: sa.Table) -> None:
    """Every event of the certificates issued before the log existed, in the order they were recorded (event ids:
    issuance times are whole seconds), as the service would have logged them."""
    from registry.transparency import merkle
    from registry.transparency.models import LeafKind
    from registry.transparency.service import Entry

    rows = op.get_bind().execute(
        sa.text(
            "SELECT e.event, e.reason_code, e.at, c.number, c.issued_at, c.supersedes, c.signature, i.code "
            "FROM certificate_events e JOIN certificates c ON c.id = e.certificate_id "
            "JOIN issuers i ON i.id = c.issuer_id ORDER BY e.id"
        )
    )
    entries = []
    for event, reason_code, at, number, issued_at, supersedes, signature, issuer in rows:
        issued = event == "issued"
        entries.append(
            Entry(
                kind=(LeafKind.correction if supersedes else LeafKind.issuance) if issued else LeafKind.status_change,
                number=number,
                at=_utc(issued_at if issued else at),
                event=event,
                status="active" if issued else _STATUS_AFTER.get(event, event),
                issuer=issuer,
                signature=signature,
                supersedes=supersedes if issued else None,
                reason_code=reason_code if event == "revoked" else None,
            )
        )
    if not entries:
        return
    data = [entry.data() for entry in entries]
    hashes = [merkle.leaf_hash(d) for d in data]
    appended = merkle.append(0, [], hashes)
    op.bulk_insert(
        leaves,
        [
            {"leaf_index": i, "kind": e.kind.value, "number": e.number, "at": e.at, "data": d, "leaf_hash": h}
            for i, (e, d, h) in enumerate(zip(entries, data, hashes, strict=True))
        ],
    )
    op.bulk_insert(nodes, [{"level": n.level, "position": n.position, "hash": h} for n, h in appended.nodes if n.level])
    op.bulk_insert(heads, [{"tree_size": appended.size, "root_hash": appended.root, "at": datetime.now(UTC)}])


def _utc(value: datetime | str) -> datetime:
    """SQLite hands timestamps back as text and naive; they were stored in UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION transparency_log_is_append_only()")
    else:
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
    op.drop_table("transparency_heads")
    op.drop_table("transparency_nodes")
    with op.batch_alter_table("transparency_leaves", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transparency_leaves_number"))
    op.drop_table("transparency_leaves")
