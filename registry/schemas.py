"""Shared building blocks for request and response schemas, and the rule for text a person reads (names, labels).

Text a person reads is NFC-normalised, then refused if it holds anything that is not plainly visible text: control
characters and line breaks (Unicode Cc, Zl, Zp), invisible formatting characters (Cf: zero-width spaces and joiners,
soft hyphen, byte-order mark, bidirectional controls, tag characters) and every other code point Unicode says is
drawn as nothing (Default_Ignorable_Code_Point, whatever its category: U+034F COMBINING GRAPHEME JOINER, variation
selectors, Hangul fillers, the Mongolian free variation selectors), private-use (Co), surrogates (Cs), code points
not assigned in the Unicode version of the running Python (Cn; except planes 2 and 3, which only ever receive CJK
ideographs, so a newly encoded rare 汉字 is not refused), and more than ``MAX_COMBINING_MARKS`` combining marks
(Mn, Mc, Me) in a row. Runs of white space become one space. What the e-certificate prints (a holder's, a body's,
an entry's name) is held to more: every character drawn by its fonts (``printed``; a newly encoded 汉字 no font draws
yet is refused there, naming it, rather than printed as an empty box), and a holder's name to at most 5 digits.
Nor may such text hold a resident identity number (``_holds_resident_id``): a person's name has its own digit rule,
and a purpose is masked where it is kept instead.

A person's name also has its middle dot made one character: 少数民族 and transliterated names are written with
U+00B7 MIDDLE DOT (阿沛·阿旺晋美, 买买提·艾力), which is what resident identity cards carry; the look-alikes that
input methods and older encodings produce (U+30FB ・, U+FF65 ･, U+2027 ‧, U+2022 •, U+2219 ∙, U+22C5 ⋅) are stored
as U+00B7, and public verification compares names with every one of them, and a full stop, as the same dot.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError

from registry import gb11643, printable
from registry.i18n import _

MAX_COMBINING_MARKS = 2
MIDDLE_DOT = "\u00b7"
_NAME_DOTS = str.maketrans(dict.fromkeys("\u30fb\uff65\u2027\u2022\u2219\u22c5", MIDDLE_DOT))
_COMPARED_DOTS = str.maketrans(dict.fromkeys("\u30fb\uff65\u2027\u2022\u2219\u22c5.\uff0e", MIDDLE_DOT))
# Planes 2 (SIP) and 3 (TIP) are reserved for CJK ideographs: an unassigned code point there is a 汉字 newer than the
# Unicode tables of this Python, not junk. Their last two code points are noncharacters.
_IDEOGRAPH_PLANES = range(0x20000, 0x40000)

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, unchanged since Unicode 14): what fonts draw as
# nothing. Not all are Cf: U+034F and the variation selectors are Mn, the Hangul fillers Lo, U+FFF0-FFF8 and much of
# the tag block unassigned. In a name such a character makes "张\u034f三" look like, but not compare as, 张三.
_DEFAULT_IGNORABLE_RANGES: Final = (
    "00AD 034F 061C 115F..1160 17B4..17B5 180B..180F 200B..200F 202A..202E 2060..206F 3164 FE00..FE0F FEFF FFA0 "
    "FFF0..FFF8 1BCA0..1BCA3 1D173..1D17A E0000..E0FFF"
)
_DEFAULT_IGNORABLE: Final = frozenset(
    code
    for first, _dots, last in (entry.partition("..") for entry in _DEFAULT_IGNORABLE_RANGES.split())
    for code in range(int(first, 16), int(last or first, 16) + 1)
)
_IGNORED = dict.fromkeys(_DEFAULT_IGNORABLE)

_CONTROL = _("control characters or line breaks")
_REFUSED = {
    "Cc": _CONTROL,
    "Zl": _CONTROL,
    "Zp": _CONTROL,
    "Cf": _("invisible formatting characters such as zero-width spaces, soft hyphens or text-direction controls"),
    "Co": _("private-use characters, which look different on every device"),
    "Cs": _("unpaired surrogates, which are not characters"),
    "Cn": _("code points that are not characters in Unicode {version}", version=unicodedata.unidata_version),
}


def _describe(char: str, position: int) -> str:
    name = unicodedata.name(char, "")
    code = f"U+{ord(char):04X} {name}".rstrip()
    return _("{code} at character {position}", code=code, position=position)


def _refused_character(value: str) -> str | None:
    """Why ``value`` (already NFC) cannot be stored as text a person reads, or None."""
    marks = 0
    for position, char in enumerate(value, start=1):
        category = unicodedata.category(char)
        if category == "Cn" and ord(char) in _IDEOGRAPH_PLANES and ord(char) & 0xFFFE != 0xFFFE:
            category = "Lo"
        if ord(char) in _DEFAULT_IGNORABLE:
            category = "Cf"  # invisible, and refused as such whatever Unicode files it under
        if category in _REFUSED:
            return _("must not contain {what} ({where})", what=_REFUSED[category], where=_describe(char, position))
        marks = marks + 1 if category.startswith("M") else 0
        if marks > MAX_COMBINING_MARKS:
            return _(
                "must not stack more than {most} accents or other combining marks on one character ({where})",
                most=MAX_COMBINING_MARKS,
                where=_describe(char, position),
            )
    return None


_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode's Cc, all of it


def control_character(value: str) -> str | None:
    """Why ``value`` cannot be taken as a parameter — its first control character (a NUL, which PostgreSQL can neither
    store nor compare, a line break, an escape) — or None. Every path and query parameter is held to this
    (``api.guards``), and a client id; text a person reads is held to more (``_cleaner``)."""
    found = _CONTROL_CHARACTER.search(value)
    if found is None:
        return None
    return _("must not contain {what} ({where})", what=_CONTROL, where=_describe(found.group(), found.start() + 1))


# A resident identity number written into free text (a reason, a name, a purpose), as typed: 18 characters, maybe
# grouped by single spaces or hyphens, in full-width digits too, wherever it stands (after a letter too: "ID" or
# "sfz" typed before it). Refused when it is one (a real region, birth date and check character): a reason is kept
# in the certificate's history and in the append-only audit log (neither may hold a clear identity number), read by
# all who read those. An order, a file or a batch number of 18 digits is no identity: one that begins with a date
# (20261219…) or a year has no province for its region, and is taken.
# Looked for at every start (a lookahead, so candidates overlap): "1 11010519491231002X" is first read as the 18
# digits "1 11010519491231002", which are no number, and that reading must not use up the number that follows it.
_RESIDENT_ID_TYPED = re.compile(r"(?<![0-9])(?=([0-9](?:[ -]?[0-9]){16}[ -]?[0-9Xx])(?![0-9]))")
_ID_SEPARATORS = str.maketrans("", "", " -")


def _real_region(number: str) -> bool:
    """A region as registry.holders.identity's ``_check_region`` takes it: a province and a prefecture (01-90), or
    a residence permit's 810000-830000; or, for a permanent residence card of 2023 (9…), the province after its 9."""
    province = int(number[:2])
    if province in gb11643.RESIDENCE_PERMIT_CODES:
        return number[2:6] == "0000"
    if province in gb11643.PROVINCE_CODES:
        return 1 <= int(number[2:4]) <= 90
    return number[0] == "9" and int(number[1:3]) in gb11643.PROVINCE_CODES


