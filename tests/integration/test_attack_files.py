"""The files ``registry import`` reads and writes, attacked as a careless or hostile operator would: an output file
that fills the disk midway stops the import saying which rows were committed (never a traceback after which the
claim-code file looks complete), and a re-run writes every claim code; a line gigabytes long (a value pasted by
mistake, a file with no LF in it) is refused as the row it is without being held in memory whole.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

import cli.imports
from cli.main import app as cli_app
from registry.certificates import import_stops, imports
from registry.errors import OutputsNotWritten
from registry.i18n import translate
from tests.factories import resident_id
from tests.integration.cli_support import registry_env
from tests.integration.test_import import HEADER
from tests.integration.test_import_safety import ISSUER, _roll

_real_fdopen = os.fdopen


class _FullDisk(io.RawIOBase):
    """A file on a disk with room for ``room`` more bytes: a write past it fails as a full disk does (ENOSPC)."""

    def __init__(self, fd: int, room: int) -> None:
        self.fd, self.room = fd, room

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return os.write(self.fd, data)

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def _fill_the_disk_at(issued_room: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """FILE.issued.csv gets ``issued_room`` bytes, then the disk is full."""

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(".issued.csv"):
            return _real_fdopen(fd, *args, **kwargs)
        return io.TextIOWrapper(io.BufferedWriter(_FullDisk(fd, issued_room)), encoding="utf-8", newline="")

    monkeypatch.setattr(os, "fdopen", fdopen)


def _issued(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


async def test_a_disk_full_midway_says_what_was_committed_and_a_rerun_writes_every_claim_code(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await _roll(app, client, tmp_path, 3)
    issued_file = path.with_suffix(".issued.csv")
    monkeypatch.setattr(imports, "CHUNK_ROWS", 1)
    _fill_the_disk_at(150, monkeypatch)  # the header and row 1's line fit; row 2's does not

    with pytest.raises(OutputsNotWritten) as stopped:
        await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)
    said = translate(stopped.value.detail, "en")
    assert "the import stopped at row 2: its output files in" in said, said
    assert "cannot be written: no space left on the device" in said, said
    assert "rows 1 to 1 were committed before it (1 issued, 0 already issued, 0 rejected)" in said, said
    assert f"rows 2 to 2 were committed, but their claim codes and reasons may be missing from {issued_file}" in said
    first = _issued(issued_file)
    assert [line[0] for line in first] == ["row", "1"]  # what was written is whole; nothing claims rows 2 and 3

    monkeypatch.undo()  # room again
    monkeypatch.setattr(imports, "CHUNK_ROWS", 1)
    summary = await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)
    assert (summary.issued, summary.already_issued, summary.rejected) == (1, 2, 0)  # no row issued twice
    again = _issued(issued_file)
    assert [line[0] for line in again] == ["row", "1", "2", "3"]
    assert all(line[3] for line in again[1:])  # row 2's claim code, never written before, is there now
    assert again[1] == first[1]
    assert _issued(issued_file.with_name(issued_file.name + ".1")) == first  # the stopped run's file kept


def test_the_command_says_a_full_disk_in_the_readers_words_and_exits_6(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "roll.csv"
    path.write_text(",".join(HEADER) + "\n" + "x\n", encoding="utf-8")

    async def full(*_args: Any, **_kwargs: Any) -> Any:
        raise OutputsNotWritten(
            import_stops.not_written(
                imports.ImportSummary(issued_file=path.with_suffix(".issued.csv")),
                first_row=1,
                last_row=5,
                reason="full",
            )
        )

    monkeypatch.setattr(cli.imports, "_import_with_progress", full)
    env = registry_env(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    result = CliRunner().invoke(cli_app, ["import", str(path), "--issuer", ISSUER, "--lang", "zh"], env=env)
    assert result.exit_code == 6, result.output
    assert "导入在第 1 行停下：无法写入" in result.output
    assert "Traceback" not in result.output


async def test_a_line_gigabytes_long_is_refused_as_its_row_without_being_held_in_memory(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A 48 MiB value with no line break (a scaled-down 2 GB one) between two good rows."""
    path = await _roll(app, client, tmp_path, 0)
    good = ["title", "ENG-AI", "intermediate", "学员", "resident_id", "{id}", "2026-05-01", "", "B"]
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(",".join(good).replace("{id}", resident_id(sequence=1, birth="19900101")) + "\n")
        handle.write("title,ENG-AI,intermediate,")
        for _block in range(48):
            handle.write("A" * (1 << 20))
        handle.write(",resident_id,x,2026-05-01,,B\n")
        handle.write(",".join(good).replace("{id}", resident_id(sequence=2, birth="19900101")) + "\n")

    tracemalloc.start()
    try:
        summary = await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (summary.issued, summary.rejected) == (2, 1)
    assert summary.reasons == {"holder.name": 1}
    assert peak < 24 << 20, f"{peak / (1 << 20):.0f} MiB held to read a 48 MiB line"
    with path.with_suffix(".rejected.csv").open(encoding="utf-8", newline="") as handle:
        (rejected,) = list(csv.DictReader(handle))
    assert rejected["row"] == "2"
    assert "longer than 131072 characters" in rejected["reasons"]
