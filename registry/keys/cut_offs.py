"""Whether the PDF root's CRL holds what the compromise rule says (``registry.keys.compromise.cut_off_from``), and
bringing it there: ``registry keys check`` and ``registry keys repair``.

Keys marked compromised before the rule (5e781f7) may hold another state: marking an old credential key put the body's
document key of the day (a sound one) in the CRL and left the stolen key's own document key out. What the CRL should
hold, per document key: the earliest of the dates each compromised credential key of its body cuts it off from, and of
the dates it was itself marked compromised from (its own ``key.compromised`` audit records: a document key marked on
its own stays cut off), each dated no earlier than the key's own start. A body with a key row whose seal fails is not
judged (``registry audit verify``): a repair never seals a row someone edited.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import service as audit
from registry.audit.models import AuditRecord
from registry.audit.service import Actor
from registry.db import utcnow
from registry.i18n import Message, _
from registry.keys import compromise, documents
from registry.keys import service as keys
from registry.keys.models import KeyStatus, KeyUse, SigningKey
from registry.keys.secrets_box import SecretsBox

REPAIRED = "key.cut_off_repaired"


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A document key whose place in the CRL is not the rule's: ``stored`` the date it is listed from (None: not
    listed), ``expected`` the rule's (None: it should not be), ``by`` the keys whose compromise cuts it off."""

    issuer: str
    kid: str
    stored: datetime | None
    expected: datetime | None
    by: tuple[str, ...]

    def describe(self) -> Message:
        named = {"issuer": self.issuer, "kid": self.kid, "by": ", ".join(self.by)}
        if self.expected is None:
            return _(
                "{issuer}: document key {kid} is in the PDF root's CRL from {stored}, but no compromise cuts it off",
                **named,
                stored=_iso(self.stored),
            )
        if self.stored is None:
            return _(
                "{issuer}: document key {kid} is not in the PDF root's CRL, but the compromise of {by} cuts it off "
                "from {expected}",
                **named,
                expected=_iso(self.expected),
            )
        return _(
            "{issuer}: document key {kid} is in the PDF root's CRL from {stored}, but the compromise of {by} cuts it "
            "off from {expected}",
            **named,
            stored=_iso(self.stored),
            expected=_iso(self.expected),
        )


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "-"


@dataclass
class Judgement:
    """Every body's document keys judged: how many, which disagree, and the bodies not judged (a key's seal fails)."""

    checked: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    unsealed: list[tuple[str, str]] = field(default_factory=list)  # (body code, kid)
    rows: dict[str, SigningKey] = field(default_factory=dict)


async def judge(session: AsyncSession, box: SecretsBox, *, lock: bool) -> Judgement:
    """Judge every body's document keys against the rule. ``lock`` (a repair): each body's turn is taken, in id
    order, then its keys are read locked, as a mark or a rotation takes them (issuer row, keys, then the chain)."""
    # Written as SQL: the issuers package imports this one.
    found = await session.execute(text("SELECT id, code FROM issuers ORDER BY id"))
    bodies: dict[int, str] = {int(issuer_id): str(code) for issuer_id, code in found}
    if lock:
        for issuer_id in bodies:
            await documents.body_turn(session, issuer_id)
    query = (
        select(SigningKey)
        .where(col(SigningKey.use).in_((KeyUse.certificate, KeyUse.document)), col(SigningKey.issuer_id).isnot(None))
        .order_by(col(SigningKey.issuer_id), col(SigningKey.id))
        .execution_options(populate_existing=True)
    )
    by_body: dict[int, list[SigningKey]] = defaultdict(list)
    for key in (await session.execute(query.with_for_update() if lock else query)).scalars():
        by_body[key.issuer_id or 0].append(key)
    document_kids = [key.kid for body in by_body.values() for key in body if key.use == KeyUse.document]
    own_marks = await _own_marks(session, document_kids)
    judgement = Judgement()
    for issuer_id, body_keys in by_body.items():
        code = bodies.get(issuer_id, str(issuer_id))
        broken = [key.kid for key in body_keys if not keys.seal_intact(box, key)]
        if broken:
            judgement.unsealed += [(code, kid) for kid in broken]
            continue
        _judge_body(judgement, code, body_keys, own_marks)
    return judgement


def _judge_body(
    judgement: Judgement, code: str, body_keys: list[SigningKey], own_marks: dict[str, list[datetime]]
) -> None:
    credential_keys = [key for key in body_keys if key.use == KeyUse.certificate]
    for document_key in (key for key in body_keys if key.use == KeyUse.document):
        judgement.checked += 1
        judgement.rows[document_key.kid] = document_key
        dates: dict[str, datetime] = {}
        for credential_key in credential_keys:
            date = compromise.cut_off_from(credential_key, document_key)
            if date is not None:
                dates[credential_key.kid] = date
        marks = [compromise.dated_for(document_key, since) for since in own_marks.get(document_key.kid, [])]
        if marks:
            dates[document_key.kid] = min(marks)
        expected = min(dates.values(), default=None)
        listed = document_key.status == KeyStatus.compromised
        stored = document_key.compromised_from if listed else None
        if listed != (expected is not None) or stored != expected:
            by = tuple(kid for kid, date in dates.items() if date == expected)
            judgement.disagreements.append(Disagreement(code, document_key.kid, stored, expected, by))


async def _own_marks(session: AsyncSession, kids: list[str]) -> dict[str, list[datetime]]:
    """The dates each of these keys was itself marked compromised from, as its audit records say."""
    marks: dict[str, list[datetime]] = defaultdict(list)
    if not kids:
        return marks
    query = select(col(AuditRecord.object_id), col(AuditRecord.details)).where(
        col(AuditRecord.action) == compromise.MARKED,
        col(AuditRecord.object_type) == "signing_key",
        col(AuditRecord.object_id).in_(kids),
    )
    for kid, details in await session.execute(query):
        since = (details or {}).get("compromised_from")
        if isinstance(since, str):
            marks[kid].append(datetime.fromisoformat(since))
    return marks


async def repair(session: AsyncSession, keyring: keys.KeyRing, *, actor: Actor) -> Judgement:
    """Bring every judged document key to the rule's state, each change audited (``REPAIRED``); a key already there
    is left as it is, so a second repair writes nothing. A key taken out of the CRL stays retired (its body's next
    PDF certifies a new key if none is active); one put in is retired now if it was active."""
    judgement = await judge(session, keyring.box, lock=True)
    now = utcnow()
    entries = []
    for wrong in judgement.disagreements:
        key = judgement.rows[wrong.kid]
        _restate(keyring, key, wrong.expected, now=now)
        entries.append(
            audit.Entry(
                action=REPAIRED,
                object_type="signing_key",
                object_id=key.kid,
                purpose="key management",
                details={
                    "issuer": wrong.issuer,
                    "compromised_from": wrong.expected.isoformat() if wrong.expected else None,
                    "previously_from": wrong.stored.isoformat() if wrong.stored else None,
                    "cut_off_by": list(wrong.by),
                },
            )
        )
    await session.flush()  # the keys first, then the chain's lock, as every writer takes them
    await audit.append_many(session, actor=actor, entries=entries)
    return judgement


def _restate(keyring: keys.KeyRing, key: SigningKey, expected: datetime | None, *, now: datetime) -> None:
    key.status = KeyStatus.retired if expected is None else KeyStatus.compromised
    key.compromised_from = expected
    if key.retired_at is None:
        key.retired_at = now
    keys.reseal(keyring.box, key)
    keyring.forget(key.kid)
