"""Partner agencies' questions: is this certificate genuine, current and recognised in my region, and as what?

One path for every item, single or bulk: the number is checked, then judged here (a certificate of this node's region,
or of a region with no configured peer) or by its region's node (grouped per peer, one request each, concurrently).
Every item of a partner's question is one audit record, and every answer is signed by this node for the agency's
files; one whose certificate no node judged (its region's node could not be asked, or said nothing this node can pass
on) is ``unknown`` and answered by this node, which signs only that it could not tell. A peer's question is judged
here only — never forwarded again. A peer's judgement is passed on (and signed) only when it agrees with the question
(registry.federation.answers); its problems are said again in this node's words.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import clock
from registry.audit import service as audit
from registry.audit.service import Actor
from registry.catalogue.models import CatalogueEntry
from registry.certificates import numbering
from registry.db import utcnow
from registry.errors import (
    FieldError,
    InvalidCertificateNumber,
    InvalidInput,
    NotFound,
    PeerFailure,
    RegistryError,
    field_errors,
)
from registry.federation import answers
from registry.federation.peers import Federation
from registry.federation.protocol import RECOGNITION_ANSWER_TYPE, Signer
from registry.i18n import _, message_of
from registry.recognition import matching, purposes
from registry.recognition.models import Decision, RecognitionRule
from registry.recognition.rules import entry_names, equivalent_of
from registry.recognition.schemas import (
    BasisPublic,
    Bridge,
    LocalizedText,
    Purpose,
    QueryItem,
    QueryResult,
    RecognitionAnswer,
)
from registry.verification.schemas import VerificationResult
from registry.verification.verifier import Verifier
from registry.verification.visits import Visit

RECOGNITION_PATH = "/v1/federation/recognition"
# Why a case its deciding rule cannot answer is not recognised: the rule counts it "at the same level" in an entry that
# never awards that level (matching.answers_at); no broader rule is asked in its place.
EQUIVALENT_NOT_AWARDED = "equivalent_not_awarded"
UNPARSED_NUMBER = "invalid"  # what the audit record names for an item whose number is not a certificate number
_NOT_VALID = _("the certificate number is not valid")


@dataclass(frozen=True, slots=True)
class Question:
    """What is asked, for which region and why. The stated purpose is kept with identity numbers masked
    (``registry.recognition.purposes``) from the start, whoever asks — an agency or a peer node — so the audit record,
    the signed answers, the holder's "who looked" list and the question passed to a peer all carry the safe form."""

    to_region: str
    purpose: Purpose
    purpose_text: str | None

    def __post_init__(self) -> None:
        if self.purpose_text is not None:
            object.__setattr__(self, "purpose_text", purposes.masked(self.purpose_text))

    def purpose_label(self) -> str:
        return f"{self.purpose.value}: {self.purpose_text}" if self.purpose_text else self.purpose.value


@dataclass(frozen=True, slots=True)
class _Item:
    index: int
    number: str
    holder_name: str


