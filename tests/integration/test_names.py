"""Real names keep working under the text rules: 中文 names, the middle dot of 少数民族 and transliterated names in
whichever form an input method typed it, Latin names with diacritics however they were composed, and rare 汉字 from
the ideograph planes, newer ones included. (The refusals are in test_bad_awards.py's table.)"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from registry.certificates import imports
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


# One of each range of Unicode's Default_Ignorable_Code_Point: drawn as nothing, whatever the category (the full
# ranges are in tests/unit/test_invisible_characters.py). U+034F let "张\u034f三" be issued, then not found as 张三.
DRAWN_AS_NOTHING = [
    0x00AD, 0x034F, 0x061C, 0x115F, 0x17B4, 0x180F, 0x200B, 0x202A, 0x2060, 0x3164,
    0xFE0F, 0xFEFF, 0xFFA0, 0xFFF0, 0x1BCA0, 0x1D173, 0xE0100,
]  # fmt: skip
INVISIBLE = "invisible formatting characters"


def _invisible(message: str, code: int) -> bool:
    return INVISIBLE in message and f"U+{code:04X}" in message and "at character 2" in message


async def test_a_name_holding_a_character_drawn_as_nothing_is_refused_by_a_single_request(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await ready_issuer(app, client)
    for code in DRAWN_AS_NOTHING:
        body = certificate_body(
            holder={"name": f"张{chr(code)}三", "id_type": "resident_id", "id_number": resident_id()}
        )
        response = await client.post("/v1/certificates", json=body, headers=bearer(token))
        assert response.status_code == 422, (hex(code), response.text)
        named = [e["message"] for e in response.json()["errors"] if e["field"] == "holder.name"]
        assert len(named) == 1, (hex(code), response.json()["errors"])
        assert _invisible(named[0], code), (hex(code), named)


def _batch_rows() -> list[dict[str, object]]:
    return [
        certificate_body(holder={"name": f"张{chr(code)}三", "id_type": "resident_id", "id_number": resident_id()})
        for code in DRAWN_AS_NOTHING
    ]


def _as_csv(rows: list[dict[str, object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        holder = row["holder"]
        assert isinstance(holder, dict)
        cells = {**row, **{f"holder_{key}": value for key, value in holder.items()}}
        writer.writerow(["" if cells.get(column) is None else str(cells[column]) for column in CSV_COLUMNS])
    return buffer.getvalue().encode()


@pytest.mark.parametrize("media_type", ["application/json", "text/csv"])
async def test_a_batch_refuses_each_row_whose_name_holds_a_character_drawn_as_nothing(
    app: FastAPI, client: httpx.AsyncClient, media_type: str
) -> None:
    token = await ready_issuer(app, client)
    rows = _batch_rows()
    content = json.dumps({"certificates": rows}).encode() if media_type == "application/json" else _as_csv(rows)
    headers = {**bearer(token), "Content-Type": media_type, "Idempotency-Key": f"invisible-{media_type}"}
    response = await client.post("/v1/certificate-batches", content=content, headers=headers)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    for row, code in enumerate(DRAWN_AS_NOTHING, start=1):
        named = [e["message"] for e in errors if e.get("row") == row and e["field"] == "holder.name"]
        assert len(named) == 1, (row, hex(code), errors)
        assert _invisible(named[0], code), (row, hex(code), named)


async def test_an_import_rejects_each_row_whose_name_holds_a_character_drawn_as_nothing(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await ready_issuer(app, client)
    path = tmp_path / "awards.csv"
    path.write_bytes(_as_csv(_batch_rows()))
    summary = await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code="BJ-AI-COMMITTEE")
    assert (summary.issued, summary.rejected) == (0, len(DRAWN_AS_NOTHING))
    with path.with_suffix(".rejected.csv").open(encoding="utf-8", newline="") as handle:
        rejected = list(csv.DictReader(handle))
    for row, code in zip(rejected, DRAWN_AS_NOTHING, strict=True):
        assert row["reasons"].startswith("holder.name: "), (hex(code), row)
        assert _invisible(row["reasons"], code), (hex(code), row)
