"""An employer checking number + name, through ``POST /v1/verify`` and the form at ``/v``: a space between two letters
of a name written in words counts ("LIN A" is not LI NA's name), while the holder's own name typed any usual way —
any case, a run of spaces, full-width, a Chinese name with a space in it — still finds the certificate."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from registry.certificates.numbering import new_number
from tests.factories import issued_certificate, ready_issuer, resident_id

# (the holder, names that are the holder's, names that are somebody else's)
CASES = [
    (
        {"name": "LI NA", "id_type": "passport", "id_number": "E12345678"},
        ["LI NA", "li na", "Li  Na", "ＬＩ\u3000ＮＡ"],
        ["LIN A", "Lin A", "LINA", "L INA"],
    ),
    (
        {"name": "ANNA LEE", "id_type": "passport", "id_number": "E23456789"},
        ["Anna Lee", " ANNA   LEE "],
        ["ANN ALEE", "ANNALEE"],
    ),
    (
        {"name": "Maria José", "id_type": "passport", "id_number": "E34567890"},
        ["Maria  José", "MARIA JOSE\u0301"],
        ["Mari AJosé", "MariaJosé"],
    ),
    (
        {"name": "张伟", "id_type": "resident_id", "id_number": resident_id()},
        ["张伟", "张 伟", " 张  伟 "],
        ["张伟伟", "张  玮"],
    ),
    (
        {"name": "阿依古丽·买买提", "id_type": "resident_id", "id_number": resident_id()},
        ["阿依古丽 · 买买提", "阿依古丽・买买提", "阿依古丽 .买买提"],
        ["阿依古丽·买买提江"],
    ),
]


async def _api(client: httpx.AsyncClient, number: str, name: str) -> int:
    response = await client.post("/v1/verify", json={"number": number, "holder_name": name})
    if response.status_code == 200:
        assert response.json()["result"] == "valid", response.text
    else:
        assert response.json()["detail"] == "no certificate with this number and holder name", response.text
    return response.status_code


async def _form(client: httpx.AsyncClient, number: str, name: str) -> int:
    page = await client.post("/v", data={"number": number, "holder_name": name})
    assert page.headers["content-type"].startswith("text/html"), page.headers
    return page.status_code


@pytest.mark.parametrize(("holder", "same", "other"), CASES, ids=[holder["name"] for holder, _, _ in CASES])
async def test_the_holders_name_finds_the_certificate_and_another_spacing_of_its_letters_does_not(
    app: FastAPI, client: httpx.AsyncClient, holder: dict[str, str], same: list[str], other: list[str]
) -> None:
    token = await ready_issuer(app, client)
    number = (await issued_certificate(client, token, holder=holder))["number"]
    for typed in same:
        assert (await _api(client, number, typed), await _form(client, number, typed)) == (200, 200), typed
    for typed in other:
        assert (await _api(client, number, typed), await _form(client, number, typed)) == (404, 404), typed


async def test_a_name_that_is_not_the_holders_answers_like_a_number_that_does_not_exist(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await ready_issuer(app, client)
    number = (await issued_certificate(client, token, holder=CASES[0][0]))["number"]
    moved = await client.post("/v1/verify", json={"number": number, "holder_name": "LIN A"})
    never_issued = new_number(region="BJ", cert_type="title", year=2026)
    unknown = await client.post("/v1/verify", json={"number": never_issued, "holder_name": "LI NA"})
    assert moved.status_code == unknown.status_code == 404
    assert moved.json() == unknown.json()
