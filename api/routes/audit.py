"""The audit log, as the bureau reads it (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import ADMIN, Authorize, SessionDep
from registry.audit import listing
from registry.audit.schemas import AuditFilter, AuditPage
from registry.auth.principals import Principal
from registry.auth.scopes import Scope

router = APIRouter(prefix="/v1/audit", tags=["audit"])

AuditRead = Annotated[Principal, Depends(Authorize(scope=Scope.audit_read, roles=ADMIN))]


@router.get("", response_model=AuditPage, operation_id="audit-list")
async def list_audit_records(
    filters: Annotated[AuditFilter, Query()], session: SessionDep, admin: AuditRead
) -> AuditPage:
    return await listing.list_records(session, filters=filters)
