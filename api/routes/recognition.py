"""京津冀 mutual recognition: the rules (admin) and the partner agencies' questions (single and bulk)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.deps import (
    BearerDep,
    ContextDep,
    FederationDep,
    RecognitionAsk,
    RecognitionRead,
    RecognitionWrite,
    SessionDep,
    VerifierDep,
    get_held_principal,
)
from api.errors import PROBLEM_JSON, language, said_in
from api.shown_paths import shown_problem
from registry.auth.principals import Principal, require
from registry.auth.scopes import Role, Scope
from registry.catalogue.models import CertType
from registry.config import Region
from registry.db import transaction
from registry.errors import Forbidden, InvalidInput, field_errors
from registry.federation import protocol
from registry.i18n import _, translate_problem
from registry.recognition import queries, rules
from registry.recognition.models import RuleKind
from registry.recognition.queries import Question
from registry.recognition.schemas import (
    BulkAnswer,
    BulkQuery,
    Purpose,
    PurposeText,
    RecognitionAnswer,
    RuleCreate,
    RulePage,
    RulePublic,
    RuleRetire,
)

router = APIRouter(prefix="/v1/recognition", tags=["recognition"])
_ERRORS: dict[int | str, dict[str, str]] = {404: {"description": "No such rule"}, 409: {"description": "Conflict"}}


@router.post(
    "/rules", response_model=RulePublic, status_code=201, operation_id="recognition-rules-create", responses={409: {}}
)
async def create_rule(body: RuleCreate, session: SessionDep, admin: RecognitionWrite) -> RulePublic:
    return await rules.create(session, actor=admin.actor, body=body)


@router.get("/rules", response_model=RulePage, operation_id="recognition-rules-list")
async def list_rules(
    session: SessionDep,
    reader: RecognitionRead,
    from_region: Region | None = None,
    to_region: Region | None = None,
    kind: RuleKind | None = None,
    cert_type: CertType | None = None,
    include_retired: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RulePage:
    return await rules.search(
        session,
        from_region=from_region,
        to_region=to_region,
        kind=kind,
        cert_type=cert_type,
        include_retired=include_retired,
        limit=limit,
        offset=offset,
    )


@router.get("/rules/{rule_id}", response_model=RulePublic, operation_id="recognition-rules-get")
async def get_rule(rule_id: int, session: SessionDep, reader: RecognitionRead) -> RulePublic:
    return await rules.read(session, rule_id)


@router.post(
    "/rules/{rule_id}/revise",
    response_model=RulePublic,
    status_code=201,
    operation_id="recognition-rules-revise",
    responses=_ERRORS,
)
async def revise_rule(rule_id: int, body: RuleCreate, session: SessionDep, admin: RecognitionWrite) -> RulePublic:
    """A new version of the rule; the old one points at it and gives way when it begins (never an edit in place)."""
    return await rules.revise(session, actor=admin.actor, rule_id=rule_id, body=body)


@router.post(
    "/rules/{rule_id}/retire", response_model=RulePublic, operation_id="recognition-rules-retire", responses=_ERRORS
)
async def retire_rule(rule_id: int, body: RuleRetire, session: SessionDep, admin: RecognitionWrite) -> RulePublic:
    return await rules.retire(session, actor=admin.actor, rule_id=rule_id, reason=body.reason)


def _target_region(asker: Principal, to_region: Region | None) -> str:
    """Partners are answered for their own region; an admin names the region it asks for."""
    if asker.role is Role.partner:
        if asker.region is None:
            raise Forbidden(_("this partner client is bound to no region"))
        if to_region is not None and to_region != asker.region:
            raise Forbidden(_("a partner of {region} is answered for {region} only", region=asker.region))
        return asker.region
    if to_region is None:
        raise InvalidInput.field("to_region", _("name the region the question is for (BJ, TJ or HE)"))
    return to_region.value


@router.post("/queries", response_model=BulkAnswer, operation_id="recognition-queries", responses={413: {}})
async def bulk_query(
    request: Request,
    body: BulkQuery,
    context: ContextDep,
    verifier: VerifierDep,
    federation: FederationDep,
    asker: RecognitionAsk,
    credentials: BearerDep,
) -> BulkAnswer:
    """Up to 1,000 certificates, answered in order; a bad item gets its own problem and does not fail the others."""
    question = Question(
        to_region=_target_region(asker, body.to_region), purpose=body.purpose, purpose_text=body.purpose_text
    )
    state = request.app.state
    await federation.sign()  # the node key, read before the questions: none of them then opens a transaction
    # No transaction while peers are asked (on SQLite it would hold the write lock for the round trip) ...
    async with state.unlocked_sessions() as reading:
        results = await queries.answer_items(reading, verifier, federation, question=question, items=body.items)
    # ... and one short one for the audit records, which exist exactly when the answers are given. The caller is checked
    # again in it: a client disabled (or its tokens ended) while the peers answered is given nothing (401); its row is
    # held until the records commit, so a disable arriving after the check waits for them (the answer was given).
    async with transaction(state.sessions) as session:
        require(await get_held_principal(context, session, credentials), scope=Scope.recognition_read)
        partner = {"partner": asker.client_id, "region": asker.region}
        await queries.record(
            session, actor=asker.actor, partner=partner, question=question, items=body.items, results=results
        )
        sign = await protocol.signer(context, session)
        queries.sign_answers(sign, audience=asker.client_id, question=question, results=results)
    lang = language(request.scope)
    for result in results:  # each item's problem said in the reader's language, once the audit record is kept
        if result.problem is not None:
            result.problem = translate_problem(result.problem, lang)
    return BulkAnswer(purpose=body.purpose, to_region=question.to_region, count=len(results), results=results)


@router.get(
    "/{number}",
    response_model=RecognitionAnswer,
    operation_id="recognition-query",
    responses={404: {"description": "No certificate with this number and holder name"}},
)
async def query(
    request: Request,
    number: str,
    holder_name: Annotated[str, Query(min_length=1, max_length=64)],
    purpose: Purpose,
    context: ContextDep,
    verifier: VerifierDep,
    federation: FederationDep,
    asker: RecognitionAsk,
    credentials: BearerDep,
    purpose_text: Annotated[PurposeText | None, Query()] = None,
    to_region: Region | None = None,
) -> RecognitionAnswer | Response:
    try:
        body = BulkQuery(
            purpose=purpose,
            purpose_text=purpose_text,
            to_region=to_region,
            items=[{"number": number, "holder_name": holder_name}],
        )
    except ValidationError as exc:
        raise InvalidInput.fields(field_errors(exc.errors())) from None
    answer = await bulk_query(request, body, context, verifier, federation, asker, credentials)
    result = answer.results[0]
    if result.answer is not None:
        return result.answer
    # The item's own problem, returned rather than raised: the audit record of the question is kept. It is this
    # node's own (a 404 or 422 that registry.recognition.queries made here, a peer's being said again, never copied).
    problem = shown_problem(result.problem or {}, request.url.path)  # the number in the path as problems name it
    if isinstance(errors := problem.get("errors"), list):
        problem["errors"] = [_unprefixed(error) for error in errors]
    problem["detail"] = str(problem.get("detail", "")).replace("items[0].", "")
    response = Response(orjson.dumps(problem), status_code=result.status, media_type=PROBLEM_JSON)
    return said_in(response, language(request.scope))


def _unprefixed(error: Any) -> Any:
    field = error.get("field") if isinstance(error, dict) else None
    return {**error, "field": field.removeprefix("items[0].")} if isinstance(field, str) else error
