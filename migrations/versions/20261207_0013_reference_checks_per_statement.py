"""References on the issuance path checked once per statement on PostgreSQL, and the rows they point at made
permanent.

A foreign key checks each inserted row on its own (one SPI query and one row lock per row and key): for a batch of
10,000 certificates, 30,000 look-ups — measured at about a third of the database's work on that path
(``benchmarks/README.md``, "Reference checks per statement"). Here the three references written per certificate —
``certificates.holder_id`` → ``holders``, ``certificates.issuer_id`` → ``issuers``, ``certificate_events.certificate_id``
→ ``certificates`` — are checked by an AFTER INSERT trigger FOR EACH STATEMENT over the statement's new rows (one
anti-join), and raise the same error a foreign key would (SQLSTATE 23503, the constraint's name).

What the foreign key also guaranteed, that a referenced row cannot go away or change its key, now holds for every row
of ``holders``, ``issuers`` and ``certificates``: none is ever deleted or truncated and no id changes (nothing in the
registry does either; a certificate is corrected by a new one), and a certificate's holder and body, and an event's
certificate, never change. With nothing ever removed, the check needs no row lock: a row it sees stays. SQLite keeps
its declarative foreign keys.

Unlike a foreign key, these are user triggers: ``ALTER TABLE … DISABLE TRIGGER USER`` (or ``ALL``) turns them off, and a
data-only dump must be restored with ``--disable-triggers`` or table by table in dependency order. The transition table
holds a statement's new rows (a batch's certificates spill past the default ``work_mem`` into a temporary file); the
anti-join probes the referred table's primary key once per row.

Revision ID: 20261207_0013
Revises: 20261206_0012
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261207_0013"
down_revision: str | None = "20261206_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (constraint, table, column, referred table): the trigger that replaces a foreign key carries its name.
REFERENCES = (
    ("fk_certificates_holder_id_holders", "certificates", "holder_id", "holders"),
    ("fk_certificates_issuer_id_issuers", "certificates", "issuer_id", "issuers"),
    ("fk_certificate_events_certificate_id_certificates", "certificate_events", "certificate_id", "certificates"),
)
PERMANENT = ("holders", "issuers", "certificates")  # rows referred to: never deleted, ids never changed
FIXED = {"certificates": ("holder_id", "issuer_id"), "certificate_events": ("certificate_id",)}

_CHECK_FUNCTION = """
CREATE FUNCTION rows_refer_to_existing() RETURNS trigger LANGUAGE plpgsql AS $$
-- TG_ARGV: constraint name, referring column, referred table (its key is "id").
DECLARE
    missing text;
BEGIN
    EXECUTE format(
        'SELECT n.%1$I::text FROM inserted n WHERE n.%1$I IS NOT NULL '
        'AND NOT EXISTS (SELECT FROM %2$I.%3$I p WHERE p.id = n.%1$I) LIMIT 1',
        TG_ARGV[1], TG_TABLE_SCHEMA, TG_ARGV[2]
    ) INTO missing;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_ARGV[0]
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[0], TABLE = TG_TABLE_NAME,
                  SCHEMA = TG_TABLE_SCHEMA,
                  DETAIL = format('Key (%s)=(%s) is not present in table "%s".', TG_ARGV[1], missing, TG_ARGV[2]);
    END IF;
    RETURN NULL;
END;
$$
"""

_REFUSE_FUNCTION = """
CREATE FUNCTION refuse_changing_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME,
        SCHEMA = TG_TABLE_SCHEMA;
END;
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return  # SQLite keeps its foreign keys
    op.execute(_CHECK_FUNCTION)
    op.execute(_REFUSE_FUNCTION)
    for constraint, table, column, referred in REFERENCES:
        op.drop_constraint(constraint, table, type_="foreignkey")
        op.execute(
            f'CREATE TRIGGER "{constraint}" AFTER INSERT ON {table} REFERENCING NEW TABLE AS inserted '
            f"FOR EACH STATEMENT EXECUTE FUNCTION rows_refer_to_existing('{constraint}', '{column}', '{referred}')"
        )
    for table in PERMANENT:
        message = f"{table} rows are never deleted and keep their ids: other rows refer to them"
        refuse = f"EXECUTE FUNCTION refuse_changing_references('{message}')"
        op.execute(f"CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table} FOR EACH ROW {refuse}")
        op.execute(f"CREATE TRIGGER {table}_never_truncated BEFORE TRUNCATE ON {table} FOR EACH STATEMENT {refuse}")
        op.execute(
            f"CREATE TRIGGER {table}_id_fixed BEFORE UPDATE OF id ON {table} FOR EACH ROW "
            f"WHEN (OLD.id IS DISTINCT FROM NEW.id) {refuse}"
        )
    for table, columns in FIXED.items():
        changed = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in columns)
        message = f"{table}.{' and '.join(columns)} never change"
        op.execute(
            f"CREATE TRIGGER {table}_references_fixed BEFORE UPDATE OF {', '.join(columns)} ON {table} "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION refuse_changing_references('{message}')"
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in FIXED:
        op.execute(f"DROP TRIGGER {table}_references_fixed ON {table}")
    for table in PERMANENT:
        for guard in ("never_deleted", "never_truncated", "id_fixed"):
            op.execute(f"DROP TRIGGER {table}_{guard} ON {table}")
    for constraint, table, column, referred in REFERENCES:
        op.execute(f'DROP TRIGGER "{constraint}" ON {table}')
        op.create_foreign_key(constraint, table, referred, [column], ["id"])
    op.execute("DROP FUNCTION refuse_changing_references()")
    op.execute("DROP FUNCTION rows_refer_to_existing()")