class _Judge:
    """Judges certificates held by this node, with the rules and catalogue entries read once per question."""

    def __init__(self, session: AsyncSession, verifier: Verifier, rules: list[RecognitionRule], today: date) -> None:
        self.session, self.verifier, self.rules, self.today = session, verifier, rules, today
        self._entries: dict[str, CatalogueEntry | None] = {}
        self._names: dict[str, CatalogueEntry] = {}
        self.visit: Visit | None = None  # what the certificate's holder sees under "who looked"

    @classmethod
    async def for_region(cls, session: AsyncSession, verifier: Verifier, to_region: str) -> _Judge:
        query = select(RecognitionRule).where(
            col(RecognitionRule.to_region) == to_region, col(RecognitionRule.retired_at).is_(None)
        )
        rules = list((await session.execute(query)).scalars())
        judge = cls(session, verifier, rules, clock.today())
        judge._names = await entry_names(session, rules)
        return judge

    async def _series(self, code: str) -> str | None:
        if code not in self._entries:
            found = await self.session.execute(select(CatalogueEntry).where(col(CatalogueEntry.code) == code))
            self._entries[code] = found.scalar_one_or_none()
        entry = self._entries[code]
        return entry.series_code if entry else None

    def _awarded_by(self, code: str | None) -> list[str] | None:
        """The levels the catalogue entry ``code`` (a rule's equivalent) awards; None when there is no such entry."""
        entry = self._names.get(code) if code is not None else None
        return entry.levels if entry is not None else None

    async def judge(self, item: _Item, to_region: str) -> RecognitionAnswer:
        verification = await self.verifier.by_number(
            self.session, number=item.number, holder_name=item.holder_name, channel="recognition", visit=self.visit
        )
        certificate = verification.certificate
        assert certificate is not None
        answer = RecognitionAnswer(
            number=certificate.number,
            result=verification.result,
            reason=verification.reason,
            to_region=to_region,
            decision=Decision.not_recognised,
            certificate=certificate,
            superseded_by=verification.superseded_by,
            answered_by=verification.answered_by or certificate.number[:2],
            checked_at=verification.checked_at,
        )
        if verification.result is not VerificationResult.valid:
            answer.decision_reason = verification.result.value
            return answer
        case = matching.Case(
            from_region=certificate.number[:2],
            to_region=to_region,
            cert_type=certificate.cert_type.value,
            catalogue_code=certificate.catalogue_code,
            series_code=await self._series(certificate.catalogue_code),
            level=certificate.level,
        )
        rule = matching.deciding_rule(self.rules, case, self.today)
        if rule is None:
            answer.decision_reason = "no_rule"
        elif not matching.answers_at(rule, case.level, self._awarded_by(rule.equivalent_catalogue_code)):
            answer.decision_reason = EQUIVALENT_NOT_AWARDED
        else:
            answer.decision = Decision(rule.decision)
            answer.rule_id = rule.id
            answer.equivalent = equivalent_of(rule, self._names)
            answer.conditions = _conditions(rule)
            answer.basis = [BasisPublic(code=rule.basis_code, title=rule.basis_title)]
        answer.bridges = [
            Bridge(
                rule_id=bridge.id or 0,
                equivalent=equivalent_of(bridge, self._names),
                conditions=_conditions(bridge),
                basis=BasisPublic(code=bridge.basis_code, title=bridge.basis_title),
            )
            for bridge in matching.bridges(self.rules, case, self.today)
        ]
        return answer


def _conditions(rule: RecognitionRule) -> LocalizedText | None:
    if rule.conditions_zh is None and rule.conditions_en is None:
        return None
    return LocalizedText(zh=rule.conditions_zh or "", en=rule.conditions_en or "")


def _failed(index: int, error: RegistryError) -> QueryResult:
    return QueryResult(index=index, status=error.status, problem=error.problem(lang=None))  # said at the API


def _parse(index: int, raw: Any, to_region: str) -> _Item | QueryResult:
    """One item checked on its own: a bad item is answered with its problem, and does not fail the others."""
    prefix = f"items[{index}]"
    try:
        item = QueryItem.model_validate(raw)
    except ValidationError as exc:
        errors = [FieldError(f"{prefix}.{e.field}", e.message) for e in field_errors(exc.errors())]
        return _failed(index, InvalidInput.fields(errors))
    try:
        number = numbering.normalize_number(item.number)
    except InvalidCertificateNumber as exc:
        return _failed(index, InvalidInput.field(f"{prefix}.number", message_of(exc)))
    if number[:2] == to_region:
        message = _(
            "issued in {region} itself: recognition is between regions; check it with POST /v1/verify",
            region=to_region,
        )
        return _failed(index, InvalidInput.field(f"{prefix}.number", message))
    return _Item(index=index, number=number, holder_name=item.holder_name)


def _unknown(item: _Item, asked: _Asked, reason: str) -> QueryResult:
    """No node judged the certificate: ``unknown``, ``reason`` (the peer's failure) as why it is not recognised, and
    answered by this node — not by the peer, which said nothing this node passes on."""
    answer = RecognitionAnswer(
        number=item.number,
        result=VerificationResult.unknown,
        reason=reason,
        to_region=asked.to_region,
        decision=Decision.not_recognised,
        decision_reason=reason,
        certificate=None,
        answered_by=asked.here,
        checked_at=utcnow(),
    )
    return QueryResult(index=item.index, status=200, answer=answer)


