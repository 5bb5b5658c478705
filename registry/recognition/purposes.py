"""A stated purpose as this node keeps, signs, shows and passes on: with identity numbers masked.

A clerk may type the holder's identity number into a question's ``purpose_text`` ("核验持证人110105…的职称"), in
full-width digits too, and so may a peer node's clerk or a holder making a share link ("入职核验，身份证号110105…").
The purpose goes to the audit log, into every signed answer, to the holder's "who looked" list, to the peer node that
judges the certificate and onto a share link's public page — none of which may hold an identity number in clear. It
is masked rather than refused: the question is answered, the words are kept, and a bulk question of a thousand items,
or a peer's question, does not fail over a word in its purpose. Every free-text purpose goes through ``masked``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Final

from registry.holders.identity import IdType, mask_id_number

# Fewest digits in a bare run masked as an identity number: Taiwan permits carry eight, a resident ID seventeen; a
# seven-digit run ("第1234567号") is a file number, not a document.
MIN_DIGITS: Final = 8
# Fewest digits after one or two letters: a passport (E12345678, EA1234567) or a Hong Kong ID (A123456(7)).
MIN_DIGITS_AFTER_LETTERS: Final = 6
# A run of this many characters or fewer keeps none: two at each end would show half of it.
ALL_STARRED: Final = 8
# Groups holding a digit, joined by one space, dash, slash, dot, underscore or comma ("110105/19491231/002X",
# "H-1234-5678"), the last maybe with a check character in brackets (Hong Kong's "A123456(7)").
_GROUP: Final = r"[A-Za-z]*[0-9][0-9A-Za-z]*"
_NUMBER_SHAPED: Final = re.compile(rf"{_GROUP}(?:[ ,./_-]{_GROUP})*(?:\([0-9A-Za-z]\))?")
_LETTERS_FIRST: Final = re.compile(r"[A-Za-z]{1,2}[0-9]")
_DATE: Final = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})")


def _folded(char: str) -> str:
    """One character as it reads (NFKC: ``１`` is 1, ``Ｘ`` is X; any dash a dash, any space a space), one for one."""
    if unicodedata.category(char) == "Pd":
        return "-"
    if char.isspace():
        return " "
    folded = unicodedata.normalize("NFKC", char)
    return folded if len(folded) == 1 and folded.isascii() else char


def _is_date(run: str) -> bool:
    """A run such as 2026-12-05 (or with slashes or dots) is a day a clerk names, not a number to hide."""
    shaped = _DATE.fullmatch(run)
    if shaped is None:
        return False
    try:
        date(int(shaped[1]), int(shaped[3]), int(shaped[4]))
    except ValueError:
        return False
    return True


def _is_identity_shaped(run: str) -> bool:
    digits = sum(char.isdigit() for char in run)
    if _is_date(run):
        return False
    return digits >= MIN_DIGITS or (digits >= MIN_DIGITS_AFTER_LETTERS and _LETTERS_FIRST.match(run) is not None)


def _mask(run: str) -> str:
    """The registry's identity mask (``mask_id_number``), at its two-and-two ends: free text does not say which
    document it is, so every number is masked as a resident ID is — and a short one keeps nothing."""
    return "*" * len(run) if len(run) <= ALL_STARRED else mask_id_number(IdType.RESIDENT_ID, run)


def masked(text: str) -> str:
    """``text`` with every run shaped like an identity number masked; the rest as typed. The length is kept.

    A run is groups of letters and digits, of any width, joined by single spaces, dashes, slashes, dots, underscores
    or commas; it is an identity number with ``MIN_DIGITS`` digits or more, or ``MIN_DIGITS_AFTER_LETTERS`` after one
    or two letters — unless it is exactly a date ("2026-12-05"), which stays as typed."""
    folded = "".join(_folded(char) for char in text)
    kept: list[str] = []
    last = 0
    for run in _NUMBER_SHAPED.finditer(folded):
        if _is_identity_shaped(run.group()):
            kept += [text[last : run.start()], _mask(run.group())]
            last = run.end()
    kept.append(text[last:])
    return "".join(kept)


def masked_or_none(text: str | None) -> str | None:
    return None if text is None else masked(text)
