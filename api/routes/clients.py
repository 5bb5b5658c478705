"""API clients (admin only)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClientsWrite, ContextDep, SessionDep
from registry.clients import service as clients
from registry.clients.schemas import ClientCreate, ClientCreated

router = APIRouter(prefix="/v1/clients", tags=["clients"])


@router.post("", response_model=ClientCreated, status_code=201, operation_id="clients-create")
async def create_client(
    body: ClientCreate, context: ContextDep, session: SessionDep, admin: ClientsWrite
) -> ClientCreated:
    return await clients.create(context, session, actor=admin.actor, body=body)
