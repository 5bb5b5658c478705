"""A holder with one certificate, signed in through the API; shared by the share-link, who-looked and page tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from registry.holder_access.identity_provider import IdentityProvider
from tests.factories import admin_token, bearer, create_issuer, issued_certificate, issuer_token, resident_id

HOLDER_NAME = "孙八"


@dataclass
class SignedInHolder:
    issuer: str  # the issuing body's access token
    id_number: str
    certificate: dict[str, Any]
    headers: dict[str, str]  # the holder's bearer token


async def signed_in_holder(app: FastAPI, client: httpx.AsyncClient) -> SignedInHolder:
    issuer = await issuer_token(app, client, (await create_issuer(client, await admin_token(app, client)))["code"])
    id_number = resident_id(birth="19900505")
    holder = {"name": HOLDER_NAME, "id_type": "resident_id", "id_number": id_number}
    certificate = await issued_certificate(client, issuer, holder=holder)
    body = {"id_type": "resident_id", "id_number": id_number, "claim_code": certificate["claim_code"]}
    session = await client.post("/v1/holder/sessions", json=body)
    assert session.status_code == 201, session.text
    return SignedInHolder(issuer, id_number, certificate, bearer(session.json()["access_token"]))


async def table_rows(app: FastAPI, table: str) -> list[dict[str, Any]]:
    async with app.state.engine.connect() as connection:
        result = await connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 — a fixed table name
        return [dict(row) for row in result.mappings()]


IDP_ISSUER = "https://id.example.gov.cn"
IDP_AUDIENCE = "talent-registry-holders"


def mock_identity_provider(app: FastAPI, answer: Any) -> IdentityProvider:
    """The identity provider of the tests' holders, its key set answered by ``answer`` (an httpx.MockTransport
    handler), installed in ``app``."""
    provider = IdentityProvider(
        jwks_url=f"{IDP_ISSUER}/jwks.json",
        issuer=IDP_ISSUER,
        audience=IDP_AUDIENCE,
        id_claim="id_number",
        transport=httpx.MockTransport(answer),
    )
    app.state.identity_provider = provider
    return provider
