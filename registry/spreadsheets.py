"""Every CSV the registry writes goes through here, so that opening it in a spreadsheet cannot run a formula.

The OWASP rule for CSV injection: a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
(or their full-width forms ``＝ ＋ － ＠``, which some spreadsheet input methods treat alike) gets a leading
apostrophe ``'``, which a spreadsheet shows as text and does not evaluate. A cell that is a plain number
(``-12``, ``+3.5``) is left as it is: a spreadsheet reads it as that number, not as a formula, and an apostrophe would
corrupt it. Quoting and embedded quotes are the ``csv`` module's job, as always.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_LEADERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralised(cell: object) -> object:
    """``cell`` as it may be written to a CSV file: text that a spreadsheet would evaluate gets a leading ``'``."""
    if isinstance(cell, str) and cell.startswith(FORMULA_LEADERS) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


class SafeWriter:
    """``csv.writer`` with every cell neutralised: the one way the registry writes CSV."""

    def __init__(self, handle: _Writable) -> None:
        self._writer = csv.writer(handle)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([neutralised(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)