def _is_resident_id(number: str) -> bool:
    """18 ASCII characters with a real region, a birth date at 7-14 and a GB 11643 check character that holds (the
    holders' own rule, registry.holders.identity, cannot be imported here without an import cycle; its province
    codes and check character are registry.gb11643's, as these)."""
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        check = gb11643.check_char(number[:17])
    except ValueError:
        return False
    return born.year >= 1900 and check == number[17].upper() and _real_region(number)


def _holds_resident_id(value: str) -> bool:
    read = unicodedata.normalize("NFKC", value)
    typed = (found.group(1).translate(_ID_SEPARATORS) for found in _RESIDENT_ID_TYPED.finditer(read))
    return any(_is_resident_id(number) for number in typed)


def without_identity_number(value: str) -> str:
    """Kept text, refused when it holds a resident identity number (``_holds_resident_id``): everyone who reads it
    would see it whole. For the ``Text`` types (``_cleaner``) and a certificate's evaluation round, which is signed."""
    if _holds_resident_id(value):
        raise ValueError(_("must not hold an identity number: everyone who reads this would see it whole"))
    return value


def _cleaner(max_length: int, *, person_name: bool = False, identity_allowed: bool = False) -> Callable[[str], str]:
    def clean(value: str) -> str:
        """NFC, single spaces, only visible characters: what is stored is what a person would read."""
        value = unicodedata.normalize("NFC", value)
        problem = _refused_character(value)
        if problem is not None:
            raise ValueError(problem)
        value = " ".join(value.split())
        # A holder's name allows 5 digits (_holder_name); a purpose has its identity numbers masked where it is kept,
        # and a name to match (NameToMatch) is kept nowhere.
        if not (person_name or identity_allowed):
            without_identity_number(value)
        if person_name:
            value = value.translate(_NAME_DOTS)
        if not value:
            raise ValueError(_("must not be blank"))
        if len(value) > max_length:  # normalisation can lengthen a string; the column cannot
            raise ValueError(_("at most {max_length} characters", max_length=max_length))
        return value

    return clean


