"""What a large import says when the database stops it (registry.certificates.import_stops), for each kind of fault
and where it meets the import: nothing committed before the first chunk is not said to be rows 1 to 0, and only a
lost connection leaves the chunk under way unknown."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.certificates.import_stops import stopped
from registry.faults import Fault
from registry.i18n import translate


@dataclass
class Committed:
    rows: int = 0
    issued: int = 0
    already_issued: int = 0
    rejected: int = 0
    issued_file: Path | None = Path("roll.issued.csv")
    rejected_file: Path | None = Path("roll.rejected.csv")


def test_a_fault_in_the_first_chunk_says_nothing_was_committed_and_names_no_rows_before() -> None:
    lines = translate(stopped(Fault.locked, Committed(), first_row=1, last_row=5000), "en").splitlines()

    assert lines[0].startswith("the import stopped at row 1: the registry is busy"), lines
    assert lines[1].strip() == "nothing from row 1 on was committed", lines
    assert "rows 1 to 0" not in "\n".join(lines)
    assert len(lines) == 3, lines


@pytest.mark.parametrize("fault", [Fault.unreachable, Fault.busy, Fault.conflict, Fault.locked])
def test_a_fault_that_rolled_the_chunk_back_says_it_was_not_committed(fault: Fault) -> None:
    committed = Committed(rows=5000, issued=4990, already_issued=0, rejected=10)
    lines = [line.strip() for line in stopped(fault, committed, first_row=5001, last_row=10000).splitlines()]

    assert lines[1].startswith("rows 1 to 5000 were committed before it (4990 issued, 0 already issued, 10 rejected)")
    assert lines[2] == "nothing from row 5001 on was committed"
    assert "nothing was changed" not in "\n".join(lines)


def test_a_lost_connection_says_the_chunk_under_way_may_or_may_not_have_been_issued_in_chinese() -> None:
    said = translate(stopped(Fault.connection_lost, Committed(rows=2, issued=2), first_row=3, last_row=4), "zh")
    lines = [line.strip() for line in said.splitlines()]

    assert lines[0] == "导入在第 3 行停下：与数据库的连接已断开", lines
    assert lines[2] == "第 3 至 4 行可能已签发，也可能没有（连接在确认提交之前已断开）；其后的行均未提交", lines
    assert lines[3].startswith("再次运行同一命令即可继续：任何一行都不会重复签发"), lines
