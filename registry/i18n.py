"""Messages people read, in their language: written in English in the code, said in Chinese from one catalogue.

``_("no evaluation body {code}", code=code)`` is a ``Message``: a ``str`` (the English text, so every caller and
log that treats it as text keeps working) that remembers its template and values, so the API can say it again in
the reader's language at the edge (``translate``). The template is the gettext msgid; the Chinese catalogue is
``registry/locale/zh/LC_MESSAGES/messages.po`` (read with babel). ``negotiate`` picks the language of a request;
``validation_message`` says what pydantic found wrong with a value the way a person can act on it (never a regex).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from babel.messages.pofile import read_po

Language = Literal["zh", "en"]
LOCALE_DIR = Path(__file__).parent / "locale"
_SEPARATORS = {("zh", "; "): "；", ("zh", ", "): "，"}  # a Listing's separator, in the punctuation of the language


class Message(str):
    """English text that can be said again in another language (``translate``)."""

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, /, **values: Any) -> Message:
        text = template.format(**values) if values else template
        message = super().__new__(cls, text)
        message.template = template
        message.values = values
        return message


class Listing(Message):
    """Several messages said as one, each in the reader's language (a detail naming every bad field)."""

    items: tuple[str, ...]
    separator: str

    def __new__(cls, items: Iterable[str], /, separator: str = "; ") -> Listing:
        said = tuple(items)
        listing = str.__new__(cls, separator.join(said))
        listing.template, listing.values, listing.items, listing.separator = "", {}, said, separator
        return listing


def _(template: str, /, **values: Any) -> Message:
    """Mark a message for translation (the gettext keyword ``pybabel extract`` looks for)."""
    return Message(template, **values)


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """msgid → msgstr of one language's catalogue (untranslated entries left out)."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        return {}
    with path.open("rb") as po:
        entries = read_po(po, locale=lang)
    return {str(entry.id): str(entry.string) for entry in entries if entry.id and entry.string}


def translate(text: str, lang: str | None) -> str:
    """``text`` in ``lang``: a Message said from the catalogue (its Message values too); any other text as it is.
    No language: the text as it is, still a Message (to be said at the edge, once the reader is known)."""
    if lang is None:
        return text
    if not isinstance(text, Message):
        return str(text)
    if lang == "en":
        return str(text)
    if isinstance(text, Listing):
        separator = _SEPARATORS.get((lang, text.separator), text.separator)
        return separator.join(translate(item, lang) for item in text.items)
    values = {
        key: translate(value, lang) if isinstance(value, Message) else value for key, value in text.values.items()
    }
    template = catalogue(lang).get(text.template, text.template)
    return template.format(**values) if values else template


# Words of the domain that messages carry as values (a certificate type, a client's role), said in the reader's
# language too.
WORDS: dict[str, Message] = {
    "title": _("title"),
    "skill": _("skill"),
    "admin": _("admin"),
    "issuer": _("issuer"),
    "partner": _("partner"),
    "holder": _("holder"),
}


def word(value: object) -> str:
    """A domain word as a message value: said in the reader's language when it is one of ``WORDS``."""
    return WORDS.get(str(value), str(value))


def message_of(error: BaseException) -> str:
    """The message an exception was raised with, still a Message if it was one (``str(error)`` drops that)."""
    if error.args and isinstance(error.args[0], Message):
        return error.args[0]
    return str(error)


def translate_problem(body: Mapping[str, Any], lang: str | None) -> dict[str, Any]:
    """A problem document (RFC 9457) with its title, detail and every ``errors[].message`` in ``lang``."""
    said = dict(body)
    for key in ("title", "detail"):
        if isinstance(said.get(key), str):
            said[key] = translate(said[key], lang)
    if isinstance(said.get("errors"), list):
        said["errors"] = [
            {**error, "message": translate(error["message"], lang)} if "message" in error else dict(error)
            for error in said["errors"]
        ]
    return said


# --- which language a request is answered in -----------------------------------------------------------------------


def language_of(tag: str) -> Language | None:
    """The language a tag names (``zh-CN``, ``EN``, ``en_GB``; ``*`` is English), or None for any other."""
    primary = tag.strip().lower().replace("_", "-").split("-")[0]
    return "zh" if primary == "zh" else "en" if primary in ("en", "*") else None


