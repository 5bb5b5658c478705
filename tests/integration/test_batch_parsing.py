"""A large batch's rows are validated in the worker processes (``rows.parsed_chunks``): the same awards and the same
refusals, numbered as in the whole batch, as validating them in process; judged on the serving process's day; a pool
that breaks before or during the batch, or a row that cannot reach a worker, costs only time."""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import os
import signal
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry import clock, workers
from registry.catalogue.models import CertType
from registry.certificates import imports, rows
from registry.certificates.awards import Award, Refusal
from registry.config import Settings
from registry.holders.identity import IdType
from registry.i18n import translate
from tests.conftest import RegistryClock
from tests.factories import bearer, certificate_body, ready_issuer, resident_id, with_wrong_check_char

BATCHES = "/v1/certificate-batches"


async def _parse_batch(settings: Settings, given: Sequence[Any]) -> tuple[list[tuple[int, Award]], list[Refusal]]:
    """Every chunk of ``rows.parsed_chunks``, together."""
    awards: list[tuple[int, Award]] = []
    refusals: list[Refusal] = []
    async for parsed, refused in rows.parsed_chunks(settings, given, today=clock.today()):
        awards += parsed
        refusals += refused
    return awards, refusals


def _good(i: int) -> dict[str, Any]:
    born = f"{1980 + i // 1000}0712"  # a resident id's sequence has three digits: one birth date per thousand rows
    holder = {"name": f"学员{i}", "id_type": "resident_id", "id_number": resident_id(birth=born, sequence=i)}
    return certificate_body(holder=holder, evaluation_batch=None if i % 3 else "2026-BJ-AI-02")


