"""Structured logs: one JSON object per line, each request under a request id, and no secret in any line.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, and ``request_id`` when it was written
while a request was being answered. ``RequestLogMiddleware`` writes one ``registry.access`` line per request with
``method``, ``route`` (the route's template, e.g. ``/v1/verify/{token}``: never the path a client sent, so tokens in
paths and query strings never reach a log), ``status`` and ``duration_ms``; uvicorn's own access log is off. The
request id is a sane incoming ``X-Request-ID`` (1-64 of ``A-Z a-z 0-9 . _ : -``, and nothing ``redact`` would mask or
that looks like a random secret) or a new one, and is sent back in the ``X-Request-ID`` response header.

As a second line of defence every line is passed through ``redact`` (after NFKC, so full-width characters count as
what they look like): paths of verification pages and share links, bearer tokens, JWTs,
``client_secret``/``claim_code``/``token``-like parameters (in forms, JSON and Python reprs), the values pydantic
repeats in its errors, claim codes however typed and identity numbers (run together or in their groups, next to
letters too) are masked wherever they appear, in a message or an exception's text. Served by plain ``uvicorn
api.main:app`` instead of `registry serve`, uvicorn's own access log is on and its handlers are not these:
``guard_server_logs`` redacts uvicorn's lines (and the registry's error lines) before any handler formats them.

A warning a client can cause once per connection (the server's 400s, 408s, 414s and 431s) goes through
``RepeatedWarnings``: the first is logged, then at most one line per interval saying how many more came, so a flood
of slow or malformed requests does not become a flood of log lines.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.shown_paths import shown_path
from registry.metrics import REQUEST_SECONDS, REQUESTS

REQUEST_ID_HEADER = "X-Request-ID"
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
access_log = logging.getLogger("registry.access")
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_REQUEST_FIELDS = ("method", "route", "status", "duration_ms")
# A secret's name, then what follows it up to its value: ``=``/``:`` as in a form, a query string or a header, JSON
# (``"token": "…"``) or a Python repr (``{'client_secret': '…'}``, ``b'tr_holder=…'``). Not after a ``/``: in
# ``/oauth/token: ConnectionRefusedError`` ``token`` is a path segment and what follows is the error, not a value.
_NAMED_SECRET = re.compile(
    r"(?i)(?<!/)\b(\w*(?:secret|token|claim_code|password|id_number|csrf|tr_holder))"
    r"(['\"]?\s*[=:]\s*(?:b(?=['\"]))?['\"]?)[^\s&\"',;]+"
)
# Pydantic's error text repeats the value it refused (``input_value='bfr1-t1zv-6fj2'``), whatever the field was.
_INPUT_VALUE = re.compile(r"""(input_value=)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]|[^,\s\]]+)""")
# A claim code as a holder may type it: any case, grouped by hyphens or not, O/I/L for 0/1 (registry.auth.claim_codes).
# Not next to a hyphen: the groups of a UUID are not one.
_CLAIM_CODE = re.compile(r"(?i)(?<![0-9A-Z-])[0-9A-TV-Z]{4}(-?)[0-9A-TV-Z]{4}\1[0-9A-TV-Z]{4}(?![0-9A-Z-])")
_HEX = re.compile(r"[0-9a-f]+")
# An identity number (17 digits and a digit or X): run together or in its groups (110105 19491231 002X), between
# which a space, a hyphen or dash of any kind (NFKC leaves ‐ – — − as they are), a dot, a slash or an underscore, each
# with a space either side or not, the two not necessarily alike (110105 19491231-002X, 110105 – 19491231 – 002X); and
# next to letters too (``ID11010519491231002X``, a correlation id built from it) — only not inside a longer run of
# digits.
_ID_GAP = r"[ \t]?[./_\u2010-\u2015\u2212-]?[ \t]?"
_IDENTITY_NUMBER = re.compile(rf"(?<![0-9])[0-9]{{6}}{_ID_GAP}[0-9]{{8}}{_ID_GAP}[0-9]{{3}}[0-9Xx](?![0-9])")
# A verification or share-link path however a client typed it: a slash too many (/v//…) or in capitals (/V/…). Read
# from the first slash of a run only: tried at each slash of a long run (a path of 10,000 slashes) it took time growing
# with the square of the run's length — seconds for one 10 KB line, on every line that held it.
_VERIFICATION_PATH = re.compile(r"(?i)(?<!/)(/+v1/+verify/+|/+v/+|/+s/+)(?!\{)[^\s/?#\"'<>]+")
_REDACTIONS = (
    (_INPUT_VALUE, r"\1[redacted]"),
    (_VERIFICATION_PATH, r"\1[redacted]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[jwt]"),
    (_NAMED_SECRET, r"\1\2[redacted]"),
    (_IDENTITY_NUMBER, "[identity number]"),
)


def _claim_code(found: re.Match[str]) -> str:
    """Grouped, any 12 such characters are a claim code. Run together, only in capitals as printed, or holding a digit
    and not only small hex digits: else ``transparency`` (a 12-letter word without U) or a status list's id (12 hex
    digits) would be masked as one, and a code typed that way is seldom all hex (1 in 4,096)."""
    code = found.group()
    if found.group(1) or code.isupper() or (any(c.isdigit() for c in code) and not _HEX.fullmatch(code)):
        return "[claim code]"
    return code


def redact(text: str) -> str:
    if not text.isascii():  # full-width digits and letters (１１０１…, ｔｏｋｅｎ＝) are read as what they look like
        text = unicodedata.normalize("NFKC", text)
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return _CLAIM_CODE.sub(_claim_code, text)


# Random secrets and tokens are base64url: a long run holding capitals, small letters and digits (a UUID or a hex id,
# what proxies send, holds no mix of cases).
_RANDOM_LOOKING = re.compile(r"(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{20,}")
# The marks between the parts of a request id (``req-…``, ``hr.…``). After a hyphen ``redact`` leaves a claim code
# run together alone (a UUID's groups are not one), so each part is read on its own as well.
_ID_PARTS = re.compile(r"[._:-]")


def _secret_looking(text: str) -> bool:
    """Whether a client's request id could be a secret it pasted: ``redact`` would mask it or one of its parts (an
    upper-case UUID's last group reads as a claim code: such an id is replaced too), or it looks random."""
    parts = _ID_PARTS.sub(" ", text)
    return redact(text) != text or redact(parts) != parts or _RANDOM_LOOKING.search(text) is not None


