"""Small async factories for test data: identity numbers, API clients, tokens, evaluation bodies, certificates."""

from __future__ import annotations

import itertools
import secrets
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from registry import clock
from registry.audit.service import Actor
from registry.auth.scopes import Role
from registry.clients import service as clients
from registry.clients.schemas import ClientCreate
from registry.context import RegistryContext
from registry.db import transaction
from registry.issuers.credit_code import credit_code_check_char
from registry.keys.key_check import check_master_key_on

_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_sequence = itertools.count(100)
_AUTOMATIC_BIRTHS_FROM = date(1950, 1, 1)


def resident_id(*, region: str = "110105", birth: str | None = None, sequence: int | None = None) -> str:
    """A well-formed resident ID number (GB 11643) that belongs to nobody.

    With an explicit ``sequence`` the birth date defaults to 1988-07-12, so a test can name the same number twice.
    Without one, every call in the run gets a number no other call gets, explicit or automatic: the automatic
    sequence's birth dates start at 1950-01-01 and move on a day every 1,000 numbers, a range no explicit default
    uses (an explicit ``birth`` with an automatic sequence wraps its three sequence digits at 1,000)."""
    if sequence is not None:
        seq, born = sequence, birth or "19880712"
    else:
        drawn = next(_sequence)
        seq, born = drawn, birth or (_AUTOMATIC_BIRTHS_FROM + timedelta(days=drawn // 1000)).strftime("%Y%m%d")
    first17 = region + born + f"{seq % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(first17, _GB11643_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def with_wrong_check_char(number: str) -> str:
    last = number[-1]
    return number[:-1] + ("0" if last != "0" else "1")


def credit_code() -> str:
    """A well-formed 统一社会信用代码 (GB 32100) with a random organisation part."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "52110000" + "".join(secrets.choice(alphabet) for _ in range(9))
    return body + credit_code_check_char(body)


async def create_client(
    app: FastAPI, *, role: Role, issuer_code: str | None = None, region: str | None = None
) -> tuple[str, str]:
    """Create a client the way `registry clients create` does: straight through the service, no HTTP — after binding
    a database that holds nothing sealed to the master key, as the command's start does (``check_master_key_on``):
    clients made in a database bound to no key would leave it as an earlier version did (keys.master_key_unproven)."""
    context: RegistryContext = app.state.context
    await check_master_key_on(app.state.engine, context.box)
    async with transaction(app.state.sessions) as session:
        created = await clients.create(
            context,
            session,
            actor=Actor(id="cli"),
            body=ClientCreate(role=role, name=f"test {role}", issuer_code=issuer_code, region=region),
        )
    return created.client_id, created.client_secret


async def token_for(http: httpx.AsyncClient, client_id: str, client_secret: str, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    if scope is not None:
        form["scope"] = scope
    response = await http.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin_token(app: FastAPI, http: httpx.AsyncClient) -> str:
    return await token_for(http, *await create_client(app, role=Role.admin))


def issuer_body(
    code: str = "BJ-AI-COMMITTEE",
    *,
    cert_type: str = "title",
    catalogue_codes: tuple[str, ...] = ("ENG-AI", "ENG-IC", "ENG-EAI", "ENG-BCI"),
    levels: tuple[str, ...] = ("intermediate", "associate_senior", "senior"),
    valid_from: str = "2020-01-01",
    valid_until: str | None = None,
    kind: str = "title_committee",
    **overrides: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "name": "北京市工程技术系列人工智能专业高级职称评审委员会",
        "credit_code": credit_code(),
        "kind": kind,
        "region": "BJ",
        "scopes": [
            {
                "cert_type": cert_type,
                "catalogue_codes": list(catalogue_codes),
                "levels": list(levels),
                "valid_from": valid_from,
                "valid_until": valid_until,
            }
        ],
    }
    body.update(overrides)
    return body


async def create_issuer(http: httpx.AsyncClient, admin: str, **kwargs: Any) -> dict[str, Any]:
    response = await http.post("/v1/issuers", json=issuer_body(**kwargs), headers=bearer(admin))
    assert response.status_code == 201, response.text
    issuer: dict[str, Any] = response.json()
    return issuer


async def issuer_token(app: FastAPI, http: httpx.AsyncClient, issuer_code: str) -> str:
    return await token_for(http, *await create_client(app, role=Role.issuer, issuer_code=issuer_code))


async def ready_issuer(app: FastAPI, http: httpx.AsyncClient) -> str:
    """The usual start of a test: the default evaluation body registered, and an issuer token for it."""
    await create_issuer(http, await admin_token(app, http))
    return await issuer_token(app, http, "BJ-AI-COMMITTEE")


def certificate_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cert_type": "title",
        "catalogue_code": "ENG-EAI",
        "level": "associate_senior",
        "holder": {"name": "张三", "id_type": "resident_id", "id_number": resident_id()},
        "awarded_on": "2026-06-30",
        "valid_until": None,
        "evaluation_batch": "2026-BJ-AI-01",
    }
    body.update(overrides)
    return body


async def row_count(app: FastAPI, table: str) -> int:
    """How many rows ``table`` holds now."""
    async with transaction(app.state.sessions) as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


def batch_rows(count: int) -> list[dict[str, Any]]:
    """``count`` rows of a batch, each for another holder (sequence numbers 0, 1, ...); a quarter without an
    evaluation batch label."""
    return [
        certificate_body(
            holder={"name": f"学员{i}", "id_type": "resident_id", "id_number": resident_id(sequence=i)},
            evaluation_batch=None if i % 4 == 0 else "2026-BJ-AI-02",
        )
        for i in range(count)
    ]


async def issued_certificate(http: httpx.AsyncClient, token: str, **overrides: Any) -> dict[str, Any]:
    response = await http.post("/v1/certificates", json=certificate_body(**overrides), headers=bearer(token))
    assert response.status_code == 201, response.text
    certificate: dict[str, Any] = response.json()
    return certificate


def today_iso() -> str:
    """The registry's today (Beijing), as an ISO date: tests never use the machine's own calendar."""
    return clock.today().isoformat()


def days_from_today(days: int) -> str:
    """A date relative to the registry's today, so no test stops working when the calendar passes a fixed date."""
    return (clock.today() + timedelta(days=days)).isoformat()
