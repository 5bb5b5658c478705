"""Registering API clients (admin, evaluation body, partner agency); their tokens are ``registry.auth``'s business."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import service as audit
from registry.audit.service import Actor
from registry.auth import client_secrets
from registry.auth.models import ApiClient
from registry.auth.scopes import ROLE_SCOPES
from registry.clients.schemas import ClientCreate, ClientCreated
from registry.context import RegistryContext
from registry.errors import InvalidInput
from registry.issuers import service as issuers


async def create(ctx: RegistryContext, session: AsyncSession, *, actor: Actor, body: ClientCreate) -> ClientCreated:
    issuer_id = None
    if body.issuer_code is not None:
        issuer = await issuers.get_by_code(session, body.issuer_code)
        if issuer is None:
            raise InvalidInput.field("issuer_code", f"no evaluation body {body.issuer_code}")
        issuer_id = issuer.id
    client_id, client_secret = client_secrets.new_client_credentials()
    scopes = sorted(scope.value for scope in ROLE_SCOPES[body.role])
    session.add(
        ApiClient(
            client_id=client_id,
            secret_hash=client_secrets.secret_hash(ctx.box, client_secret),
            role=body.role,
            name=body.name,
            issuer_id=issuer_id,
            region=body.region,
            scopes=scopes,
        )
    )
    await session.flush()
    await audit.append(
        session,
        actor=actor,
        action="client.created",
        object_type="api_client",
        object_id=client_id,
        purpose="access management",
        details={"role": body.role, "name": body.name, "issuer_code": body.issuer_code, "region": body.region},
    )
    return ClientCreated(
        client_id=client_id,
        client_secret=client_secret,
        role=body.role,
        name=body.name,
        issuer_code=body.issuer_code,
        region=body.region,
        scopes=scopes,
    )
