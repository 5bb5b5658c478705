"""Public verification: by the QR code's token, or by number and holder name."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContextDep, ReadSessionDep
from registry.certificates import service as certificates
from registry.certificates.schemas import Verification, VerifyByNumber

router = APIRouter(prefix="/v1/verify", tags=["verify"])


@router.get("/{token}", response_model=Verification, operation_id="verify-token", responses={404: {}})
async def verify_token(token: str, context: ContextDep, session: ReadSessionDep) -> Verification:
    return await certificates.verify_by_token(context, session, token=token, channel="token")


@router.post("", response_model=Verification, operation_id="verify-number", responses={404: {}})
async def verify_number(body: VerifyByNumber, context: ContextDep, session: ReadSessionDep) -> Verification:
    return await certificates.verify_by_number(context, session, number=body.number, holder_name=body.holder_name)
