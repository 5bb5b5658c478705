"""A stated purpose as this node keeps, signs, shows and passes on: with identity numbers masked.

A clerk may type the holder's identity number into a question's ``purpose_text`` ("核验持证人110105…的职称"), in
full-width digits too, and so may a peer node's clerk or a holder making a share link ("入职核验，身份证号110105…").
The purpose goes to the audit log, into every signed answer, to the holder's "who looked" list, to the peer node that
judges the certificate and onto a share link's public page — none of which may hold an identity number in clear. It
is masked rather than refused: the question is answered, the words are kept, and a bulk question of a thousand items,
or a peer's question, does not fail over a word in its purpose. Every free-text purpose goes through ``masked``.

What is masked: a resident ID (17 digits and a digit or X, check character right or not) or an old 15-digit one,
even next to other numbers or spread over groups; any other run of eight digits or more (Taiwan permits), or six
after one or two letters (passports, Hong Kong and Macau IDs). What is kept, because masking it would destroy what the
purpose says: a certificate number of this arrangement (its check character right), dates ("2026-12-05",
"20261205", "20261205-20271204", with a time of day: "2026-12-05 20:30"), money ("1,234,567", "12345678.50",
"¥12000000", "12000000元") and telephone numbers ("010 1234 5678", "+86 10 12345678", "(021) 6123 4567",
"+886 2 2345 6789", "400 810 8888", after a time of day too: "20:30 13812345678") — unless the words just before the
number name an identity document ("台胞证20150601"), when it is masked.

A number is read as it reads, not as it is typed: in Chinese numerals ("一一〇一〇五…", "壹壹零…", with Arabic or
full-width digits among them) each numeral is its digit, so the same thresholds apply — "二〇二六年十二月五日",
"第一二三号" and "一百二十万元" hold no run long enough and stay as typed; in a link, percent escapes ("?id=%31%31%30…")
are read decoded (escaped twice, "%2531", too) and each is one character to the mask: it keeps the number's
two-and-two ends as typed ("%31%31") and stars every other escape whole, never leaving half of one ("%3") beside a
digit. Letters typed apart from a passport's number ("EA  1234567", "E · 1234567") count as its letters if they are
capitals or follow Chinese words ("护照ea 1234567"), but not "No".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from datetime import date
from functools import lru_cache
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from registry.certificates.numbering import is_valid_number
from registry.errors import InvalidIdentityNumber
from registry.holders.identity import IdType, birth_date, mask_id_number, normalize_id_number
from registry.numerals import DIGIT_OF

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
# Letters typed a few marks apart from a number ("A 123456(7)", "EA  1234567", "E · 1234567"): a Hong Kong ID's
# bracketed check character says what it is; otherwise only capitals, or letters right after Chinese words, are a
# document's letters ("of 1234567" is not), and never "No" or "Nr" ("NO. 1234567" is a file number).
_LETTERS_APART: Final = re.compile(r"(?<![A-Za-z])([A-Za-z]{1,2})[\W_]{1,4}\Z")
_NUMBER_WORDS: Final = ("NO", "NR")
_ALPHANUMERIC: Final = re.compile(r"[0-9A-Za-z]+")
# Runs this close ("110105  19491231  002X", "110105·19491231·002X") may still be one number: a resident ID across
# them is masked if its region and birth date are real (its check character mistyped or not; an old 15-digit one
# too), so a clerk's spacing cannot leave it in clear.
_LOOSE_GAP: Final = re.compile(r"[\W_]{1,4}")  # any few marks but letters and digits: "·", "、", ":", "|", "(", "  "
_RESIDENT_SHAPE: Final = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}")
_RESIDENT_LENGTH: Final = 18
_OLD_RESIDENT_LENGTH: Final = 15
# A certificate number as printed or typed (BJ-T-2025-QKCCH3GN-X, BJT2025QKCCH3GNX): kept if its check is right.
_CERTIFICATE_SHAPED: Final = re.compile(
    r"(?<![0-9A-Za-z])[A-Za-z]{2}[ -]?[TtSs][ -]?[0-9]{4}[ -]?[0-9A-Za-z]{8}[ -]?[0-9A-Za-z](?![0-9A-Za-z])"
)
_DATE: Final = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})|([0-9]{4})([0-9]{2})([0-9]{2})")
_COMPACT_YEARS: Final = range(1900, 2100)  # "20261205" is a day; "12345678" is no year anyone writes
_PHONE: Final = re.compile(
    r"(?:86[ -]?)?1[3-9][0-9](?:[0-9]{8}|[ -][0-9]{4}[ -][0-9]{4})"  # mobile, maybe with the country code
    # land line with its area code: "010-12345678", "010 1234 5678", "86 10 12345678", "0086-10-12345678"
    r"|(?:0|(?:00)?86[ -]?)[1-9][0-9]{1,2}[ -](?:[0-9]{7,8}|[0-9]{3,4}[ -][0-9]{4})"
    r"|85[23][ -]?[0-9]{4}[ -]?[0-9]{4}"  # Hong Kong and Macau numbers with their country code ("+852 9123 4567")
    # Taiwan's, with its country code: "+886 2 2345 6789", "+886 912 345 678"
    r"|886[ -](?:[2-8][0-9]?[ -]?[0-9]{3,4}[ -]?[0-9]{4}|9[0-9]{2}[ -]?[0-9]{3}[ -]?[0-9]{3})"
    r"|[48]00([ -])[0-9]{3}\1[0-9]{4}"  # 400 and 800 service lines: "400-810-8888", "400 810 8888"
)
_AREA_CODE_BEFORE: Final = re.compile(r"\(0[1-9][0-9]{1,2}\) ?$")  # "(010)12345678": a land line's number
_LOCAL_NUMBER: Final = re.compile(r"[0-9]{7,8}|[0-9]{3,4}[ -][0-9]{4}")  # after it: "12345678", "6123-4567"
# A day's time typed on to a date ("2026-12-05 20:30", "2026-12-05T20:30:00"): the run stops at the colon, so it
# ends in the hour; a range's next run begins with the minutes ("20:30-2026-12-06 08:00").
_HOUR_AT_END: Final = re.compile(r"[ Tt](?:[01]?[0-9]|2[0-3])\Z")
_MINUTES_AT_START: Final = re.compile(r"[0-5][0-9](?::[0-5][0-9])?[ ,/_-]")
_AMOUNT: Final = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]{1,2})?|[0-9]+\.[0-9]{1,2}")
_CURRENCY_AMOUNT: Final = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
_CURRENCY_BEFORE: Final = re.compile(r"(?:[¥$€£]|(?<![A-Za-z])(?:RMB|CNY|USD|HKD)|人民币) ?$", re.IGNORECASE)
_CURRENCY_AFTER: Final = re.compile(r" ?(?:元|圆|万|亿|块)")
# Words naming an identity document just before a number: then no date, amount or telephone shape saves it.
_DOCUMENT_NAMED: Final = re.compile(
    r"(?:(?:身份证|台胞证|通行证|回乡证|居留证|居住证|证件|护照)(?:号码?)?|证号码?"
    r"|(?<![A-Za-z])(?:passport|permit|id|id card)(?: ?(?:no|number))?\.?)[ :#]*$",
    re.IGNORECASE,
)
_CONTEXT: Final = 16  # characters around a run read for the words above
_NUMERALS: Final = DIGIT_OF  # "一一〇…", "壹壹零…": each numeral read as its digit
# A percent escape of a printable ASCII character ("%31" is 1, "%58" X, "%20" a space), as in a link's query.
# Escaped twice ("%2531", as a link inside a link's query carries it), it is still that character.
_UNIT: Final = re.compile(r"%(?:25)?[2-7][0-9A-Fa-f]|.", re.DOTALL)
_DIGIT: Final = re.compile(r"[0-9]")


@lru_cache(maxsize=4096)
def _folded(char: str) -> str:
    """One character as it reads (NFKC: ``１`` is 1, ``Ｘ`` is X; any dash a dash, any space a space), one for one."""
    if char in _NUMERALS:
        return _NUMERALS[char]
    if unicodedata.category(char) in ("Pd", "Cf"):  # an invisible one (zero-width space, soft hyphen) parts groups too
        return "-"
    if char.isdecimal():  # any script's digit ("١", "१") is a digit: masked as "1" would be
        return str(unicodedata.decimal(char))
    if char.isspace():
        return " "
    folded = unicodedata.normalize("NFKC", char)
    return folded if len(folded) == 1 and folded.isascii() else char


def _read(text: str) -> tuple[str, Sequence[int]]:
    """``text`` as it reads: one character (``_folded``) for each character or percent escape typed, and where each of
    them starts in ``text`` (then ``len(text)``)."""
    if "%" not in text:  # one character each: the common case, on every item of a bulk question
        return "".join(map(_folded, text)), range(len(text) + 1)
    folded: list[str] = []
    starts: list[int] = []
    for unit in _UNIT.finditer(text):
        typed = unit.group()
        folded.append(_folded(chr(int(typed[-2:], 16)) if len(typed) > 1 else typed))
        starts.append(unit.start())
    starts.append(len(text))
    return "".join(folded), starts


def as_read(text: str) -> str:
    """``text`` as the mask reads it (``_read``): numerals and percent escapes as their characters, any width folded."""
    return _read(text)[0]


def _is_day(shaped: re.Match[str]) -> bool:
    year, month, day = (shaped[1], shaped[3], shaped[4]) if shaped[1] else (shaped[5], shaped[6], shaped[7])
    if not shaped[1] and int(year) not in _COMPACT_YEARS:
        return False
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _is_dates(run: str) -> bool:
    """A run of days such as 2026-12-05, 2026/12/31, 20261205 or 20261205-20271204 is what a clerk names, not a
    number to hide."""
    at = 0
    while True:
        shaped = _DATE.match(run, at)
        if shaped is None or not _is_day(shaped):
            return False
        at = shaped.end()
        if at == len(run):
            return True
        if run[at] not in " ,./_-":
            return False
        at += 1


def _is_kept_shape(folded: str, start: int, end: int) -> bool:
    """Whether the run at ``folded[start:end]`` is a date, an amount of money or a telephone number, and no word
    before it calls it an identity document."""
    run, before, after = folded[start:end], folded[max(0, start - _CONTEXT) : start], folded[end : end + _CONTEXT]
    if _DOCUMENT_NAMED.search(before):
        return False
    money = _AMOUNT.fullmatch(run) is not None or (
        _CURRENCY_AMOUNT.fullmatch(run) is not None
        and (_CURRENCY_BEFORE.search(before) is not None or _CURRENCY_AFTER.match(after) is not None)
    )
    timeless = _without_times(run, before, after)  # "20:30 13812345678" is a time and a telephone number
    phone = _PHONE.fullmatch(timeless) is not None or (
        _LOCAL_NUMBER.fullmatch(run) is not None and _AREA_CODE_BEFORE.search(before) is not None
    )
    return money or phone or _is_dates(timeless)


def _without_times(run: str, before: str, after: str) -> str:
    """``run`` without the hour of a time that follows it (``after`` begins with its colon) or the minutes of one
    it follows (``before`` ends with its colon): what is left of "2026-12-05 20:30" is a date."""
    if before.endswith(":") and (minutes := _MINUTES_AT_START.match(run)) is not None:
        run = run[minutes.end() :]
    if after.startswith(":") and (hour := _HOUR_AT_END.search(run)) is not None:
        run = run[: hour.start()]
    return run


def _is_identity_shaped(folded: str, start: int, end: int) -> bool:
    run = folded[start:end]
    digits = sum(char.isdigit() for char in run)
    if digits < MIN_DIGITS and not (digits >= MIN_DIGITS_AFTER_LETTERS and _is_lettered(folded, start, end)):
        return False
    return not _is_kept_shape(folded, start, end)


def _is_lettered(folded: str, start: int, end: int) -> bool:
    """Whether the run at ``folded[start:end]`` carries a passport's or a Hong Kong ID's letters: typed on to it, or
    just before it (``_LETTERS_APART``)."""
    if _LETTERS_FIRST.match(folded, start, end):
        return True
    apart = _LETTERS_APART.search(folded, max(0, start - 7), start)
    if apart is None:
        return False
    letters, before = apart[1], folded[apart.start() - 1 : apart.start()]
    written_on = before != "" and not before.isascii()  # "护照ea 1234567": letters right after Chinese words
    return folded[end - 1] == ")" or ((letters.isupper() or written_on) and letters.upper() not in _NUMBER_WORDS)


def _is_real_resident_id(number: str) -> bool:
    """Whether ``number`` is a real resident ID but perhaps for its check character (a clerk's typo hides nothing),
    or an old 15-digit one (its region and birth date real)."""
    if len(number) == _OLD_RESIDENT_LENGTH and number.isdigit():
        number = f"{number[:6]}19{number[6:]}0"
    if len(number) != _RESIDENT_LENGTH or not number[:17].isdigit():
        return False
    try:
        born = birth_date(number)
    except InvalidIdentityNumber:
        return False
    return born.year >= _COMPACT_YEARS.start and any(
        _is_valid_resident_id(number[:17] + check) for check in "0123456789X"
    )


def _is_valid_resident_id(number: str) -> bool:
    for id_type in (IdType.RESIDENT_ID, IdType.FOREIGN_PERMANENT_RESIDENCE):
        try:
            normalize_id_number(id_type, number)
        except InvalidIdentityNumber:
            continue
        return True
    return False


def _resident_ids(groups: list[re.Match[str]], runs: list[int], dated: set[int]) -> list[tuple[int, int]]:
    """The spans of ``groups`` (in order; ``runs[i]`` the run group ``i`` is in) that together make a resident ID:
    by shape within one run, only if it is a real one across runs or within a run of dates (``dated``: the middle of
    "2026-12-05/2027-01-05/2028-01-05" is 18 digits)."""
    found: list[tuple[int, int]] = []
    for first in range(len(groups)):
        joined = ""
        for last in range(first, len(groups)):
            joined += groups[last].group()
            if len(joined) > _RESIDENT_LENGTH:
                break
            by_shape = runs[first] == runs[last] and runs[first] not in dated
            if _RESIDENT_SHAPE.fullmatch(joined) and (by_shape or _is_real_resident_id(joined)):
                found.append((groups[first].start(), groups[last].end()))
    return found


def _runs_close_together(folded: str, start: int, end: int) -> Iterator[list[re.Match[str]]]:
    """The number-shaped runs of ``folded[start:end]``, those only a few separators apart in one list."""
    chain: list[re.Match[str]] = []
    for run in _NUMBER_SHAPED.finditer(folded, start, end):
        if chain and not _LOOSE_GAP.fullmatch(folded, chain[-1].end(), run.start()):
            yield chain
            chain = []
        chain.append(run)
    if chain:
        yield chain


def _hidden_in_chain(folded: str, chain: list[re.Match[str]]) -> list[tuple[int, int]]:
    """What to mask among runs close together: every resident ID, then each run, or what of it the IDs leave, that
    is shaped like an identity number."""
    groups = [
        (index, group) for index, run in enumerate(chain) for group in _ALPHANUMERIC.finditer(folded, *run.span())
    ]
    dated = {index for index, run in enumerate(chain) if _is_dates(run.group())}
    ids = _resident_ids([group for _, group in groups], [index for index, _ in groups], dated)
    hidden = list(ids)
    for index, run in enumerate(chain):
        if not any(start < run.end() and run.start() < end for start, end in ids):
            pieces = [run.span()]
        else:
            pieces = _pieces_left([group for at, group in groups if at == index], ids)
        hidden += [piece for piece in pieces if _is_identity_shaped(folded, *piece)]
    return hidden


def _pieces_left(groups: list[re.Match[str]], ids: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans of consecutive ``groups`` (one run's) that no span of ``ids`` covers."""
    pieces: list[tuple[int, int]] = []
    piece: tuple[int, int] | None = None
    for group in groups:
        if any(start <= group.start() and group.end() <= end for start, end in ids):
            if piece is not None:
                pieces.append(piece)
            piece = None
        else:
            piece = group.span() if piece is None else (piece[0], group.end())
    if piece is not None:
        pieces.append(piece)
    return pieces


def _outside_certificate_numbers(folded: str) -> Iterator[tuple[int, int]]:
    at = 0
    for number in _CERTIFICATE_SHAPED.finditer(folded):
        if is_valid_number(number.group()):
            yield at, number.start()
            at = number.end()
    yield at, len(folded)


def _mask(run: str) -> str:
    """The registry's identity mask (``mask_id_number``), at its two-and-two ends: free text does not say which
    document it is, so every number is masked as a resident ID is — and a short one keeps nothing."""
    return "*" * len(run) if len(run) <= ALL_STARRED else mask_id_number(IdType.RESIDENT_ID, run)


def _shown(text: str, starts: Sequence[int], start: int, run: str) -> str:
    """The mask of ``run`` (read from ``text`` at ``start``, see ``_read``) in the room it takes in ``text``: what the
    mask keeps as it reads (a percent escape as typed), what it stars starred whole (every character of an escape)."""
    shown: list[str] = []
    for at, char in enumerate(_mask(run), start):
        typed = text[starts[at] : starts[at + 1]]
        shown.append(char if len(typed) == 1 else "*" * len(typed) if char == "*" else typed)
    return "".join(shown)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def masked(text: str) -> str:
    """``text`` with every number that may be an identity document's masked (see the module's docstring); the rest
    as typed. The length is kept.

    A run is groups of letters and digits, of any width, joined by single spaces, dashes, slashes, dots, underscores
    or commas; runs a few such characters apart are read together for a resident ID across them. Numerals and percent
    escapes are read as the digits they stand for (``_read``)."""
    folded, starts = _read(text)
    if _DIGIT.search(folded) is None:
        return text
    hidden = [
        span
        for start, end in _outside_certificate_numbers(folded)
        for chain in _runs_close_together(folded, start, end)
        for span in _hidden_in_chain(folded, chain)
    ]
    kept: list[str] = []
    last = 0
    for start, end in _merged(hidden):
        kept += [text[last : starts[start]], _shown(text, starts, start, folded[start:end])]
        last = starts[end]
    kept.append(text[last:])
    return "".join(kept)


def masked_or_none(text: str | None) -> str | None:
    return None if text is None else masked(text)


_PAGE = 1000


def mask_kept(bind: Connection, table: str, column: str) -> None:
    """Mask in place, with ``masked``, the purposes a migration finds kept in ``table.column`` (by a node before
    masking, or under an earlier rule): only rows that hold text are read, a thousand at a time, and only those that
    change are written. Masking what is masked changes nothing, so it may run again whenever the rule grows."""
    rows = sa.table(table, sa.column("id"), sa.column(column))
    kept = rows.c[column]
    last: Any = None
    while True:
        query = sa.select(rows.c.id, kept).where(kept.is_not(None)).order_by(rows.c.id).limit(_PAGE)
        if last is not None:
            query = query.where(rows.c.id > last)
        page = bind.execute(query).all()
        for row_id, text in page:
            if (said := masked(text)) != text:
                bind.execute(sa.update(rows).where(rows.c.id == row_id).values({column: said}))
        if len(page) < _PAGE:
            return
        last = page[-1][0]
