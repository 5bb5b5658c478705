"""Public verification: by the QR code's token, or by number and holder name."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import ContextDep, ReaderDep, reader
from registry.certificates import verification
from registry.certificates.schemas import Verification, VerifyByNumber

router = APIRouter(prefix="/v1/verify", tags=["verify"])


def _json(answer: Verification) -> Response:
    # Serialised once by pydantic-core; the model is already validated, so FastAPI need not check it again.
    return Response(answer.model_dump_json(), media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/{token}", response_model=Verification, operation_id="verify-token", responses={404: {}})
async def verify_token(token: str, request: Request) -> Response:
    # Every scan lands here: no dependencies to solve, the reader is opened and closed inline.
    async with reader(request) as source:
        return _json(await verification.by_token(request.app.state.context, source, token=token, channel="token"))


@router.post("", response_model=Verification, operation_id="verify-number", responses={404: {}})
async def verify_number(body: VerifyByNumber, context: ContextDep, source: ReaderDep) -> Response:
    return _json(await verification.by_number(context, source, number=body.number, holder_name=body.holder_name))