async def _judge_here(judge: _Judge, item: _Item, to_region: str) -> QueryResult:
    try:
        return QueryResult(index=item.index, status=200, answer=await judge.judge(item, to_region))
    except (NotFound, InvalidInput) as error:
        return _failed(item.index, error)


async def _ask_peer(federation: Federation, region: str, question: Question, items: list[_Item]) -> list[QueryResult]:
    body = {
        "to_region": question.to_region,
        "purpose": question.purpose.value,
        "purpose_text": question.purpose_text,
        "items": [{"number": item.number, "holder_name": item.holder_name} for item in items],
    }
    asked = _Asked(
        region=region, to_region=question.to_region, max_age_seconds=federation.cache_seconds, here=federation.region
    )
    try:
        answer = await federation.ask(region, RECOGNITION_PATH, body)
    except PeerFailure as failure:
        return [_unknown(item, asked, failure.reason) for item in items]
    if not isinstance(answer, list) or len(answer) != len(items):
        return [_unknown(item, asked, "peer_answer_not_trusted") for item in items]
    return [_peer_result(result, item, asked) for item, result in zip(items, answer, strict=True)]


@dataclass(frozen=True, slots=True)
class _Asked:
    region: str  # the peer's
    to_region: str
    max_age_seconds: float
    here: str  # this node's region: it answers when the peer's answer is not passed on


def _peer_result(result: Any, item: _Item, asked: _Asked) -> QueryResult:
    """One item of a peer's answer as this node's result. Only three answers are understood: 200 with an answer that
    agrees with the question, 404 and 422 (said again here, in this node's words: a peer's problem document is never
    passed on). Anything else is ``unknown``, not trusted."""
    status = result.get("status") if isinstance(result, dict) else None
    if type(status) is not int:  # not True for 1, nor 404.0 for 404
        status = None
    if status == 404:
        return _failed(item.index, NotFound(_("no certificate with this number and holder name")))
    if status == 422:
        return _failed(item.index, InvalidInput.field(f"items[{item.index}].number", _NOT_VALID))
    if status == 200:
        try:
            answer = RecognitionAnswer.model_validate(result.get("answer"))
        except ValidationError:
            answer = None
        if answer is not None and _answer_agrees(answer, item, asked):
            answer.signature = None  # this node signs what it passes on (sign_answers), never relays another's
            return QueryResult(index=item.index, status=200, answer=answer)
    return _unknown(item, asked, "peer_answer_not_trusted")


def _answer_agrees(answer: RecognitionAnswer, item: _Item, asked: _Asked) -> bool:
    """A peer's judgement that answers this item for this region, and does not contradict itself."""
    asked_for = (item.number, asked.region, asked.to_region)
    if (answer.number, answer.answered_by.value, answer.to_region.value) != asked_for:
        return False
    if answer.result is not VerificationResult.valid and answer.decision is not Decision.not_recognised:
        return False  # only a valid certificate is recognised, on conditions or not
    if answer.result is VerificationResult.valid and answer.certificate is None:
        return False
    if not _holds_together(answer):
        return False
    if not answers.succession_agrees(answer.result, number=item.number, superseded_by=answer.superseded_by):
        return False
    return answers.certificate_agrees(
        answer.certificate, answer.result, number=item.number, holder_name=item.holder_name
    ) and answers.is_fresh(answer.checked_at, max_age_seconds=asked.max_age_seconds)


def _holds_together(answer: RecognitionAnswer) -> bool:
    """A decision as ``_Judge.judge`` gives one: recognised or conditional only by a rule, with its basis, and a
    conditional one stating its conditions in zh and en; one by no rule names no equivalent, conditions or basis and
    says why not; a certificate that is not valid is judged by no rule and opens no bridge. A peer's answer that
    contradicts itself is not signed by this node as its own."""
    if answer.rule_id is not None:
        decided = bool(answer.basis) and answer.result is VerificationResult.valid
    else:
        says_nothing = answer.equivalent is None and answer.conditions is None and not answer.basis
        decided = answer.decision is Decision.not_recognised and bool(answer.decision_reason) and says_nothing
    if not decided:
        return False
    conditions = answer.conditions
    if answer.decision is Decision.conditional and (conditions is None or not (conditions.zh and conditions.en)):
        return False
    return answer.result is VerificationResult.valid or not answer.bridges


