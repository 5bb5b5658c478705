"""One table of bad awards, sent through every way of issuing: a single POST, a batch (JSON, and CSV where the input
can be written in a cell), and ``registry import``. Each must refuse the same bad row with the same field and the
same message; a single request with the status its reason calls for, a batch with nothing issued, an import with the
row set aside and the good row beside it issued. A rejected identity number is never echoed back.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as default
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.certificates import imports, numbering
from registry.certificates.rows import CSV_COLUMNS
from registry.errors import Forbidden
from tests.checks import assert_problem, leaves_no_trace, row_counts
from tests.factories import (
    admin_token,
    bearer,
    certificate_body,
    create_issuer,
    days_from_today,
    issued_certificate,
    issuer_token,
    resident_id,
    with_wrong_check_char,
)

ISSUER = "BJ-AI-COMMITTEE"


def _holder(number: str, *, id_type: str = "resident_id", name: str = "张三") -> dict[str, str]:
    return {"name": name, "id_type": id_type, "id_number": number}


@dataclass(frozen=True)
class BadAward:
    """A valid row changed in one way (``change``), the field that must be named, the status of a single request,
    and words its message must contain."""

    name: str
    field: str
    status: int
    words: str
    change: Callable[[dict[str, Any]], dict[str, Any]]
    in_csv: bool = True  # whether the bad value can be written in a CSV cell at all
    issuer: dict[str, Any] = default(default_factory=dict)  # how the evaluation body is registered, if not the default
    good: dict[str, Any] = default(default_factory=dict)  # how the good row beside it differs from the default
    duplicate_of_issued: bool = False  # the holder already holds this entry and level from this body

    def __repr__(self) -> str:
        return self.name


def _id(number: str, **kwargs: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {**body, "holder": _holder(number, **kwargs)}


def _set(**values: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {**body, **values}


def _name(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {**body, "holder": {**body["holder"], "name": name}}


def _scope(
    code: str,
    valid_from: str,
    valid_until: str | None,
    levels: tuple[str, ...] = ("intermediate", "associate_senior", "senior"),
) -> dict[str, Any]:
    return {"cert_type": "title", "catalogue_codes": [code], "levels": list(levels), "valid_from": valid_from} | {
        "valid_until": valid_until
    }


_ALWAYS_AI = _scope("ENG-AI", "2020-01-01", None)  # the good row's entry, where the bad row's filing has a gap


_FUTURE = days_from_today(30)
_FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in resident_id())

BAD_AWARDS = [
    # identity documents
    BadAward(
        "wrong check character", "holder.id_number", 422, "check character", _id(with_wrong_check_char(resident_id()))
    ),
    BadAward("30 February", "holder.id_number", 422, "not a real date", _id(resident_id(birth="19990230"))),
    BadAward("born in the future", "holder.id_number", 422, "future", _id(resident_id(birth=_FUTURE.replace("-", "")))),
    BadAward("no such province", "holder.id_number", 422, "region", _id(resident_id(region="990105"))),
    BadAward("no prefecture", "holder.id_number", 422, "prefecture", _id(resident_id(region="110005"))),
    BadAward("15-digit number", "holder.id_number", 422, "18-digit", _id("110105880712123")),
    BadAward("full-width digits", "holder.id_number", 422, "", _id(_FULL_WIDTH)),
    BadAward("passport format", "holder.id_number", 422, "passport", _id("E12#4567", id_type="passport")),
    BadAward("unknown document type", "holder.id_type", 422, "resident_id", _id(resident_id(), id_type="library_card")),
    # names and labels
    BadAward("65-character name", "holder.name", 422, "64 characters", _name("张" * 65)),
    BadAward("blank name", "holder.name", 422, "blank", _name("   ")),
    BadAward("ideographic-space name", "holder.name", 422, "blank", _name("\u3000\u3000")),
    BadAward("zero-width space in name", "holder.name", 422, "invisible", _name("张\u200b三")),
    BadAward("bell in name", "holder.name", 422, "control", _name("张\x07三")),
    BadAward("NUL in name", "holder.name", 422, "control", _name("张\x00三")),
    BadAward("newline in name", "holder.name", 422, "control", _name("张\n三")),
    BadAward("line separator in name", "holder.name", 422, "line breaks", _name("张\u2028三")),
    BadAward("right-to-left override in name", "holder.name", 422, "invisible", _name("张\u202e三")),
    BadAward("byte-order mark in name", "holder.name", 422, "invisible", _name("张\ufeff三")),
    # The e-certificate printed these as empty boxes; a name carrying an identity number was shown to every verifier.
    BadAward("Hangul name", "holder.name", 422, "U+AE40 HANGUL SYLLABLE GIM at character 1", _name("김민준")),
    BadAward("emoji in name", "holder.name", 422, "cannot be printed on the e-certificate", _name("张三😀")),
    BadAward("Arabic name", "holder.name", 422, "none of its fonts", _name("محمد علي")),
    BadAward("identity number as name", "holder.name", 422, "more than 5 digits", _name("110105197003136662")),
    BadAward("identity number in name", "holder.name", 422, "id_number", _name("张三 1101 0519 7003 1366 62")),
    BadAward("full-width digits in name", "holder.name", 422, "digits", _name("张三１１０１０５１９")),
    BadAward("circled digits in name", "holder.name", 422, "digits", _name("①①⓪①⓪⑤①⑨⑦⓪⓪③①③⑥⑥⑥②")),
    BadAward("ideograph no font has yet", "holder.name", 422, "U+9FF0", _name("\u9ff0强")),
    # invisible and bidirectional characters (Unicode Cf), each named with its code point
    BadAward("left-to-right isolate in name", "holder.name", 422, "U+2066 LEFT-TO-RIGHT", _name("\u2066张三\u2069")),
    BadAward("pop directional isolate in name", "holder.name", 422, "U+2069 POP", _name("张三\u2069")),
    BadAward("word joiner in name", "holder.name", 422, "U+2060 WORD JOINER", _name("张\u2060三")),
    BadAward("soft hyphen in name", "holder.name", 422, "U+00AD SOFT HYPHEN", _name("Zhang\u00adSan")),
    BadAward("Arabic letter mark in name", "holder.name", 422, "U+061C ARABIC LETTER MARK", _name("张\u061c三")),
    BadAward("tag characters in name", "holder.name", 422, "U+E0041 TAG", _name("张三\U000e0041\U000e007f")),
    BadAward("private-use character in name", "holder.name", 422, "private-use", _name("张\ue000三")),
    BadAward("unassigned code point in name", "holder.name", 422, "not characters in Unicode", _name("张\u0378三")),
    # a lone surrogate cannot be written in UTF-8 (so not in a CSV file), only as a JSON escape
    BadAward("unpaired surrogate in name", "holder.name", 422, "surrogate", _name("张\ud800三"), in_csv=False),
    BadAward("50 combining marks in name", "holder.name", 422, "combining marks", _name("张三" + "\u0301" * 50)),
    BadAward("3 combining marks after NFC", "holder.name", 422, "combining marks", _name("Zx\u0301\u0302\u0303")),
    BadAward(
        "missing name",
        "holder.name",
        422,
        "required",
        lambda body: {**body, "holder": {k: v for k, v in body["holder"].items() if k != "name"}},
    ),
    BadAward("65-character batch label", "evaluation_batch", 422, "64 characters", _set(evaluation_batch="B" * 65)),
    BadAward("a blank batch label", "evaluation_batch", 422, "must not be empty", _set(evaluation_batch="   ")),
    # Signed with the certificate, shown to the body, the bureau and the export: an identity number would stay whole.
    BadAward(
        "identity number in batch label",
        "evaluation_batch",
        422,
        "must not hold an identity number",
        _set(evaluation_batch=f"2026 {resident_id()}"),
    ),
    BadAward("unknown field", "colour", 422, "unknown field", _set(colour="red"), in_csv=False),
    BadAward(
        "unknown holder field",
        "holder.nickname",
        422,
        "unknown field",
        lambda body: {**body, "holder": {**body["holder"], "nickname": "小张"}},
        in_csv=False,
    ),
    # catalogue and ladder
    BadAward("unknown cert type", "cert_type", 422, "title", _set(cert_type="diploma")),
    BadAward(
        "unknown catalogue entry", "catalogue_code", 422, "no title catalogue entry", _set(catalogue_code="ENG-NOPE")
    ),
    BadAward(
        "entry of the other type",
        "catalogue_code",
        422,
        "no skill catalogue entry ENG-EAI",
        _set(cert_type="skill", level="level_3"),
    ),
    BadAward("level off the ladder", "level", 422, "grandmaster is not a title level", _set(level="grandmaster")),
    BadAward("skill level on a title", "level", 422, "level_3 is not a title level", _set(level="level_3")),
    BadAward("level the entry lacks", "level", 422, "ENG-EAI is not awarded at level clerk", _set(level="clerk")),
    BadAward("before the entry existed", "awarded_on", 422, "not in force", _set(awarded_on="2025-06-30")),
    # dates
    BadAward("30 February award", "awarded_on", 422, "a real calendar date", _set(awarded_on="2026-02-30")),
    BadAward("award in the future", "awarded_on", 422, "in the future", _set(awarded_on=_FUTURE)),
    BadAward("award before 1949-10-01", "awarded_on", 422, "1949-10-01", _set(awarded_on="1949-09-30")),
    BadAward("validity ends before award", "valid_until", 422, "after awarded_on", _set(valid_until="2026-06-29")),
    BadAward("validity ends on award day", "valid_until", 422, "after awarded_on", _set(valid_until="2026-06-30")),
    # Pydantic alone took these as days: a number as seconds since 1970 (20260630 too), a datetime at midnight.
    BadAward("award day as Unix seconds", "awarded_on", 422, "YYYY-MM-DD", _set(awarded_on=1782777600)),
    BadAward("award day as YYYYMMDD", "awarded_on", 422, "YYYY-MM-DD", _set(awarded_on="20260630")),
    BadAward("award day as a datetime", "awarded_on", 422, "YYYY-MM-DD", _set(awarded_on="2026-06-30T00:00:00Z")),
    BadAward("award day in full-width digits", "awarded_on", 422, "YYYY-MM-DD", _set(awarded_on="２０２６-０６-３０")),
    BadAward("validity end as 0", "valid_until", 422, "YYYY-MM-DD", _set(valid_until=0)),
    # the filed scope: each refusal names its real cause (entry, level or date) and what the filing does hold
    BadAward(
        "level outside the filing",
        "level",
        403,
        "outside the evaluation body's filed scope: ENG-EAI is filed at levels intermediate, associate_senior, senior, "
        "not at assistant",
        _set(level="assistant"),
    ),
    BadAward(
        "level filed only before an amendment",
        "level",
        403,
        "ENG-EAI is filed at levels senior, not at associate_senior",
        lambda body: body,
        issuer={
            "scopes": [
                _scope("ENG-EAI", "2020-01-01", "2026-03-31"),
                _scope("ENG-EAI", "2026-04-01", None, levels=("senior",)),
            ]
        },
        good={"level": "senior"},
    ),
    BadAward(
        "entry outside the filing",
        "catalogue_code",
        403,
        "outside the evaluation body's filed scope: it has not filed ENG-ROBOT",
        _set(catalogue_code="ENG-ROBOT"),
    ),
    BadAward(
        "award before the filing",
        "awarded_on",
        403,
        "outside the evaluation body's filed scope on that date: its filing for ENG-EAI at level associate_senior "
        "begins on 2026-03-01",
        _set(awarded_on="2026-02-15"),
        issuer={"valid_from": "2026-03-01"},
        good={"awarded_on": "2026-03-15"},
    ),
    BadAward(
        "award after the filing ended",
        "awarded_on",
        403,
        "its filing for ENG-EAI at level associate_senior ended on 2026-03-31",
        lambda body: body,
        issuer={"scopes": [_scope("ENG-EAI", "2020-01-01", "2026-03-31"), _ALWAYS_AI]},
        good={"catalogue_code": "ENG-AI"},
    ),
    BadAward(
        "award between two filings",
        "awarded_on",
        403,
        "its filing for ENG-EAI at level associate_senior ended on 2026-03-31 and starts again on 2026-06-01",
        _set(awarded_on="2026-04-15"),
        issuer={"scopes": [_scope("ENG-EAI", "2020-01-01", "2026-03-31"), _scope("ENG-EAI", "2026-06-01", None)]},
        good={"awarded_on": "2026-06-15"},
    ),
    BadAward(
        "filing lapsed",
        "catalogue_code",
        403,
        "the evaluation body's filing for ENG-EAI at level associate_senior ended on 2026-03-31 and is not in force "
        "today",
        _set(awarded_on="2026-02-15"),
        issuer={"scopes": [_scope("ENG-EAI", "2026-01-01", "2026-03-31"), _ALWAYS_AI]},
        good={"catalogue_code": "ENG-AI"},
    ),
    # duplicates
    BadAward(
        "holder already holds it",
        "holder.id_number",
        409,
        "already issued this holder a live certificate for this entry and level",
        lambda body: body,
        duplicate_of_issued=True,
    ),
]


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        flat = {**row, **{f"holder_{key}": value for key, value in row["holder"].items()}}
        writer.writerow(["" if flat.get(column) is None else str(flat[column]) for column in CSV_COLUMNS])
    return buffer.getvalue()


def _json(body: dict[str, Any]) -> bytes:
    """A JSON request body as the standard library writes it (ASCII, escapes): httpx cannot send a lone surrogate."""
    return json.dumps(body).encode()


def _json_with(token: str) -> dict[str, str]:
    return {**bearer(token), "Content-Type": "application/json"}


def _message(problem: dict[str, Any], field: str, *, row: int | None = None) -> str:
    named: list[str] = [e["message"] for e in problem["errors"] if e["field"] == field and e.get("row") == row]
    assert len(named) == 1, f"{field} (row {row}) should be named once in {problem['errors']}"
    return named[0]


async def _refused_by_single_post(
    app: FastAPI, client: httpx.AsyncClient, token: str, case: BadAward, bad: dict[str, Any]
) -> str:
    response = await leaves_no_trace(
        app, client.post("/v1/certificates", content=_json(bad), headers=_json_with(token))
    )
    problem = assert_problem(
        response, case.status, field=case.field, message=case.words, secret=bad["holder"]["id_number"]
    )
    return _message(problem, case.field)


async def _refused_by_batch(
    app: FastAPI, client: httpx.AsyncClient, token: str, content: bytes, media_type: str, secret: str
) -> dict[str, Any]:
    headers = {**bearer(token), "Content-Type": media_type, "Idempotency-Key": f"bad-{media_type}"}
    response = await leaves_no_trace(app, client.post("/v1/certificate-batches", content=content, headers=headers))
    return assert_problem(response, 422, slug="batch-rejected", secret=secret)


@pytest.mark.parametrize("case", BAD_AWARDS, ids=[case.name for case in BAD_AWARDS])
async def test_every_entry_point_refuses_a_bad_award_with_the_same_field_and_message(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path, case: BadAward
) -> None:
    await create_issuer(client, await admin_token(app, client), **case.issuer)
    token = await issuer_token(app, client, ISSUER)
    bad = case.change(certificate_body(holder=_holder(resident_id())))
    expected_words = case.words
    if case.duplicate_of_issued:
        held = await issued_certificate(client, token, holder=bad["holder"])
        expected_words = numbering.format_number(held["number"])
    good = certificate_body(holder=_holder(resident_id(), name="李四"), **case.good)
    secret = bad["holder"]["id_number"]

    message = await _refused_by_single_post(app, client, token, case, bad)
    assert expected_words in message

    # json, not orjson: the standard library escapes what orjson refuses to write (a lone surrogate).
    batch = await _refused_by_batch(
        app, client, token, json.dumps({"certificates": [good, bad]}).encode(), "application/json", secret
    )
    assert _message(batch, case.field, row=2) == message
    assert {e["row"] for e in batch["errors"]} == {2}, batch["errors"]
    if case.in_csv:
        batch = await _refused_by_batch(app, client, token, _csv([good, bad]).encode(), "text/csv", secret)
        assert _message(batch, case.field, row=2) == message

    if not case.in_csv:
        return
    path = tmp_path / "awards.csv"
    path.write_text(_csv([good, bad]), encoding="utf-8")
    before = (await row_counts(app))["certificates"]
    summary = await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)
    assert (summary.issued, summary.rejected) == (1, 1)
    assert (await row_counts(app))["certificates"] == before + 1
    with path.with_suffix(".rejected.csv").open(encoding="utf-8", newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert [row["row"] for row in rejected] == ["2"]
    assert f"{case.field}: {message}" in rejected[0]["reasons"]

    correction = _correction_of(case, good, bad)
    if correction is None:
        return
    with path.with_suffix(".issued.csv").open(encoding="utf-8", newline="") as handle:
        [issued] = list(csv.DictReader(handle))  # the good row, issued by the import above
    response = await leaves_no_trace(
        app,
        client.post(
            f"/v1/certificates/{issued['number']}/correct", content=_json(correction), headers=_json_with(token)
        ),
    )
    field = _CORRECTION_FIELDS.get(case.field, case.field)
    assert _message(assert_problem(response, case.status, field=field), field) == message


# How the fields of a row are named in a correction's body (`/correct` changes an issued certificate's award).
_CORRECTION_FIELDS = {"holder.name": "holder_name"}
_CORRECTABLE = ("catalogue_code", "level", "awarded_on", "valid_until", "evaluation_batch")


def _correction_of(case: BadAward, good: dict[str, Any], bad: dict[str, Any]) -> dict[str, Any] | None:
    """The correction that would turn the good certificate's award into the bad row's, if a correction can say it:
    only awards differing in correctable fields, with the value given (not a field left out)."""
    if case.duplicate_of_issued or case.field.startswith("holder.id") or set(bad) != set(good):
        return None
    if bad["cert_type"] != good["cert_type"] or set(bad["holder"]) != set(good["holder"]):
        return None
    changes: dict[str, Any] = {key: bad[key] for key in _CORRECTABLE if bad[key] != good[key]}
    if bad["holder"]["name"] != good["holder"]["name"] and case.field == "holder.name":
        changes["holder_name"] = bad["holder"]["name"]
    return {"reason": "更正", **changes} if changes else None


async def test_a_suspended_body_is_refused_by_every_entry_point(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    token = await issuer_token(app, client, ISSUER)
    earlier = await issued_certificate(client, token)
    suspended = await client.post(f"/v1/issuers/{ISSUER}/suspend", json={"reason": "整改"}, headers=bearer(admin))
    assert suspended.status_code == 200, suspended.text
    row = certificate_body(holder=_holder(resident_id()))
    single = await leaves_no_trace(app, client.post("/v1/certificates", json=row, headers=bearer(token)))
    message = assert_problem(single, 403, slug="forbidden")["detail"]
    headers = {**bearer(token), "Idempotency-Key": "while-suspended"}
    batch = await leaves_no_trace(
        app, client.post("/v1/certificate-batches", json={"certificates": [row]}, headers=headers)
    )
    assert assert_problem(batch, 403)["detail"] == message
    correction = await leaves_no_trace(
        app,
        client.post(
            f"/v1/certificates/{earlier['number']}/correct",
            json={"reason": "x", "level": "senior"},
            headers=bearer(token),
        ),
    )
    assert assert_problem(correction, 403)["detail"] == message
    path = tmp_path / "rows.csv"
    path.write_text(_csv([row]), encoding="utf-8")
    with pytest.raises(Forbidden, match=re.escape(message)):
        await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)