def _composed(value: object) -> object:
    """NFC before the length is counted: "é" typed as e + U+0301 is one character, as it is stored (``_cleaner``)."""
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


# The BeforeValidator comes after the StringConstraints so that it runs first, while the length stays the str
# schema's own (the documented maxLength, "at most N characters", and not the models' 4096-character backstop).
Text64 = Annotated[
    str, StringConstraints(min_length=1, max_length=64), BeforeValidator(_composed), AfterValidator(_cleaner(64))
]
Text128 = Annotated[
    str, StringConstraints(min_length=1, max_length=128), BeforeValidator(_composed), AfterValidator(_cleaner(128))
]
Text256 = Annotated[
    str, StringConstraints(min_length=1, max_length=256), BeforeValidator(_composed), AfterValidator(_cleaner(256))
]
Text500 = Annotated[
    str, StringConstraints(min_length=1, max_length=500), BeforeValidator(_composed), AfterValidator(_cleaner(500))
]


# The holder's name a verifier or a partner types to match a certificate (POST /v1/verify, recognition questions): kept
# nowhere and never sent to a peer node when it holds more digits than a name may (registry.verification), so an
# identity number typed into it is answered as no match (404), as it always was, rather than refused.
NameToMatch = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    BeforeValidator(_composed),
    AfterValidator(_cleaner(64, identity_allowed=True)),
]


def one_line(value: object) -> object:
    """Text typed on several lines (a question's purpose, a rule's conditions) read as one line: its line breaks and
    tabs become single spaces before ``_cleaner`` judges it, which refuses them in a name or a label."""
    return " ".join(value.split()) if isinstance(value, str) else value


def _flowing(value: object) -> object:
    return _composed(one_line(value))


# A purpose (registry.recognition.schemas.PurposeText): an identity number in it is masked, not refused
# (registry.recognition.purposes.masked), in the audit, the signed answer and the share link's page.
FlowingText200 = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    BeforeValidator(_flowing),
    AfterValidator(_cleaner(200, identity_allowed=True)),
]
FlowingText500 = Annotated[
    str, StringConstraints(min_length=1, max_length=500), BeforeValidator(_flowing), AfterValidator(_cleaner(500))
]
FlowingText1000 = Annotated[
    str, StringConstraints(min_length=1, max_length=1000), BeforeValidator(_flowing), AfterValidator(_cleaner(1000))
]
PersonName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    BeforeValidator(_composed),
    AfterValidator(_cleaner(64, person_name=True)),
]
# Six digits are a birth date's worth, or a third of an identity number: a name that carries them would be shown to
# every verifier, on every page and on the PDF, where only the masked number may be.
MOST_DIGITS_IN_A_NAME: Final = 5


def printed(value: str) -> str:
    """Text the e-certificate prints (a holder's or a body's name, a catalogue entry): every character drawn by its
    fonts (``registry.printable``), so none is printed as an empty box."""
    found = printable.first_unprintable(value)
    if found is not None:
        position, character = found
        raise ValueError(
            _(
                "cannot be printed on the e-certificate: {where} is in none of its fonts (they draw Chinese "
                "characters to extension F and most of G and H, and Latin, Greek and Cyrillic letters)",
                where=_describe(character, position),
            )
        )
    return value


def _holder_name(value: str) -> str:
    value = printed(value)
    if sum(character.isdigit() for character in value) > MOST_DIGITS_IN_A_NAME:  # ① ¹ ⑴ too, not only 0-9 and ０-９
        raise ValueError(
            _("must not hold more than {most} digits: an identity number goes in id_number", most=MOST_DIGITS_IN_A_NAME)
        )
    return value


# The name a certificate is issued to: a person's name, printable, carrying no identity number.
HolderName = Annotated[PersonName, AfterValidator(_holder_name)]


Code = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,47}$")]


class StrictInput(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_max_length=4096)


