"""Questions from peer registry nodes (another region's node asking about this region's certificates).

Callers authenticate with a service token (``typ: peer+jwt``) checked against the key set their region's configured
URL publishes; answers are statements signed by this node (``registry.federation.protocol``). Everything here is
answered from this node's own records: nothing is ever forwarded on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field

from api.deps import FederationDep, ReaderDep, VerifierDep
from registry.audit.service import Actor
from registry.config import Region
from registry.db import transaction
from registry.federation import forwarding
from registry.recognition import queries
from registry.recognition.queries import Question
from registry.recognition.schemas import MAX_QUERY_ITEMS, Purpose, PurposeText
from registry.schemas import StrictInput
from registry.verification.schemas import VerifyByNumber

router = APIRouter(prefix="/v1/federation", tags=["federation"])
Nonce = Annotated[str, Field(min_length=16, max_length=64)]
Authorization = Annotated[str | None, Header(description="Bearer <service token of the asking node>")]


class PeerVerify(VerifyByNumber):
    nonce: Nonce


class PeerRecognition(StrictInput):
    to_region: Region
    purpose: Purpose
    purpose_text: PurposeText | None = None
    items: Annotated[list[Any], Field(min_length=1, max_length=MAX_QUERY_ITEMS)]
    nonce: Nonce


class Statement(BaseModel):
    statement: str = Field(description="compact JWS (typ peer-answer+jwt) by this node's key")


@router.post("/verify", response_model=Statement, operation_id="federation-verify", responses={401: {}})
async def peer_verify(
    body: PeerVerify,
    federation: FederationDep,
    verifier: VerifierDep,
    source: ReaderDep,
    authorization: Authorization = None,  # optional here: a missing token is a 401 like a bad one, not a 422
) -> dict[str, str]:
    caller = await federation.caller(authorization)
    answer = await forwarding.answer_peer(
        verifier, source, number=body.number, holder_name=body.holder_name, peer_region=caller
    )
    return await federation.answer(caller=caller, nonce=body.nonce, answer=answer)


@router.post("/recognition", response_model=Statement, operation_id="federation-recognition", responses={401: {}})
async def peer_recognition(
    request: Request,
    body: PeerRecognition,
    federation: FederationDep,
    verifier: VerifierDep,
    authorization: Authorization = None,  # optional here: a missing token is a 401 like a bad one, not a 422
) -> dict[str, str]:
    # No transaction is held while the caller's key set is fetched or the items are judged: the asking node may be
    # waiting on this one, and this one on it (see api.deps.get_unlocked_session).
    caller = await federation.caller(authorization)
    question = Question(to_region=body.to_region.value, purpose=body.purpose, purpose_text=body.purpose_text)
    state = request.app.state
    async with state.unlocked_sessions() as reading:
        # federation=None: judged here only, never forwarded on.
        results = await queries.answer_items(reading, verifier, None, question=question, items=body.items)
    async with transaction(state.sessions) as session:
        await queries.record(
            session,
            actor=Actor(id=f"peer:{caller}"),
            partner={"peer": caller},
            question=question,
            items=body.items,
            results=results,
        )
        answer = [result.model_dump(mode="json") for result in results]
        return await federation.answer(caller=caller, nonce=body.nonce, answer=answer, session=session)
