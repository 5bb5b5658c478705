"""A question's stated purpose as this node keeps, signs, shows and passes on: with identity numbers masked.

An agency's clerk may type the holder's identity number into ``purpose_text`` ("核验持证人110105…的职称"), in full-width
digits too, and so may a peer node's clerk. The purpose goes to the audit log, into every signed answer, to the
holder's "who looked" list and to the peer node that judges the certificate — none of which may hold an identity
number in clear. It is masked rather than refused: the question is answered, the clerk's words are kept, and a bulk
question of a thousand items, or a peer's question, does not fail over a word in its purpose.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Fewest digits in a run masked as an identity number: the shortest documents this registry takes (Taiwan and
# Hong Kong/Macao permits, passports) carry eight; a resident ID card seventeen.
MIN_DIGITS: Final = 8
# Groups holding a digit, joined by one space or dash: "110105 19491231 002X", "E12345678", "H-1234-5678".
_NUMBER_SHAPED: Final = re.compile(r"[A-Za-z]*[0-9][0-9A-Za-z]*(?:[ -][A-Za-z]*[0-9][0-9A-Za-z]*)*")


def _folded(char: str) -> str:
    """One character as it reads (NFKC: ``１`` is 1, ``Ｘ`` is X; any dash a dash, any space a space), one for one."""
    if unicodedata.category(char) == "Pd":
        return "-"
    if char.isspace():
        return " "
    folded = unicodedata.normalize("NFKC", char)
    return folded if len(folded) == 1 and folded.isascii() else char


def _mask(run: str) -> str:
    """As ``registry.holders.identity.mask_id_number`` masks a resident ID: two characters kept at each end."""
    return run[:2] + "*" * (len(run) - 4) + run[-2:] if len(run) > MIN_DIGITS else "*" * len(run)


def masked(text: str) -> str:
    """``text`` with every run shaped like an identity number (``MIN_DIGITS`` digits or more, of any width, between
    letters, spaces or dashes) masked; the rest as typed. The length is kept."""
    folded = "".join(_folded(char) for char in text)
    kept: list[str] = []
    last = 0
    for run in _NUMBER_SHAPED.finditer(folded):
        if sum(char.isdigit() for char in run.group()) >= MIN_DIGITS:
            kept += [text[last : run.start()], _mask(run.group())]
            last = run.end()
    kept.append(text[last:])
    return "".join(kept)