# Scripts written without spaces between words (CJK: Han, kana, bopomofo, Hangul, Yi, Tangut, Nüshu; and Thai, Lao,
# Tibetan, Myanmar, Khmer, Tai): a space beside one of their characters is how it was typed, not a word boundary, so
# "张 伟" is 张伟. Planes 2 and 3 are whole, as for the text rules: an unassigned code point there is a newer 汉字.
_UNSPACED_RANGES: Final = (
    "0E00..0FFF 1000..109F 1100..11FF 1780..17FF 1980..19FF 1A20..1AAF 2E80..2FFF 3005..3007 3021..3029 3031..3035 "
    "3038..303C 3040..30FF 3100..312F 3130..318F 31A0..31BF 31F0..31FF 3400..4DBF 4E00..9FFF A000..A4CF A960..A97F "
    "A9E0..A9FF AA60..AADF AC00..D7FF F900..FAFF FF66..FFDC 16FE0..18D7F 1AFF0..1B2FF 20000..3FFFF"
)
_UNSPACED_FIRST, _UNSPACED_LAST = zip(
    *((int(first, 16), int(last, 16)) for first, _dots, last in (r.partition("..") for r in _UNSPACED_RANGES.split())),
    strict=True,
)


def _word_letter(character: str) -> bool:
    """A letter of a script written in words (Latin, Greek, Cyrillic, Arabic…): two of them either side of a space
    are the end of one word and the start of the next."""
    if not unicodedata.category(character).startswith("L"):
        return False  # a dot, a hyphen, an apostrophe, a digit, a mark with nothing before it
    point = ord(character)
    at = bisect_right(_UNSPACED_FIRST, point) - 1
    return at < 0 or point > _UNSPACED_LAST[at]


def _ends_with_word_letter(word: str) -> bool:
    """Whether ``word`` ends with a letter of a script written in words, combining marks after it (an accent NFKC has
    no precomposed letter for, a Devanagari vowel sign) counted with their letter."""
    for character in reversed(word):
        if not unicodedata.category(character).startswith("M"):
            return _word_letter(character)
    return False


def person_name_key(name: str) -> str:
    """How names are compared in public verification: compatibility-normalised (full-width letters and spaces are
    plain ones), case-insensitive, every middle-dot look-alike (and a full stop) the same dot, and characters drawn
    as nothing left out (a name stored before they were refused still answers to what it looks like).

    A space between two letters of a script written in words separates two words and counts, as one space however
    many were typed: "LIN A" is not "LI NA", nor "ANN ALEE" "ANNA LEE" — two people, where leaving every space out
    made them one. Every other space is left out, as before: beside a Chinese (or other CJK) character ("张 伟" is
    张伟, "欧阳 娜娜" 欧阳娜娜), beside a dot ("买买提 · 艾力" is 买买提·艾力), a hyphen or an apostrophe
    ("Jean - Pierre", "O' Brien"), at either end. Nothing stores this key: both names are keyed when compared, so no
    stored value depends on it."""
    compatible = unicodedata.normalize("NFKC", name.translate(_IGNORED))
    words = compatible.translate(_COMPARED_DOTS).casefold().split()
    key = words[:1]
    for before, word in pairwise(words):
        if _ends_with_word_letter(before) and _word_letter(word[0]):
            key.append(" ")
        key.append(word)
    return "".join(key)


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: object) -> object:
    """A day as the API writes it, ``YYYY-MM-DD`` (or a ``date`` made by the code). Pydantic alone also takes a number
    of seconds since 1970, ``20260630`` read as seconds, an Excel serial or a datetime at midnight: each is refused
    here, the same way whether it came in JSON, a CSV cell or a query parameter."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return value  # pydantic then checks it is a real calendar day
    raise PydanticCustomError("date_type", "use YYYY-MM-DD")


Day = Annotated[date, BeforeValidator(_iso_day)]
"""A calendar day given to the registry: ``YYYY-MM-DD`` only."""


def utc_expressible(value: datetime) -> datetime:
    """A moment the registry can store: every time is kept in UTC, and 0001-01-01T00:00+14:00 or
    9999-12-31T23:59-14:00 falls outside the years 1 to 9999 there (Python cannot represent it, and storing it would
    fail). Refused as the caller's bad value, naming the field, never a 500."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError(_("must be a moment between 0001-01-01 and 9999-12-31 in UTC")) from None
    return value


Moment = Annotated[AwareDatetime, AfterValidator(utc_expressible)]
"""A moment given to the registry: an ISO 8601 date-time with its zone, that UTC can express."""
