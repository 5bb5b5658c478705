"""An identity number typed into a URL where an evaluation body's code, a key's kid or a rule's id goes is never said
back whole: not in the refusal's detail (``errors.said_masked``: the public issuer documents and rule look-ups), nor
in its ``instance``, the request's path (``api.errors.shown_path``). An ordinary path is named as it came."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from tests.checks import assert_problem
from tests.factories import admin_token, bearer, create_issuer

NUMBER = "11010519491231002X"  # a valid resident ID number (GB 11643) that belongs to nobody
BIRTH = "19491231"  # in every form the number is typed in below
# As typed in a URL: whole, grouped with spaces (sent as %20) or hyphens, in full-width digits or Chinese numerals,
# percent-escaped twice (a link inside a link: the path arrives as "%31%31%30…").
TYPED = [
    NUMBER,
    "110105 19491231 002X",
    "110105-19491231-002X",
    "１１０１０５１９４９１２３１００２Ｘ",
    "一一〇一〇五一九四九一二三一〇〇二X",
    "".join(f"%25{ord(char):02X}" for char in NUMBER),
]
ESCAPED = "".join(f"%{ord(char):02X}" for char in NUMBER[:8])  # "%31%31%30%31…": the number escaped
PUBLIC = ["/v1/issuers/{}", "/v1/issuers/{}/keys/cert-20261205-a1b2c3d4", "/.well-known/jwt-vc-issuer/v1/issuers/{}"]


def _said_nowhere(response: httpx.Response, status: int) -> dict[str, Any]:
    problem = assert_problem(response, status)
    said = json.dumps(problem, ensure_ascii=False)
    for hidden in (NUMBER, BIRTH, "１９４９１２３１", "一九四九一二三一", "19491231".replace("", " ").strip(), ESCAPED):
        assert hidden not in said.upper(), said
    return problem


def _path(template: str, typed: str) -> str:
    return template.format(typed if typed.startswith("%25") else quote(typed, safe=""))


@pytest.mark.parametrize("typed", TYPED)
@pytest.mark.parametrize("template", PUBLIC)
async def test_an_identity_number_as_a_body_code_is_said_back_masked(
    client: httpx.AsyncClient, template: str, typed: str
) -> None:
    problem = _said_nowhere(await client.get(_path(template, typed)), 404)
    assert "*" * 8 in problem["detail"], problem
    assert "/11*" in problem["instance"], problem
    assert problem["instance"].startswith(template.split("{}")[0]), problem


async def test_an_identity_number_as_a_rule_id_is_said_back_masked(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = bearer(await admin_token(app, client))
    # Eighteen digits are an id the route takes (an integer): no such rule.
    problem = _said_nowhere(await client.get("/v1/recognition/rules/110105194912310021", headers=admin), 404)
    assert problem["detail"] == "no recognition rule 11**************21", problem
    assert problem["instance"] == "/v1/recognition/rules/11**************21", problem
    retired = await client.post(
        "/v1/recognition/rules/110105194912310021/retire", json={"reason": "撤回"}, headers=admin
    )
    _said_nowhere(retired, 404)
    # Grouped, it is no integer: refused as bad input, the path still masked.
    grouped = await client.get(f"/v1/recognition/rules/{quote('110105 19491231 0021')}", headers=admin)
    problem = _said_nowhere(grouped, 422)
    assert problem["instance"] == "/v1/recognition/rules/11****************21", problem


async def test_an_identity_number_in_an_unknown_path_is_masked_in_its_instance(client: httpx.AsyncClient) -> None:
    problem = _said_nowhere(await client.get(f"/v1/no-such-thing/{NUMBER}/x"), 404)
    assert problem["instance"] == "/v1/no-such-thing/11**************2X/x", problem


@pytest.mark.parametrize(
    "path",
    [
        "/v1/issuers/NO-SUCH-BODY",
        "/v1/issuers/NO-SUCH-BODY/keys/cert-20261205-12345678",
        "/.well-known/jwt-vc-issuer/v1/issuers/BJ-2026",
        "/v1/no-such-thing/550e8400-e29b-41d4-a716-446655440000/BJ-T-2025-QKCCH3GN-X",
    ],
)
async def test_an_ordinary_path_is_named_as_it_came(client: httpx.AsyncClient, path: str) -> None:
    problem = assert_problem(await client.get(path), 404)
    assert problem["instance"] == path, problem
    code = path.split("/")[-1] if path.startswith("/.well-known") else path.split("/")[3]
    if not path.startswith("/v1/no-such-thing"):
        assert code in problem["detail"], problem


async def test_a_real_kid_is_named_as_it_came_though_its_date_has_eight_digits(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A kid carries its day ("cert-20261205-…"): eight digits, but no identity number; the refusal names it whole."""
    await create_issuer(client, await admin_token(app, client), code="BJ-KID-TEST")
    kid = "cert-20261205-a1b2c3d4"
    problem = assert_problem(await client.get(f"/v1/issuers/BJ-KID-TEST/keys/{kid}"), 404)
    assert kid in problem["detail"], problem
    assert problem["instance"] == f"/v1/issuers/BJ-KID-TEST/keys/{kid}", problem


@pytest.mark.parametrize("page", ["/v/{}", "/s/{}", "/holder/certificates/{}.pdf"])
async def test_a_page_for_an_identity_number_typed_into_its_url_does_not_say_it_back(
    client: httpx.AsyncClient, page: str
) -> None:
    """The not-found page's link to the other language repeated the path whole (``/v/11010519491231002X?lang=en``)."""
    response = await client.get(page.format(NUMBER), headers={"Accept": "text/html"})
    assert response.status_code in (401, 404), response.text
    assert "text/html" in response.headers["content-type"]
    for hidden in (NUMBER, BIRTH):
        assert hidden not in response.text, response.text
    assert "11**************2X" in response.text  # the link to the other language, masked