def _address_shown(path: str) -> str:
    """A request's path as uvicorn's own lines may write it: without its query string, an identity number in a
    segment masked however it was typed (``shown_path``: in its groups, or in full-width digits, which uvicorn writes
    percent-encoded, %EF%BC%91…), a segment that looks like a pasted secret masked, then ``redact``."""
    segments = shown_path(path.split("?", 1)[0]).split("/")
    return redact("/".join("[redacted]" if _RANDOM_LOOKING.fullmatch(part) else part for part in segments))


def _scope_shown(value: object) -> object:
    """An ASGI scope as uvicorn's trace writes it (``Started scope={…}``): its decoded path as ``_address_shown``
    shows it, and neither its raw path nor its query string, whose escapes hold what the path shows masked
    (``/v1/%76erify/…`` is a verification path, ``?q=%31%31%30…`` an identity number the app reads decoded)."""
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        return value
    shown = {**value, "path": _address_shown(value["path"])}
    for name in ("raw_path", "query_string"):
        if name in shown:
            shown[name] = "<...>"
    return shown


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        current = getattr(record, "request_id", None) or request_id.get()
        if current is not None:
            entry["request_id"] = current
        for name in _REQUEST_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class RedactingFilter(logging.Filter):
    """``redact`` for the lines of loggers whose handlers the registry may not own: served by plain ``uvicorn
    api.main:app`` instead of `registry serve`, uvicorn's access log is on and its formatters are uvicorn's. A record's
    text is redacted before any handler formats it, its exception text too; uvicorn's access line keeps its shape
    (``AccessFormatter`` unpacks five arguments) and loses the query string, as the registry's own access log and the
    shipped nginx site do; its path (``_address_shown``) and its client address are masked, and at ``trace`` a
    request's scope keeps only its masked path (``_scope_shown``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            record.args = (redact(str(client)), method, _address_shown(str(path)), version, status)
        else:
            if record.name == "uvicorn.asgi" and isinstance(record.args, tuple):
                record.args = tuple(_scope_shown(arg) for arg in record.args)
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # arguments that do not fit the format: written as given, not raised here
                message = f"{record.msg} {record.args!r}"
            record.msg, record.args = redact(message), None
            record.__dict__.pop("color_message", None)  # uvicorn's coloured format string, for these arguments
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# Loggers whose records may reach a handler other than JsonFormatter's (a logger's filters see only its own records).
# uvicorn.asgi: at --log-level trace uvicorn writes each request's scope, its path and query string with it.
_GUARDED_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn.asgi", "registry.api", "registry.serve")


def guard_server_logs() -> None:
    """Put ``RedactingFilter`` on uvicorn's loggers and the registry's error loggers, once: uvicorn configures its
    logging before it imports the app, so this holds however the app is served."""
    for name in _GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())


@dataclass(slots=True)
class _Repeats:
    ends: float  # loop time at which the interval ends
    more: int = 0  # warnings not logged in it
    last: tuple[object, ...] = ()  # the arguments of the latest
    flush: asyncio.TimerHandle | None = None


class RepeatedWarnings:
    """Warnings of one kind (one format string) that can come thousands of times a second: the first is logged as it
    is; the others within ``interval`` seconds of it are counted, and when the interval ends one line says how many
    came, with the latest's words, and starts the next interval. A warning after an interval with none is the first
    again. Runs on the event loop (the server's protocol callbacks); without one, every warning is logged."""

    def __init__(self, logger: logging.Logger, *, interval: float) -> None:
        self.logger = logger
        self.interval = interval
        self._kinds: dict[str, _Repeats] = {}

    def warning(self, message: str, *args: object) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.logger.warning(message, *args)
            return
        now = loop.time()
        repeats = self._kinds.get(message)
        if repeats is not None and repeats.flush is not None and now >= repeats.ends:
            # The interval has ended but its count is not logged yet: an I/O callback (this one) runs before the
            # timers that fell due in the same loop iteration. The count comes first, as the timer would have.
            repeats.flush.cancel()
            self._summarise(message, repeats)
            repeats = self._kinds[message]
        if repeats is None or now >= repeats.ends:
            self.logger.warning(message, *args)
            self._kinds[message] = _Repeats(ends=now + self.interval)
            return
        repeats.more += 1
        repeats.last = args
        if repeats.flush is None:
            repeats.flush = loop.call_at(repeats.ends, self._summarise, message, repeats)

    def _summarise(self, message: str, repeats: _Repeats) -> None:
        """Logs the count of the interval ``repeats`` holds and starts the next — only if it is still the current."""
        if self._kinds.get(message) is not repeats:
            return
        self.logger.warning(
            "%d more in the last %g s, the latest: " + message, repeats.more, self.interval, *repeats.last
        )
        self._kinds[message] = _Repeats(ends=repeats.ends + self.interval)


def log_config(level: str) -> dict[str, Any]:
    """``logging.config.dictConfig`` settings for `registry serve`: every logger, uvicorn's included, as JSON lines on
    standard output; uvicorn's access log silenced (RequestLogMiddleware writes a better one)."""
    json_formatter = {"()": f"{__name__}.JsonFormatter"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # uvicorn sets ``use_colors`` on formatters of these two names when it is given; both are JSON here.
        "formatters": {"default": json_formatter, "access": json_formatter},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stdout"}
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            # SQL is not logged (bound values are hidden anyway: registry.db), whatever the root level.
            "sqlalchemy": {"level": "WARNING"},
            "aiosqlite": {"level": "WARNING"},  # at DEBUG it logs every statement with its bound values
        },
    }


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            # The id goes into every log line as it is: one that is or holds a secret is replaced by a new one.
            return text if _SANE_REQUEST_ID.fullmatch(text) and not _secret_looking(text) else None
    return None


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestLogMiddleware:
    """Gives each request its id (in the log context and the response header), writes its access-log line and counts
    and times it in the metrics — by route template (never the raw path), so tokens and numbers never become labels."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        current = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id.set(current)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = current
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = _route_template(scope)
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"  # label values stay bounded
            REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            REQUEST_SECONDS.labels(method=method, route=route).observe(elapsed)
            duration_ms = round(elapsed * 1000, 2)
            fields = {"method": scope["method"], "route": route, "status": status, "duration_ms": duration_ms}
            access_log.info("%s %s %d", scope["method"], route, status, extra=fields)
            request_id.reset(token)