def negotiate(accept_language: str | None, query_lang: str | None = None) -> Language:
    """``?lang=`` when it names zh or en; else the most preferred of zh/en in ``Accept-Language``; else English."""
    if query_lang and (chosen := language_of(query_lang)) is not None:
        return chosen
    ranked: list[tuple[float, int, Language]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _sep, params = part.partition(";")
        language = language_of(tag) if tag.strip() else None
        if language is None:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else "en"


# --- pydantic's validation errors, said for people -----------------------------------------------------------------

# What each pattern of the schemas asks for, in words: the regex itself is never shown. Keyed by the pattern string
# pydantic reports (``ctx.pattern``); a pattern missing here is answered "is not in the expected format".
PATTERNS: dict[str, Message] = {
    r"^[A-Z0-9][A-Z0-9-]{1,47}$": _("capital letters, digits and hyphens, 2–48 characters, not starting with a hyphen"),
    r"^[A-Z0-9][A-Z0-9-]{2,31}$": _("capital letters, digits and hyphens, 3–32 characters, not starting with a hyphen"),
    r"^[A-Z][A-Z0-9]{1,31}$": _("a capital letter followed by capital letters or digits, 2–32 characters"),
    r"^[a-z][a-z0-9_]{1,31}$": _("a lower-case letter followed by lower-case letters, digits or _, 2–32 characters"),
    r"^[a-z0-9_]{1,32}$": _("lower-case letters, digits or _, 1–32 characters"),
    r"^\d-\d{2}-\d{2}-\d{2}$": _("an occupation code of the form 4-04-05-01"),
    r"^[\w\-./ ]+$": _("letters, digits, spaces and the characters - . / _"),
    r"^[\x21-\x7e]+$": _("printable ASCII characters without spaces"),
    r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$": _(
        "lower-case words joined by dots, optionally ending in .* (e.g. certificate.issued or certificate.*)"
    ),
}

_DATE = _("use YYYY-MM-DD, a real calendar date (e.g. 2026-06-30)")
_DATETIME = _("use a date and time like 2026-06-30T09:00:00+08:00")
_FIXED: dict[str, Message] = {
    "missing": _("is required"),
    "extra_forbidden": _("unknown field"),
    "json_invalid": _("is not valid JSON"),
    "json_type": _("is not valid JSON"),
    "string_type": _("must be text"),
    "string_unicode": _(
        "must be text: it holds an unpaired surrogate (a broken \\uD800-\\uDFFF escape), not a character"
    ),
    "int_type": _("must be a whole number"),
    "int_parsing": _("must be a whole number"),
    "int_from_float": _("must be a whole number"),
    "float_type": _("must be a number"),
    "float_parsing": _("must be a number"),
    "bool_type": _("must be true or false"),
    "bool_parsing": _("must be true or false"),
    "list_type": _("must be a list"),
    "tuple_type": _("must be a list"),
    "dict_type": _("must be an object"),
    "model_type": _("must be an object"),
    "model_attributes_type": _("must be an object"),
    "date_type": _DATE,
    "date_parsing": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": _("must be a date without a time: use YYYY-MM-DD"),
    "datetime_type": _DATETIME,
    "datetime_parsing": _DATETIME,
    "datetime_from_date_parsing": _DATETIME,
    "timezone_aware": _("must carry a time zone, e.g. 2026-06-30T09:00:00+08:00"),
    "uuid_type": _("must be a UUID"),
    "uuid_parsing": _("must be a UUID"),
    "url_parsing": _("must be a URL"),
    "url_type": _("must be a URL"),
    "url_scheme": _("must be a URL"),
    "none_required": _("must be left out"),
}
_LENGTH: dict[str, tuple[str, Message]] = {
    "string_too_long": ("max_length", _("at most {max_length} characters")),
    "string_too_short": ("min_length", _("at least {min_length} characters")),
    "too_long": ("max_length", _("at most {max_length} items")),
    "too_short": ("min_length", _("at least {min_length} items")),
    "greater_than_equal": ("ge", _("must be at least {ge}")),
    "greater_than": ("gt", _("must be more than {gt}")),
    "less_than_equal": ("le", _("must be at most {le}")),
    "less_than": ("lt", _("must be less than {lt}")),
}


def _choices(expected: str) -> str:
    """pydantic's ``'a', 'b' or 'c'`` as ``a, b, c``."""
    quoted = re.findall(r"'([^']*)'", expected)
    return ", ".join(quoted) if quoted else expected


def validation_message(error: Mapping[str, Any]) -> str:
    """What one pydantic error says to a person: what was wrong and what is expected, never the pattern it failed."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind in _FIXED:
        return _FIXED[kind]
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return _("must not be empty")
    if kind in ("too_long", "too_short") and isinstance(error.get("input"), str):
        kind = "string_" + kind  # text whose length is checked after a validator of ours: characters, not items
    if kind in _LENGTH:
        key, message = _LENGTH[kind]
        return Message(message.template, **{key: ctx.get(key)})
    if kind == "string_pattern_mismatch":
        expected = PATTERNS.get(str(ctx.get("pattern")))
        return _("must be {expected}", expected=expected) if expected else _("is not in the expected format")
    if kind in ("literal_error", "enum"):
        return _("must be one of: {choices}", choices=_choices(str(ctx.get("expected", ""))))
    cause = ctx.get("error")
    if isinstance(cause, BaseException):  # a validator of ours said why (value_error, assertion_error)
        return message_of(cause)
    text = str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return _("is not valid: {reason}", reason=text) if text else _("is not valid")
