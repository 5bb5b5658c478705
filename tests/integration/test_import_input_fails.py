"""`registry import` whose file stops being readable once the import has begun: a disk that fails (EIO) midway or while
the rows are counted, a file cut short or replaced while it is read. Each ends in one message in the reader's language
(exit 7) naming the file, the rows committed and where their claim codes are, and that running the same command again
carries on; nothing of the chunk it was reading is issued, no output row is half written, and the re-run issues no row
twice. It used to end in a traceback (exit 1); a file cut short even went on as if it had ended there, issuing its last,
cut line as a row (a holder's name cut short).

A file is also stopped so (exit 7) when it is only touched, moved (its folder renamed) or, being a link, pointed
elsewhere while it is read, and when its last line has no line break (an export still being written, a copy cut
short: that row may be cut, as a name cut short), before any row of its last chunk is issued. Another file put at the
same path after a stop issues its own rows once; Windows line ends and a BOM read as the same rows.

A pipe (a FIFO, /dev/stdin fed by one) is refused before anything (exit 2): the import reads its file more than once,
so the second reading of a pipe found nothing (or waited for a writer that had gone), and a writer that stops early is
only the end of the data, which no reader can tell from the end of the file. Bytes that are not UTF-8 far into the file
were never a read error: the row holding them is rejected, naming its column, and the others are issued.

The command runs as an operator runs it, in a process of its own, with small chunks; the failing disk is a reader
that raises EIO from a given byte on, and the file is cut short or replaced once the first chunk is committed.
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from registry.db import transaction
from tests.factories import admin_token, create_issuer, resident_id
from tests.integration.cli_support import registry_env
from tests.integration.test_import import HEADER
from tests.integration.test_import_language import CHINESE, ENGLISH, ISSUER

# The registry command with chunks of CHUNK_ROWS rows. EIO_OPEN ("text 2": the second time the file is opened as text,
# which is the chunks' reading; "binary 2": the row count's) gives that reading a disk failing from byte EIO_AT on.
# AFTER_FIRST_CHUNK ("truncate BYTES", "replace PATH", "touch", "rename FOLDER" or "relink PATH") changes the file once
# the first chunk is committed.
IMPORT_READING_BADLY = """
import errno, io, os, pathlib, sys
from registry.certificates import imports

imports.CHUNK_ROWS = int(os.environ["CHUNK_ROWS"])
target = os.environ["IMPORT_FILE"]
eio_open, eio_at = os.environ.get("EIO_OPEN", ""), int(os.environ.get("EIO_AT", "0"))
after_first = os.environ.get("AFTER_FIRST_CHUNK", "").split(" ", 1)


class FailingDisk(io.RawIOBase):
    def __init__(self, fd):
        self.fd, self.left = fd, eio_at

    def readable(self):
        return True

    def fileno(self):
        return self.fd

    def readinto(self, buffer):
        if self.left <= 0:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        data = os.read(self.fd, min(len(buffer), self.left))
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)

    def close(self):
        if not self.closed:
            os.close(self.fd)
        super().close()


real_open, opened = pathlib.Path.open, []


def open_(self, mode="r", buffering=-1, encoding=None, errors=None, newline=None):
    if str(self) == target:
        opened.append("binary" if "b" in mode else "text")
        if eio_open == f"{opened[-1]} {opened.count(opened[-1])}":
            reader = io.BufferedReader(FailingDisk(os.open(self, os.O_RDONLY)))
            if "b" in mode:
                return reader
            return io.TextIOWrapper(reader, encoding=encoding, errors=errors, newline=newline)
    return real_open(self, mode, buffering, encoding, errors, newline)


pathlib.Path.open = open_
import_chunk, chunks_done = imports._import_chunk, []


async def changing_the_file_after_the_first(*args, **options):
    done = await import_chunk(*args, **options)
    chunks_done.append(1)
    if len(chunks_done) == 1 and after_first[0] == "truncate":
        os.truncate(target, int(after_first[1]))
    elif len(chunks_done) == 1 and after_first[0] == "replace":
        os.replace(after_first[1], target)
    elif len(chunks_done) == 1 and after_first[0] == "touch":  # backup software, `touch`: the mtime alone
        os.utime(target, ns=(os.stat(target).st_atime_ns, os.stat(target).st_mtime_ns + 1_000_000_000))
    elif len(chunks_done) == 1 and after_first[0] == "rename":  # the folder renamed while the import runs
        os.rename(os.path.dirname(target), after_first[1])
    elif len(chunks_done) == 1 and after_first[0] == "relink":  # the link imported pointed at another file
        os.symlink(after_first[1], target + ".link")
        os.replace(target + ".link", target)
    return done


