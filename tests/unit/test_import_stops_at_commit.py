"""What a large import says when a fault meets a chunk's COMMIT (registry.certificates.import_stops): the server may
have applied it and the answer been lost, so the chunk is said to be unknown — never "nothing committed" — unless the
server answered with an error that rolled it back. A fault before the COMMIT is said as before."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.certificates import import_stops
from registry.certificates.import_stops import stopped
from registry.db import create_engine, session_factory
from registry.errors import ServiceUnavailable
from registry.faults import Fault
from registry.i18n import translate

UNKNOWN = (
    "rows 5001 to 10000 may or may not have been issued (the import stopped while their commit was under way, and "
    "its outcome was never heard); nothing after them was committed"
)


@dataclass
class Committed:
    rows: int = 5000
    issued: int = 5000
    already_issued: int = 0
    rejected: int = 0
    issued_file: Path | None = Path("roll.issued.csv")
    rejected_file: Path | None = Path("roll.rejected.csv")


def _lines(fault: Fault, *, committing: bool) -> list[str]:
    said = stopped(fault, Committed(), first_row=5001, last_row=10000, committing=committing)
    return [line.strip() for line in translate(said, "en").splitlines()]


def test_a_timeout_at_commit_says_the_chunk_may_or_may_not_have_been_issued() -> None:
    lines = _lines(Fault.unreachable, committing=True)

    assert lines[0] == (
        "the import stopped at row 5001: the database stopped answering while the chunk's commit was under way"
    )
    assert lines[1].startswith("rows 1 to 5000 were committed before it (5000 issued, 0 already issued, 0 rejected)")
    assert lines[2] == UNKNOWN
    assert lines[3].startswith("run the same command again to carry on: no row is issued twice")
    assert not any(line.startswith("nothing from row") for line in lines), lines


def test_a_lost_connection_at_commit_says_the_chunk_may_or_may_not_have_been_issued() -> None:
    lines = _lines(Fault.connection_lost, committing=True)

    assert lines[0] == "the import stopped at row 5001: the connection to the database was lost"
    assert lines[2] == UNKNOWN


@pytest.mark.parametrize("fault", [Fault.conflict, Fault.locked])
def test_an_error_the_server_answered_at_commit_rolled_the_chunk_back(fault: Fault) -> None:
    assert _lines(fault, committing=True)[2] == "nothing from row 5001 on was committed"


def test_a_timeout_before_commit_still_says_nothing_from_the_chunk_on_was_committed() -> None:
    lines = _lines(Fault.unreachable, committing=False)

    assert lines[0] == "the import stopped at row 5001: the database cannot be reached"
    assert lines[2] == "nothing from row 5001 on was committed"


def test_a_timeout_at_commit_is_said_in_chinese() -> None:
    said = stopped(Fault.unreachable, Committed(), first_row=5001, last_row=10000, committing=True)
    lines = [line.strip() for line in translate(said, "zh").splitlines()]

    assert lines[0] == "导入在第 5001 行停下：提交该批时数据库不再应答", lines
    assert lines[2] == (
        "第 5001 至 10000 行可能已签发，也可能没有（导入在提交进行中停下，提交结果未能得知）；其后的行均未提交"
    )


async def _chunk(sessions: async_sessionmaker[AsyncSession], *, fails_before_commit: bool) -> None:
    with import_stops.reported(Committed(), first_row=5001, rows=5000):
        async with import_stops.transaction(sessions) as session:
            await session.execute(text("SELECT 1"))
            if fails_before_commit:
                raise TimeoutError


@pytest.mark.parametrize("at_commit", [True, False])
async def test_the_chunk_transaction_tells_a_fault_at_its_commit_from_one_before(
    tmp_path: Path, at_commit: bool
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'stops.db'}")

    def lost_at_commit(_connection: object) -> None:
        raise TimeoutError

    if at_commit:
        event.listen(engine.sync_engine, "commit", lost_at_commit)
    try:
        with pytest.raises(ServiceUnavailable) as stopped_by:
            await _chunk(session_factory(engine), fails_before_commit=not at_commit)
    finally:
        await engine.dispose()

    lines = [line.strip() for line in translate(stopped_by.value.detail, "en").splitlines()]
    assert lines[2] == (UNKNOWN if at_commit else "nothing from row 5001 on was committed"), lines