def _for_peer(federation: Federation, item: _Item) -> bool:
    """Whether ``item`` is judged by its region's node: one of a region with a peer, unless no certificate can carry
    the name it asks about (an identity number typed into it: judged here, not found, and never sent to the peer)."""
    return federation.peer_for_region(item.number[:2]) is not None and not answers.names_no_holder(item.holder_name)


async def answer_items(
    session: AsyncSession,
    verifier: Verifier,
    federation: Federation | None,
    *,
    question: Question,
    items: Sequence[Any],
) -> list[QueryResult]:
    """One result per item, in order. ``federation=None`` (a peer's question) judges everything here."""
    results: dict[int, QueryResult] = {}
    here: list[_Item] = []
    remote: dict[str, list[_Item]] = {}
    for index, raw in enumerate(items):
        parsed = _parse(index, raw, question.to_region)
        if isinstance(parsed, QueryResult):
            results[index] = parsed
        elif federation is not None and _for_peer(federation, parsed):
            remote.setdefault(parsed.number[:2], []).append(parsed)
        else:
            here.append(parsed)
    asked = [_ask_peer(federation, region, question, batch) for region, batch in remote.items()] if federation else []
    peer_answers = asyncio.gather(*asked)  # under way while this node judges its own
    if here:
        judge = await _Judge.for_region(session, verifier, question.to_region)
        judge.visit = Visit("recognition", purpose=question.purpose_label(), region=question.to_region)
        for item in here:
            results[item.index] = await _judge_here(judge, item, question.to_region)
    for batch in await peer_answers:
        results.update((result.index, result) for result in batch)
    return [results[index] for index in range(len(items))]


def _audited_number(result: QueryResult, raw: Any) -> str:
    """The certificate number an item asked about, canonical; ``invalid`` for one that is not a number at all (it may
    be an identity number typed in the wrong box, and the audit log never holds one in clear)."""
    if result.answer is not None:
        return result.answer.number
    typed = raw.get("number") if isinstance(raw, dict) else None
    if not isinstance(typed, str):
        return UNPARSED_NUMBER
    try:
        return numbering.normalize_number(typed)
    except InvalidCertificateNumber:
        return UNPARSED_NUMBER


def _audit_entry(result: QueryResult, raw: Any, question: Question, partner: dict[str, Any]) -> audit.Entry:
    answer = result.answer
    number = _audited_number(result, raw)
    details: dict[str, Any] = {**partner, "to_region": question.to_region, "status": result.status}
    if answer is not None:
        details.update(
            result=answer.result.value,
            decision=answer.decision.value,
            rule_id=answer.rule_id,
            answered_by=answer.answered_by.value,
        )
    return audit.Entry(
        action="recognition.query",
        object_type="certificate",
        object_id=number[:64],
        purpose=question.purpose_label()[:256],
        details=details,
    )


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    partner: dict[str, Any],
    question: Question,
    items: Sequence[Any],
    results: list[QueryResult],
) -> None:
    """One audit record per item asked, whatever its answer."""
    entries = [_audit_entry(result, raw, question, partner) for result, raw in zip(results, items, strict=True)]
    await audit.append_many(session, actor=actor, entries=entries)


def sign_answers(sign: Signer, *, audience: str, question: Question, results: list[QueryResult]) -> None:
    """Each answer signed by this node, for the agency's files: the JWS payload is the answer without its signature."""
    for result in results:
        if result.answer is not None:
            claims = {"aud": audience, "purpose": question.purpose_label()}
            payload = result.answer.model_dump(mode="json", exclude={"signature"})
            result.answer.signature = sign(RECOGNITION_ANSWER_TYPE, {**claims, "answer": payload})
