"""Whether a claim code still claims its certificate: the one home of the rule, for the sign-in
(``registry.holder_access.sign_in``) and for every read of a claim-code session's token (``registry.auth.tokens``).

A certificate revoked as issued in error was never the holder's (the body typed a stranger's number), and neither was
any certificate of its correction chain: a correction never changes whose it is. So a claim code whose certificate
has, among its predecessors or successors, one revoked as issued in error claims nothing; one merely superseded, or
revoked for another reason (fraud), still does.

The chain is walked by one recursive query, as long as it is. The certificates table is named here, not imported:
``registry.certificates`` imports this package (principals, claim codes), so importing its model back would make the
cycle the import contracts forbid; tests/integration/test_holder_scope_chain.py holds these columns to the model.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, Integer, Select, String, Uuid, column, or_, select, table

CERTIFICATES = table(
    "certificates",
    column("id", Uuid()),
    column("number", String()),
    column("issuer_id", Integer()),
    column("holder_id", Integer()),
    column("claim_code_hash", String()),
    column("supersedes", String()),
    column("superseded_by", String()),
    column("status", String()),
    column("revocation_reason", String()),
)
REVOKED = "revoked"  # registry.certificates.models.Status.revoked
ISSUED_IN_ERROR = "issued_in_error"  # registry.certificates.schemas.RevocationReason.issued_in_error


def still_claimed(*picked: ColumnElement[bool]) -> Select[tuple[uuid.UUID, int]]:
    """Of the certificates the conditions ``picked`` (on ``CERTIFICATES``) select, the id and issuing body of those
    whose correction chain holds no certificate revoked as issued in error: the ones a claim code opens a session
    for, and keeps it open."""
    start = CERTIFICATES
    chain = (
        select(start.c.id.label("root"), start.c.id.label("member"), start.c.supersedes, start.c.superseded_by)
        .where(*picked)
        .cte("chain", recursive=True)
    )
    step = CERTIFICATES.alias("step")
    chain = chain.union(  # UNION, not UNION ALL: a row met again ends the walk
        select(chain.c.root, step.c.id, step.c.supersedes, step.c.superseded_by).join(
            step, or_(step.c.number == chain.c.superseded_by, step.c.number == chain.c.supersedes)
        )
    )
    member = CERTIFICATES.alias("member")
    in_error = (
        select(chain.c.root)
        .join(member, member.c.id == chain.c.member)
        .where(member.c.status == REVOKED, member.c.revocation_reason == ISSUED_IN_ERROR)
    )
    root = CERTIFICATES.alias("root")
    return (
        select(root.c.id, root.c.issuer_id)
        .select_from(chain)
        .join(root, root.c.id == chain.c.root)
        .where(chain.c.member == chain.c.root, chain.c.root.not_in(in_error))
    )
