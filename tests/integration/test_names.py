"""Real names keep working under the text rules: 中文 names, the middle dot of 少数民族 and transliterated names in
whichever form an input method typed it, Latin names with diacritics however they were composed, and rare 汉字 from
the ideograph planes, newer ones included. (The refusals are in test_bad_awards.py's table.)"""

from __future__ import annotations

import csv
import io
import unicodedata

import httpx
import pytest
from fastapi import FastAPI

from registry.certificates.rows import CSV_COLUMNS
from tests.factories import bearer, certificate_body, issued_certificate, ready_issuer, resident_id

# (as typed, as stored)
NAMES = [
    ("张三", "张三"),
    ("欧阳 娜娜", "欧阳 娜娜"),
    ("阿沛·阿旺晋美", "阿沛·阿旺晋美"),  # U+00B7, as on the identity card
    ("买买提・艾力", "买买提·艾力"),  # U+30FB KATAKANA MIDDLE DOT, from a Japanese-style input method
    ("买买提･艾力", "买买提·艾力"),  # U+FF65, its half-width form
    ("约翰‧史密斯", "约翰·史密斯"),  # U+2027 HYPHENATION POINT (Big5 text)
    ("约翰•史密斯", "约翰·史密斯"),  # U+2022 BULLET
    ("Jose\u0301 Mu\u0308ller", "José Müller"),  # decomposed accents: stored composed (NFC)
    ("Nguyễn Thị Minh Khai", "Nguyễn Thị Minh Khai"),
    ("王\U00020000", "王\U00020000"),  # CJK Extension B
    ("李\U00031350", "李\U00031350"),  # CJK Extension H: unassigned in this Python's Unicode tables, still a 汉字
]


@pytest.mark.parametrize(("typed", "stored"), NAMES, ids=[name for name, _ in NAMES])
async def test_a_real_name_is_issued_as_a_person_would_read_it(
    app: FastAPI, client: httpx.AsyncClient, typed: str, stored: str
) -> None:
    token = await ready_issuer(app, client)
    holder = {"name": typed, "id_type": "resident_id", "id_number": resident_id()}
    issued = await issued_certificate(client, token, holder=holder)
    assert issued["holder"]["name"] == stored
    assert unicodedata.is_normalized("NFC", issued["holder"]["name"])


async def test_the_same_names_are_issued_alike_from_a_csv_batch(app: FastAPI, client: httpx.AsyncClient) -> None:
    token = await ready_issuer(app, client)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    body = certificate_body()
    for typed, _ in NAMES:
        cells = {**body, "holder_name": typed, "holder_id_type": "resident_id", "holder_id_number": resident_id()}
        writer.writerow(["" if cells.get(column) is None else cells[column] for column in CSV_COLUMNS])
    headers = {**bearer(token), "Content-Type": "text/csv", "Idempotency-Key": "names"}
    response = await client.post("/v1/certificate-batches", content=buffer.getvalue().encode(), headers=headers)
    assert response.status_code == 201, response.text
    for (_, stored), item in zip(NAMES, response.json()["certificates"], strict=True):
        shown = await client.get(f"/v1/certificates/{item['number']}", headers=bearer(token))
        assert shown.json()["holder"]["name"] == stored


@pytest.mark.parametrize("asked", ["买买提·艾力", "买买提・艾力", "买买提.艾力", "买买提．艾力", "买买提 · 艾力"])
async def test_an_employer_typing_the_name_with_any_middle_dot_finds_the_certificate(
    app: FastAPI, client: httpx.AsyncClient, asked: str
) -> None:
    token = await ready_issuer(app, client)
    holder = {"name": "买买提·艾力", "id_type": "resident_id", "id_number": resident_id()}
    issued = await issued_certificate(client, token, holder=holder)
    response = await client.post("/v1/verify", json={"number": issued["number"], "holder_name": asked})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "valid"


async def test_an_employer_typing_another_name_finds_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    token = await ready_issuer(app, client)
    holder = {"name": "买买提·艾力", "id_type": "resident_id", "id_number": resident_id()}
    issued = await issued_certificate(client, token, holder=holder)
    response = await client.post("/v1/verify", json={"number": issued["number"], "holder_name": "买买提·艾力江"})
    assert response.status_code == 404