def _mixed(count: int) -> tuple[list[rows.Row], list[int]]:
    """``count`` rows over several chunks, every 97th one bad in its own way; and the bad rows' numbers."""
    spoilers = [
        lambda row: row["holder"].update(id_number=with_wrong_check_char(row["holder"]["id_number"])),
        lambda row: row.update(cert_type="diploma"),
        lambda row: row.pop("catalogue_code"),
        lambda row: row.update(awarded_on="2026-02-30"),
        lambda row: row["holder"].update(name="张\u200b三"),
        lambda row: row.update(unexpected="x"),
    ]
    given: list[rows.Row] = []
    bad: list[int] = []
    for i in range(count):
        row = _good(i)
        if i % 97 == 50:
            spoilers[len(bad) % len(spoilers)](row)
            bad.append(i + 1)
        given.append(row)
    unreadable = min(rows.PARSE_CHUNK_ROWS, count // 2)  # about where the first chunk ends
    given[unreadable] = rows.Unreadable("holder.name", rows.NOT_UTF8, "x")
    return given, sorted({*bad, unreadable + 1})


def _said(refusals: Sequence[Refusal]) -> list[tuple[int, str, str, str]]:
    """Each refusal as both languages read it: a message that lost its template on the way would read differently."""
    return [(r.row, r.field, translate(r.message, "en"), translate(r.message, "zh")) for r in refusals]


def _spy(pool: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the rows handed to ``pool`` for validation."""
    handed: list[int] = []
    real_submit = pool.submit

    def submit(run: Any, function: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(function, "func", None) is rows._parse_plain:  # workers.hand_over submits (_run, function, chunk)
            handed.append(len(args[0]))
        return real_submit(run, function, *args, **kwargs)

    monkeypatch.setattr(pool, "submit", submit)
    return handed


async def _parsed_counting_tasks(
    settings: Settings, given: Sequence[Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[int, Award]], list[Refusal], list[int]]:
    """``_parse_batch`` with the pool's validation tasks counted (rows in each), the pool shut down after."""
    pool = workers.pool(2)
    assert pool is not None
    try:
        with monkeypatch.context() as patched:  # only the spy is undone after: a clock the test froze stays frozen
            handed = _spy(pool, patched)
            awards, refusals = await _parse_batch(settings, given)
    finally:
        workers.shutdown()
    return awards, refusals, handed


async def test_rows_validated_in_the_workers_are_the_awards_and_refusals_of_validating_them_in_process(
    pooled: Settings, monkeypatch: pytest.MonkeyPatch, registry_clock: RegistryClock
) -> None:
    registry_clock.freeze()
    given, bad = _mixed(2 * rows.PARSE_CHUNK_ROWS + 321)  # three chunks, the last a short one
    awards, refusals, handed = await _parsed_counting_tasks(pooled, given, monkeypatch)
    assert handed == [rows.PARSE_CHUNK_ROWS, rows.PARSE_CHUNK_ROWS, 321]  # at most a thousand rows a task
    expected_awards, expected_refusals = rows.parse_rows(given)
    assert awards == expected_awards
    assert {(type(award.cert_type), type(award.id_type)) for _row, award in awards} == {(CertType, IdType)}
    assert _said(refusals) == _said(expected_refusals)
    assert sorted({refusal.row for refusal in refusals}) == bad
    assert len(awards) + len(bad) == len(given)
    assert [number for number, _award in awards] == [n for n in range(1, len(given) + 1) if n not in bad]


async def test_a_small_batch_or_no_workers_is_validated_in_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = [_good(i) for i in range(5)]
    pool = workers.pool(2)
    assert pool is not None
    handed = _spy(pool, monkeypatch)
    try:
        for update in ({"batch_workers": 2, "batch_parallel_min_rows": 6}, {"batch_workers": 0}):
            awards, refusals = await _parse_batch(settings.model_copy(update=update), given)
            assert [number for number, _award in awards] == [1, 2, 3, 4, 5]
            assert refusals == []
    finally:
        monkeypatch.undo()
        workers.shutdown()
    assert handed == []


async def test_a_batch_of_a_few_hundred_rows_is_shared_among_the_workers(
    pooled: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    given, bad = _mixed(301)
    awards, refusals, handed = await _parsed_counting_tasks(pooled, given, monkeypatch)
    assert handed == [151, 150]  # one task for each worker, not all of it for one
    assert sorted({refusal.row for refusal in refusals}) == bad
    assert len(awards) == 301 - len(bad)


async def test_the_workers_judge_birth_dates_on_the_serving_process_s_day(
    pooled: Settings, registry_clock: RegistryClock
) -> None:
    """Whatever the workers' own clocks say, a batch is judged on the day the registry's clock gives: here a day in
    2001, when a holder born on 2001-06-02 was not born yet."""
    registry_clock.set_today(date(2001, 6, 1))
    born_later = _good(0)
    born_later["holder"]["id_number"] = resident_id(birth="20010602", sequence=1)
    given: list[rows.Row] = [*(_good(i) for i in range(rows.PARSE_CHUNK_ROWS + 1)), born_later]
    try:
        awards, refusals = await _parse_batch(pooled, given)
    finally:
        workers.shutdown()
    assert [(r.row, r.field, str(r.message)) for r in refusals] == [
        (len(given), "holder.id_number", "birth date is in the future")
    ]
    assert len(awards) == len(given) - 1
    registry_clock.set_today(date(2001, 6, 2))
    try:
        _awards, refusals = await _parse_batch(pooled, given)
    finally:
        workers.shutdown()
    assert refusals == []


async def test_a_pool_broken_before_the_batch_costs_only_time(pooled: Settings) -> None:
    given, bad = _mixed(rows.PARSE_CHUNK_ROWS * 3 + 7)
    expected: tuple[list[tuple[int, Award]], list[Refusal]] = rows.parse_rows(given)
    try:
        pool = workers.pool(2)
        assert pool is not None
        assert pool.submit(os.getpid).result(timeout=60)
        for pid in list(pool._processes):
            os.kill(pid, signal.SIGKILL)
        awards, refusals = await _parse_batch(pooled, given)
        assert workers.pool(2) is not pool  # the broken pool was let go
    finally:
        workers.shutdown()
    assert awards == expected[0]
    assert _said(refusals) == _said(expected[1])
    assert sorted({refusal.row for refusal in refusals}) == bad


SLOW = "SLOW-CHUNK"  # an evaluation batch label: the chunk that starts with it is read slowly (``_slow_parse``)
_PARSE_PLAIN = rows._parse_plain  # as it is before any test replaces it


def _slow_parse(today: date, given: Sequence[Any]) -> Any:
    """``rows._parse_plain``, a second slower for a chunk whose first row is marked: the chunks after the first are
    still in the pool when the test kills it. Module level, so that a worker can import it."""
    if given and isinstance(given[0], dict) and given[0].get("evaluation_batch") == SLOW:
        time.sleep(1.0)
    return _PARSE_PLAIN(today, given)


async def test_a_pool_broken_in_the_middle_of_a_batch_costs_only_time(
    pooled: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    given, bad = _mixed(rows.PARSE_CHUNK_ROWS * 4 + 7)
    for start in range(rows.PARSE_CHUNK_ROWS, len(given), rows.PARSE_CHUNK_ROWS):
        first = given[start]
        if isinstance(first, dict):
            first["evaluation_batch"] = SLOW
    expected = rows.parse_rows(given)
    monkeypatch.setattr(rows, "_parse_plain", _slow_parse)
    awards: list[tuple[int, Award]] = []
    refusals: list[Refusal] = []
    pool = workers.pool(2)
    assert pool is not None
    killed = False
    try:
        async for parsed, refused in rows.parsed_chunks(pooled, given, today=clock.today()):
            if not killed:  # the first chunk is back; the others are being read, slowly
                for pid in list(pool._processes):
                    os.kill(pid, signal.SIGKILL)
                killed = True
            awards += parsed
            refusals += refused
        assert workers.pool(2) is not pool  # the broken pool was let go, and the rest read here
    finally:
        workers.shutdown()
    assert awards == expected[0]
    assert _said(refusals) == _said(expected[1])
    assert sorted({refusal.row for refusal in refusals}) == bad


def _fails(parent: int, given: Sequence[Any]) -> Any:
    raise ValueError("in a worker") if os.getpid() != parent else RuntimeError("in the process that handed it over")


async def test_an_error_raised_in_a_worker_is_raised_as_it_is_and_not_done_again_here(pooled: Settings) -> None:
    pool = workers.pool(2)
    assert pool is not None
    try:
        handed = workers.hand_over(pool, functools.partial(_fails, os.getpid()), [1, 2, 3], size=2)
        async with contextlib.aclosing(workers.results(handed)) as results:
            with pytest.raises(ValueError, match="in a worker"):
                await anext(results)
        assert workers.pool(2) is pool  # the pool is fine: the work was not
    finally:
        workers.shutdown()


async def test_an_import_with_workers_names_its_bad_rows_by_their_line_in_the_file(
    pooled_app: FastAPI, tmp_path: Path
) -> None:
    """A 2,500-row import chunk is read by the workers in three chunks: the rows set aside carry their row numbers in
    the file, and every other row is issued."""
    transport = httpx.ASGITransport(app=pooled_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
        await ready_issuer(pooled_app, http)
    count = 2 * rows.PARSE_CHUNK_ROWS + 500
    path = tmp_path / "round.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(rows.CSV_COLUMNS)
        for i in range(count):
            holder = _good(i)["holder"]
            number = with_wrong_check_char(holder["id_number"]) if i in (6, 1799) else holder["id_number"]
            writer.writerow(["title", "ENG-AI", "intermediate", holder["name"], "resident_id", number, "2026-05-01"])
    summary = await imports.run_import(
        pooled_app.state.context, pooled_app.state.sessions, path=path, issuer_code="BJ-AI-COMMITTEE"
    )
    assert (summary.issued, summary.rejected) == (count - 2, 2)
    assert summary.rejected_file is not None
    with summary.rejected_file.open(encoding="utf-8") as rejected:
        assert [line["row"] for line in csv.DictReader(rejected)] == ["7", "1800"]


async def test_a_value_nested_too_deep_to_hand_to_a_worker_is_refused_in_its_field(
    pooled_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON takes a value nested ~880 deep, pickle only ~490: such a row cannot reach a worker, and is read here."""
    nested: Any = "senior"
    for _level in range(600):
        nested = [nested]
    transport = httpx.ASGITransport(app=pooled_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
        token = await ready_issuer(pooled_app, http)
        given = [_good(i) for i in range(3)]
        given[1]["level"] = nested
        pool = workers.pool(2)
        assert pool is not None
        handed = _spy(pool, monkeypatch)
        headers = {**bearer(token), "Idempotency-Key": "deep", "Content-Type": "application/json"}
        response = await http.post(BATCHES, content=json.dumps({"certificates": given}), headers=headers)
    assert handed == [2, 1]
    assert response.status_code == 422, response.text
    assert [(error["row"], error["field"]) for error in response.json()["errors"]] == [(2, "level")]


async def test_a_batch_validated_in_the_workers_names_its_bad_rows_by_their_place_in_the_batch(
    pooled_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTP: rows refused in the second and third chunks are reported with their row numbers in the whole batch,
    in row order (a holder repeated from the first chunk named by that row), and nothing is issued."""
    transport = httpx.ASGITransport(app=pooled_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
        token = await ready_issuer(pooled_app, http)
        given = [_good(i) for i in range(2 * rows.PARSE_CHUNK_ROWS + 5)]
        given[rows.PARSE_CHUNK_ROWS + 9]["level"] = "grandmaster"
        given[rows.PARSE_CHUNK_ROWS + 499]["holder"] = dict(given[2]["holder"])
        holder = given[2 * rows.PARSE_CHUNK_ROWS + 2]["holder"]
        holder["id_number"] = with_wrong_check_char(holder["id_number"])
        pool = workers.pool(2)
        assert pool is not None
        handed = _spy(pool, monkeypatch)
        headers = {**bearer(token), "Idempotency-Key": "parsed-in-workers", "Accept-Language": "zh"}
        response = await http.post(BATCHES, json={"certificates": given}, headers=headers)
        monkeypatch.undo()
        assert handed == [rows.PARSE_CHUNK_ROWS, rows.PARSE_CHUNK_ROWS, 5]
        assert response.status_code == 422, response.text
        problem = response.json()
        assert [(error["row"], error["field"]) for error in problem["errors"]] == [
            (rows.PARSE_CHUNK_ROWS + 10, "level"),
            (rows.PARSE_CHUNK_ROWS + 500, "holder.id_number"),
            (2 * rows.PARSE_CHUNK_ROWS + 3, "holder.id_number"),
        ]
        assert problem["errors"][1]["message"] == "与第 3 行的持证人、目录条目和等级相同"
        assert problem["errors"][2]["message"].startswith("校验码不符")  # said in the reader's language
        listed = await http.get("/v1/certificates", headers=bearer(token))
        assert listed.status_code == 200
        assert listed.json()["data"] == []
