"""A request's path as a public answer may say it back: an identity number typed into a URL where a code, a number,
a kid or a token goes (``/v1/issuers/11010519491231002X``, ``/v/110105…``) is never said back whole — not in a
problem's ``instance`` or texts (``shown_problem``), nor in a page's links (``shown_path``)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from registry.recognition.purposes import as_read

# A path segment that is an identity number typed into a URL, as read with separators left out: a resident ID, a run of
# eight digits or more (Taiwan permits), or six after one or two letters (passports, Hong Kong, Macau, Taiwan IDs),
# maybe with a check character in brackets. A certificate number, a key id ("cert-20261205-a1b2c3d4") or a uuid is
# none: each has letters among its digits.
_IDENTITY_SEGMENT = re.compile(r"([A-Za-z]{1,2})?([0-9]{6,})[0-9A-Za-z]?(?:\([0-9A-Za-z]\))?")
_SEPARATORS = re.compile(r"[^0-9A-Za-z()]+")


def _identity_shaped(read: str) -> bool:
    shaped = _IDENTITY_SEGMENT.fullmatch(_SEPARATORS.sub("", read))
    return shaped is not None and (len(shaped[2]) >= 8 or (shaped[1] is not None and len(shaped[2]) >= 6))


# A file's kind after the name a route takes ("/v1/certificates/{number}.pdf"): the number is what comes before it.
_EXTENSION = re.compile(r"\.[A-Za-z]{2,5}\Z")


def _identity_in(segment: str) -> tuple[str, str] | None:
    """The identity number a path segment holds, as a route hands it on (decoded) and as a problem shows it (its
    first two and last two characters as read, a file's kind after it as typed); None for an ordinary segment."""
    decoded = unquote(segment)
    kind = _EXTENSION.search(decoded)
    typed = decoded[: kind.start()] if kind else decoded
    read = as_read(typed)
    if not _identity_shaped(read):
        return None
    return typed, (read[:2] + "*" * (len(read) - 4) + read[-2:] if len(read) > 8 else "*" * len(read))


def holds_identity_number(typed: str) -> bool:
    """Whether a value a form was sent is an identity number (typed into the wrong box), read as a path segment is."""
    return _identity_in(typed) is not None


def shown_path(path: str) -> str:
    """A request's path as a problem's ``instance`` names it: a segment holding an identity number (typed as is,
    grouped, in full-width digits or numerals, or percent-escaped: ``/v1/issuers/11010519491231002X``, before a file's
    kind too: ``/v1/certificates/11010519491231002X.pdf``) by its first two and last two characters as read
    (``11**************2X``); every other segment as it came."""
    segments = path.split("/")
    for at, segment in enumerate(segments):
        if (found := _identity_in(segment)) is not None:
            segments[at] = found[1] + (kind[0] if (kind := _EXTENSION.search(unquote(segment))) else "")
    return "/".join(segments)


def shown_problem(body: dict[str, Any], path: str) -> dict[str, Any]:
    """A problem document for a request to ``path``: its ``instance`` as ``shown_path`` names it, and wherever its
    texts (detail, each field's message) say back an identity number the path held, as the route read it ("no
    certificate 11010519491231002X"), that number masked — whichever refusal said it."""
    found = [hidden for segment in path.split("/") if (hidden := _identity_in(segment)) is not None]
    said = {**body, "instance": shown_path(path)}
    return _unechoed(said, found) if found else said


def _unechoed(value: Any, found: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for typed, shown in found:
            for spelt in {typed, typed.upper(), as_read(typed), _SEPARATORS.sub("", as_read(typed))}:
                value = value.replace(spelt, shown) if spelt else value
        return value
    if isinstance(value, dict):
        return {key: item if key in ("type", "instance") else _unechoed(item, found) for key, item in value.items()}
    if isinstance(value, list):
        return [_unechoed(item, found) for item in value]
    return value
