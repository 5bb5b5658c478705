"""A verification visit's reference to its certificate checked once per statement on PostgreSQL, as the issuance
path's are (migration 0013), instead of by a foreign key per row.

Every answered scan becomes a row of ``verification_visits`` (the holder's "who looked"), written a second's worth at a
time by each worker (``registry.verification.visits``). A foreign key checks each row on its own, taking a row lock
on the certificate it names (``SELECT … FOR KEY SHARE``): a change to that certificate's heap page — after each
checkpoint, a full-page image in the WAL — for every scan. Measured at 1,000,000 certificates (benchmarks/README.md,
"Who looked: the reference checked per statement"): **4,047 bytes of WAL per visit with the foreign key, 223 with
this trigger**, and 3–5 % more scans a second. Migration 0013's trigger checks all the rows of a statement in one
anti-join, without locks: certificates are permanent (0013), so a certificate a visit names cannot go away, and a
visit's certificate never changes (``verification_visits_references_fixed``). SQLite keeps its foreign key.

Revision ID: 20261209_0015
Revises: 20261208_0014
Create Date: 2026-12-09 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261209_0015"
down_revision: str | None = "20261208_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "fk_verification_visits_certificate_id_certificates"
FIXED = "verification_visits_references_fixed"


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return  # SQLite keeps its foreign key
    op.drop_constraint(CONSTRAINT, "verification_visits", type_="foreignkey")
    op.execute(
        f'CREATE TRIGGER "{CONSTRAINT}" AFTER INSERT ON verification_visits REFERENCING NEW TABLE AS inserted '
        f"FOR EACH STATEMENT EXECUTE FUNCTION rows_refer_to_existing('{CONSTRAINT}', 'certificate_id', 'certificates')"
    )
    op.execute(
        f"CREATE TRIGGER {FIXED} BEFORE UPDATE OF certificate_id ON verification_visits FOR EACH ROW "
        "WHEN (OLD.certificate_id IS DISTINCT FROM NEW.certificate_id) "
        "EXECUTE FUNCTION refuse_changing_references('verification_visits.certificate_id never change')"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"DROP TRIGGER {FIXED} ON verification_visits")
    op.execute(f'DROP TRIGGER "{CONSTRAINT}" ON verification_visits')
    # Checks every visit recorded so far, under a lock that holds new visits back until the migration commits.
    op.create_foreign_key(CONSTRAINT, "verification_visits", "certificates", ["certificate_id"], ["id"])
