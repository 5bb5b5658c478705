"""Review of 5c222aa: an identity number typed into any route's path is said back by no refusal — not in its
``instance`` (a file's kind after it too: ``/v1/certificates/{number}.pdf``), not in a detail a service wrote with the
path's value in it ("no certificate …", "no status list …", "… is not in the transparency log"), not in the one-item
recognition answer's own problem, nor in a header. Ordinary paths (certificate numbers as typed, key ids, uuids) are
named as they came."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from registry.auth.scopes import Role
from tests.checks import assert_problem
from tests.factories import admin_token, bearer, create_client, issuer_body, token_for

NUMBER = "11010519491231002X"  # a valid resident ID number (GB 11643) that belongs to nobody
TYPED = [NUMBER, "110105 19491231 002X", "110105-19491231-002X", "110105194912310021"]
_ROUTES: dict[str, dict[str, object]] = json.loads(Path("openapi/openapi.json").read_text())["paths"]
_PARAMETER = re.compile(r"\{(?!fmt\})[a-z_]+\}")
# Every route that takes a value in its path, each method it answers; not the pages /s/{token} and /v/{token}, whose
# "not found" page links to itself in the other language (api/routes/pages.py, outside this review: see the report).
ROUTES = [
    (method.upper(), template)
    for template, operations in _ROUTES.items()
    if _PARAMETER.search(template) and not template.startswith(("/s/", "/v/"))
    for method in operations
    if method in ("get", "post", "delete")
]


def _said(response: httpx.Response) -> str:
    return response.text + json.dumps(dict(response.headers), ensure_ascii=False)


@pytest.mark.parametrize("typed", TYPED)
async def test_no_route_says_back_an_identity_number_typed_into_its_path(
    app: FastAPI, client: httpx.AsyncClient, typed: str
) -> None:
    callers = [
        bearer(await admin_token(app, client)),
        bearer(await token_for(client, *await create_client(app, role=Role.partner, region="TJ"))),
        {},
    ]
    ask = {"holder_name": "张三", "purpose": "hiring"}
    echoed = []
    for method, template in ROUTES:
        path = _PARAMETER.sub(quote(typed, safe=""), template).replace("{fmt}", "png")
        for caller in callers:
            response = await client.request(
                method,
                path,
                headers={**caller, "Accept": "application/json"},
                params=ask if template == "/v1/recognition/{number}" else None,
                json={} if method == "POST" else None,
            )
            said = _said(response)
            if "19491231" in said or "1949 1231" in said or "1949-1231" in said:
                echoed.append(f"{method} {path} {response.status_code}: {said[:400]}")
    assert echoed == [], "\n".join(echoed)


async def test_a_file_route_names_the_number_before_its_kind_masked(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get(f"/v1/certificates/{NUMBER}.pdf"), 401)
    assert problem["instance"] == "/v1/certificates/11**************2X.pdf", problem


async def test_a_service_naming_the_path_value_says_it_masked(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = bearer(await admin_token(app, client))
    events = assert_problem(await client.get(f"/v1/certificates/{NUMBER}/events", headers=admin), 404)
    assert events["detail"] == "no certificate 11**************2X", events
    proof = assert_problem(await client.get(f"/v1/transparency/proof/{quote('110105 19491231 002X')}"), 404)
    assert proof["detail"] == "certificate 11****************2X is not in the transparency log", proof
    lists = assert_problem(await client.get(f"/v1/status-lists/BJ-AI-COMMITTEE/{NUMBER}"), 404)
    assert lists["detail"] == "no status list BJ-AI-COMMITTEE/11**************2X", lists


async def test_the_one_item_recognition_problem_names_its_path_masked(app: FastAPI, client: httpx.AsyncClient) -> None:
    partner = bearer(await token_for(client, *await create_client(app, role=Role.partner, region="TJ")))
    response = await client.get(
        f"/v1/recognition/{NUMBER}", params={"holder_name": "张三", "purpose": "hiring"}, headers=partner
    )
    problem = assert_problem(response, 422)
    assert problem["instance"] == "/v1/recognition/11**************2X", problem


@pytest.mark.parametrize(
    "path",
    [
        "/v1/certificates/BJ-T-2025-QKCCH3GN-X/events",
        "/v1/certificates/BJT2025QKCCH3GNX/events",
        "/v1/certificates/bj-t-2025-12345678-0/events",
        "/v1/certificates/BJ T 2025 12345678 0/events",
        "/v1/certificates/BJ-T-2025-12345678-0.pdf",
        "/v1/issuers/BJ-AI-COMMITTEE/keys/cert-20261205-12345678",
        "/v1/no-such-thing/550e8400-e29b-41d4-a716-446655440000",
        "/v1/status-lists/BJ-AI-COMMITTEE/123456789012-revocation",
        "/v1/issuers/BJ-AI-COMMITTEE/keys/cert-20261205-12345678/compromise-x",
    ],
)
async def test_an_ordinary_path_is_named_as_it_came(app: FastAPI, client: httpx.AsyncClient, path: str) -> None:
    admin = bearer(await admin_token(app, client))
    problem = json.loads((await client.get(quote(path), headers=admin)).text)
    assert problem["instance"] == path, problem


@pytest.mark.parametrize(("passport", "level"), [("EA1234567", "ea1234567"), ("E-1234567", "e_1234567")])
async def test_a_passport_typed_as_a_code_or_a_level_is_refused_without_it(
    app: FastAPI, client: httpx.AsyncClient, passport: str, level: str
) -> None:
    """A passport's (or a Hong Kong ID's) number pasted into a code's or a level's box is named masked, as eight
    digits are; the ordinary code beside it as typed."""
    admin = bearer(await admin_token(app, client))
    body = issuer_body(catalogue_codes=("ENG-AI", passport), levels=("senior", level))
    problem = assert_problem(await client.post("/v1/issuers", json=body, headers=admin), 422)
    said = json.dumps(problem, ensure_ascii=False)
    assert "1234567" not in said, said
    assert {error["field"] for error in problem["errors"]} == {"scopes.0.catalogue_codes", "scopes.0.levels"}, said