imports._import_chunk = changing_the_file_after_the_first
from cli.main import main
sys.argv[0] = "registry"
main()
"""
# The holder's name last, so that a line cut short is a row whose name is cut short.
COLUMNS = [column for column in HEADER if column != "holder_name"] + ["holder_name"]


def _line(number: int) -> bytes:
    cells = ["title", "ENG-AI", "intermediate", "resident_id", resident_id(sequence=number, birth="19900101")]
    return ",".join([*cells, "2026-05-01", "", "B", f"导入{number}号"]).encode() + b"\n"


def _roll_bytes(count: int, *, gap_after: int | None = None, gap: int = 0) -> bytes:
    """A header and ``count`` rows (row N is ``_line(N)``); ``gap`` blank lines (skipped by the reader) after row
    ``gap_after``, which put the rows after them beyond what a reader has read ahead of the row it is at."""
    lines = [",".join(COLUMNS).encode() + b"\n"]
    for number in range(1, count + 1):
        lines.append(_line(number))
        if number == gap_after:
            lines.append(b"\n" * gap)
    return b"".join(lines)


async def _run(path: Path, database_url: str, locale: dict[str, str], **extra: str) -> tuple[int, str, str]:
    env = {**os.environ, **registry_env(database_url), **locale, "IMPORT_FILE": str(path), **extra}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        IMPORT_READING_BADLY,
        "import",
        str(path),
        "--issuer",
        ISSUER,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"registry import {path} did not end") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _folder(app: FastAPI, client: httpx.AsyncClient, tmp_path: Path) -> Path:
    await create_issuer(client, await admin_token(app, client))
    folder = tmp_path / "import"
    folder.mkdir()
    return folder


async def _certificates(app: FastAPI) -> int:
    async with transaction(app.state.sessions) as session:
        return int((await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one())


def _csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _assert_committed_rows_written(path: Path, rows: int) -> list[list[str]]:
    """FILE.issued.csv holds every committed row whole, with its claim code, and nothing else; FILE.rejected.csv only
    its header. The issued lines."""
    issued = _csv(path.with_suffix(".issued.csv"))
    assert issued[0] == ["row", "number", "verify_url", "claim_code"]
    assert [line[0] for line in issued[1:]] == [str(row) for row in range(1, rows + 1)], issued
    assert all(len(line) == 4 and all(line) for line in issued[1:]), issued  # no half-written line
    assert _csv(path.with_suffix(".rejected.csv")) == [["row", *COLUMNS, "reasons"]]
    return issued


def _stop_lines(err: str) -> list[str]:
    return [line.strip() for line in err.strip().splitlines()[-4:]]


async def _rerun_carries_on(
    app: FastAPI, path: Path, database_url: str, *, rows: int, first: list[list[str]], **chunks: str
) -> None:
    """The same command again, on the whole file of ``rows`` rows: every row issued once, the claim codes committed
    before (``first``, FILE.issued.csv as the stopped run left it) kept."""
    code, out, err = await _run(path, database_url, ENGLISH, **chunks)
    assert code == 0, out + err
    committed = len(first) - 1
    assert f"rows {rows}  issued {rows - committed}  already issued {committed}  rejected 0" in out, out
    assert await _certificates(app) == rows  # no row issued twice
    again = _csv(path.with_suffix(".issued.csv"))
    assert [line[0] for line in again[1:]] == [str(row) for row in range(1, rows + 1)]
    assert again[: len(first)] == first  # the same claim codes for the rows committed before
    assert _csv(Path(f"{path.with_suffix('.issued.csv')}.1")) == first  # the stopped run's file, kept


async def test_a_disk_failing_midway_says_what_was_committed_issues_nothing_of_the_chunk_and_a_rerun_carries_on(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    path.write_bytes(_roll_bytes(6))
    fails_at = len(_roll_bytes(5)) + 20  # in row 6: rows 5 and 6 are the third chunk, under way
    chunks = {"CHUNK_ROWS": "2"}

    code, out, err = await _run(path, database_url, ENGLISH, **chunks, EIO_OPEN="text 2", EIO_AT=str(fails_at))
    assert code == 7, out + err
    assert "Traceback" not in err, err
    issued, rejected = path.with_suffix(".issued.csv"), path.with_suffix(".rejected.csv")
    assert _stop_lines(err) == [
        f"error: the import stopped at row 5: {path} could not be read any further: input/output error",
        f"rows 1 to 4 were committed before it (4 issued, 0 already issued, 0 rejected): their claim codes are in "
        f"{issued}, the rejected rows in {rejected}",
        "nothing from row 5 on was committed",
        "once the file can be read whole again, run the same command again to carry on: no row is issued twice, and "
        "this run's files are kept beside the new ones as numbered backups",
    ], err
    assert await _certificates(app) == 4  # row 5, read before the disk failed, is not issued
    first = _assert_committed_rows_written(path, 4)

    await _rerun_carries_on(app, path, database_url, rows=6, first=first, **chunks)


async def test_a_disk_failing_as_the_rows_are_counted_stops_before_the_first_row(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    path.write_bytes(_roll_bytes(3))

    code, out, err = await _run(path, database_url, CHINESE, CHUNK_ROWS="2", EIO_OPEN="binary 2", EIO_AT="0")
    assert code == 7, out + err
    assert "Traceback" not in err, err
    assert _stop_lines(err)[-3:] == [
        f"错误：导入在第 1 行停下：无法继续读取 {path}：输入/输出错误",
        "第 1 行起均未提交",
        "待该文件能再次完整读取后，再次运行同一命令即可继续：任何一行都不会重复签发，本次写出的文件会以编号备份的形式"
        "保留在新文件旁",
    ], err
    assert await _certificates(app) == 0
    assert sorted(entry.name for entry in path.parent.iterdir()) == ["roll.csv"]  # no output file begun

    code, out, err = await _run(path, database_url, ENGLISH, CHUNK_ROWS="2")
    assert code == 0, out + err
    assert "rows 3  issued 3  already issued 0  rejected 0" in out, out


@pytest.mark.parametrize("change", ["cut short", "replaced"])
async def test_a_file_changed_while_it_is_read_stops_before_a_row_read_from_it_is_issued(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path, change: str
) -> None:
    folder = await _folder(app, client, tmp_path)
    path = folder / "roll.csv"
    whole = _roll_bytes(12, gap_after=6, gap=9000)
    path.write_bytes(whole)
    if change == "cut short":  # in row 9, just before the last character of its name: "导入9" for "导入9号"
        action = f"truncate {whole.index(_line(9)) + len(_line(9)) - len('号'.encode()) - 1}"
    else:  # another file moved over it (as an editor saves), a name in it changed
        other = folder / "roll.saved"
        other.write_bytes(whole.replace("导入10号".encode(), "导入10号乙".encode()))
        action = f"replace {other}"
    chunks = {"CHUNK_ROWS": "4"}

    code, out, err = await _run(path, database_url, CHINESE, **chunks, AFTER_FIRST_CHUNK=action)
    assert code == 7, out + err
    assert "Traceback" not in err, err
    assert _stop_lines(err) == [
        f"错误：导入在第 5 行停下：无法继续读取 {path}：读取期间文件被改动（被截短、写入、移走或替换）",
        f"此前已提交第 1 至 4 行（新签发 4，此前已签发 0，拒收 0）：领取码在 {path.with_suffix('.issued.csv')}，"
        f"被拒收的行在 {path.with_suffix('.rejected.csv')}",
        "第 5 行起均未提交",
        "待该文件能再次完整读取后，再次运行同一命令即可继续：任何一行都不会重复签发，本次写出的文件会以编号备份的形式"
        "保留在新文件旁",
    ], err
    assert await _certificates(app) == 4  # nothing read after the change, nor the cut line, was issued
    first = _assert_committed_rows_written(path, 4)

    path.write_bytes(whole)  # the file as it should be
    await _rerun_carries_on(app, path, database_url, rows=12, first=first, **chunks)


async def test_a_fifo_is_refused_before_anything_as_not_a_file(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    folder = await _folder(app, client, tmp_path)
    whole = folder / "whole.csv"
    whole.write_bytes(_roll_bytes(3))
    fifo = folder / "roll.csv"
    os.mkfifo(fifo, 0o600)
    writer = await asyncio.create_subprocess_exec("sh", "-c", f"exec cat '{whole}' > '{fifo}'")  # as an operator would
    try:
        code, out, err = await _run(fifo, database_url, ENGLISH, CHUNK_ROWS="2")
    finally:
        if writer.returncode is None:
            writer.kill()  # still waiting for a reader: the import never opened the pipe
        await writer.wait()
    assert code == 2, out + err
    said = " ".join(err.split())
    assert said == (
        f"error: {fifo}: is a pipe, a socket or a device, not a file: the import reads its file more than once (and a "
        "re-run reads it again), so save what it holds to a file and import that"
    ), err
    assert sorted(entry.name for entry in folder.iterdir()) == ["roll.csv", "whole.csv"]  # no output file
    assert await _certificates(app) == 0


async def test_bytes_not_utf8_after_the_first_chunk_reject_their_row_and_the_others_are_issued_once(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    good = _roll_bytes(5)
    path.write_bytes(good.replace("导入4号".encode(), "导入4号".encode("gbk")))  # row 4, in the second chunk

    code, out, err = await _run(path, database_url, ENGLISH, CHUNK_ROWS="2")
    assert code == 3, out + err
    assert "rows 5  issued 4  already issued 0  rejected 1" in out, out
    rejected = _csv(path.with_suffix(".rejected.csv"))
    assert [line[0] for line in rejected[1:]] == ["4"]
    assert rejected[1][-1].startswith("holder.name: is not UTF-8 text"), rejected
    issued = _csv(path.with_suffix(".issued.csv"))
    assert [line[0] for line in issued[1:]] == ["1", "2", "3", "5"]
    assert await _certificates(app) == 4

    code, out, err = await _run(path, database_url, ENGLISH, CHUNK_ROWS="2")  # the same file again: nothing twice
    assert code == 3, out + err
    assert "rows 5  issued 0  already issued 4  rejected 1" in out, out
    assert await _certificates(app) == 4


UNENDED = (
    "its last line has no line break at its end, as a file still being written or cut short ends, so its last row may "
    "be cut short (if the file is whole, add a line break at the end of its last line)"
)
CHANGED = "it was changed while being read (cut short, written to, moved or replaced)"


def _stopped_at_row_5(path: Path, err: str, reason: str) -> None:
    """The four lines of a stop at row 5 (``reason``) with rows 1 to 4 committed, their outputs named beside path."""
    outputs = path
    assert _stop_lines(err) == [
        f"error: the import stopped at row 5: {path} could not be read any further: {reason}",
        f"rows 1 to 4 were committed before it (4 issued, 0 already issued, 0 rejected): their claim codes are in "
        f"{outputs.with_suffix('.issued.csv')}, the rejected rows in {outputs.with_suffix('.rejected.csv')}",
        "nothing from row 5 on was committed",
        "once the file can be read whole again, run the same command again to carry on: no row is issued twice, and "
        "this run's files are kept beside the new ones as numbered backups",
    ], err


@pytest.mark.parametrize("rows", [5, 6])  # the cut row alone in the last chunk, or filling it
async def test_a_file_still_being_written_whose_last_line_is_cut_issues_nothing_of_its_last_chunk(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path, rows: int
) -> None:
    """An export (or a copy) not finished when the import reads to its end: its last line stops mid-row, "导入N" for
    "导入N号", and the file does not change while it is read. That row used to be issued with its name cut short (exit
    0), and the whole row, once written, was then refused as a duplicate: the wrong name stood."""
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    whole = _roll_bytes(rows)
    path.write_bytes(whole[: -len("号\n".encode())])
    chunks = {"CHUNK_ROWS": "2"}

    code, out, err = await _run(path, database_url, ENGLISH, **chunks)
    assert code == 7, out + err
    assert "Traceback" not in err, err
    _stopped_at_row_5(path, err, UNENDED)
    assert await _certificates(app) == 4  # neither the cut row nor the rows read with it
    first = _assert_committed_rows_written(path, 4)

    path.write_bytes(whole)  # the export has ended
    await _rerun_carries_on(app, path, database_url, rows=rows, first=first, **chunks)
    async with transaction(app.state.sessions) as session:
        names = (await session.execute(text("SELECT holder_name FROM certificates"))).scalars().all()
    assert sorted(names) == sorted(f"导入{number}号" for number in range(1, rows + 1))


async def test_a_whole_file_without_a_last_line_break_is_issued_once_one_is_added(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    whole = _roll_bytes(6)
    path.write_bytes(whole.removesuffix(b"\n"))  # as some editors save it
    chunks = {"CHUNK_ROWS": "4"}

    code, out, err = await _run(path, database_url, ENGLISH, **chunks)
    assert code == 7, out + err
    assert _stop_lines(err)[0].endswith(f"{path} could not be read any further: {UNENDED}"), err
    first = _assert_committed_rows_written(path, 4)

    path.write_bytes(whole)
    await _rerun_carries_on(app, path, database_url, rows=6, first=first, **chunks)


async def test_windows_line_ends_and_a_bom_read_as_the_same_rows(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _roll_bytes(5).replace(b"\n", b"\r\n"))

    code, out, err = await _run(path, database_url, ENGLISH, CHUNK_ROWS="2")
    assert code == 0, out + err
    assert "rows 5  issued 5  already issued 0  rejected 0" in out, out
    async with transaction(app.state.sessions) as session:
        names = (await session.execute(text("SELECT holder_name FROM certificates"))).scalars().all()
    assert sorted(names) == sorted(f"导入{number}号" for number in range(1, 6))  # no "\r" kept in the last column


async def test_a_file_only_touched_while_read_stops_as_changed_and_a_rerun_carries_on(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """Only its modification time changed (backup software, `touch`): telling that from a rewrite of the same size
    would take reading it again, so the import stops as for a change, and the re-run issues nothing twice."""
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    path.write_bytes(_roll_bytes(12, gap_after=6, gap=9000))
    chunks = {"CHUNK_ROWS": "4"}

    code, out, err = await _run(path, database_url, ENGLISH, **chunks, AFTER_FIRST_CHUNK="touch")
    assert code == 7, out + err
    _stopped_at_row_5(path, err, CHANGED)
    first = _assert_committed_rows_written(path, 4)
    await _rerun_carries_on(app, path, database_url, rows=12, first=first, **chunks)


async def test_a_folder_renamed_while_its_file_is_read_stops_as_moved_and_a_rerun_there_carries_on(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """The file can still be read, only not under its name: said as a file moved, not "no such file or directory"."""
    path = (await _folder(app, client, tmp_path)) / "roll.csv"
    path.write_bytes(_roll_bytes(12, gap_after=6, gap=9000))
    moved = tmp_path / "moved"
    chunks = {"CHUNK_ROWS": "4"}

    code, out, err = await _run(path, database_url, ENGLISH, **chunks, AFTER_FIRST_CHUNK=f"rename {moved}")
    assert code == 7, out + err
    _stopped_at_row_5(path, err, CHANGED)
    first = _assert_committed_rows_written(moved / "roll.csv", 4)
    await _rerun_carries_on(app, moved / "roll.csv", database_url, rows=12, first=first, **chunks)


async def test_a_different_file_at_the_same_path_after_a_stop_issues_its_own_rows_once(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """After exit 7, another file is put where the stopped one was: its first chunk, the same rows, is what was
    committed (already issued), its other rows are new people and are issued, none taken for the old file's."""
    folder = await _folder(app, client, tmp_path)
    path = folder / "roll.csv"
    old = _roll_bytes(8)
    path.write_bytes(old)
    chunks = {"CHUNK_ROWS": "4"}
    code, out, err = await _run(path, database_url, ENGLISH, **chunks, AFTER_FIRST_CHUNK=f"truncate {len(old) - 3}")
    assert code == 7, out + err
    assert await _certificates(app) == 4

    new = _roll_bytes(4) + b"".join(_line(number) for number in range(100, 106))
    path.write_bytes(new)
    code, out, err = await _run(path, database_url, ENGLISH, **chunks)
    assert code == 0, out + err
    assert "rows 10  issued 6  already issued 4  rejected 0" in out, out
    assert await _certificates(app) == 10
    issued = _csv(path.with_suffix(".issued.csv"))
    assert [line[0] for line in issued[1:]] == [str(row) for row in range(1, 11)]


async def test_a_linked_file_whose_link_is_pointed_elsewhere_while_read_stops_as_changed(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    folder = await _folder(app, client, tmp_path)
    whole = _roll_bytes(12, gap_after=6, gap=9000)
    (folder / "june.csv").write_bytes(whole)
    (folder / "july.csv").write_bytes(whole.replace("导入10号".encode(), "导入10号乙".encode()))
    path = folder / "roll.csv"
    path.symlink_to(folder / "june.csv")
    chunks = {"CHUNK_ROWS": "4"}

    code, out, err = await _run(
        path, database_url, ENGLISH, **chunks, AFTER_FIRST_CHUNK=f"relink {folder / 'july.csv'}"
    )
    assert code == 7, out + err
    _stopped_at_row_5(path, err, CHANGED)
    assert await _certificates(app) == 4
    first = _assert_committed_rows_written(path, 4)

    path.unlink()
    path.symlink_to(folder / "june.csv")
    await _rerun_carries_on(app, path, database_url, rows=12, first=first, **chunks)
