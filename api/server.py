"""How `registry serve` runs uvicorn: HTTP/1.1 (httptools) with a bounded request head, and deadlines for slow clients.

uvicorn's httptools protocol keeps no limit on the request line or the headers: it gathers them in memory however long
they are (one 256 MB header was accepted, +520 MB resident). This protocol counts the head as it arrives and answers
**414** when the request line passes ``MAX_REQUEST_LINE_BYTES`` and **431** when the whole head (request line and
headers) passes ``MAX_REQUEST_HEAD_BYTES``, with a problem+json body, then closes the connection, throwing away
whatever still arrives: at most two reads (256 KiB each) beyond the limit are ever held. Bodies are not counted here
(BodySizeLimitMiddleware is).

Nor does uvicorn time a request while it arrives: a head never finished, or a body sent a byte at a time, held its
connection for good (300 of them for minutes; 20,000 used up the process's file descriptors). Here a head must be
complete within ``REGISTRY_HTTP_HEAD_TIMEOUT_SECONDS`` of the connection opening or the previous answer ending, and a
body within ``REGISTRY_HTTP_BODY_TIMEOUT_SECONDS`` of its head plus a second per ``BODY_BYTES_PER_SECOND`` it declares
(or has sent, when chunked); past either the client gets **408** (or, with nothing of a request received, just the
close) and the connection is closed. An answer given before its request's body has all arrived (a 413 at the
Content-Length, a 429) ends the connection too: uvicorn would wait for the rest of the body with no timer at all.

A request httptools cannot parse (a raw UTF-8 or control character in the address, a ``Content-Length`` that is not a
number, a bad chunk size, a header name with a space) is answered **400**, where uvicorn wrote a plain-text English
"Invalid HTTP request received.": a problem saying what is malformed and how to send it, in the language of an
``Accept-Language`` among the bytes received (the parser may stop before it reaches that header), never echoing them.
One behind an answer still being sent is answered once that answer is complete. uvicorn's own line for each is
dropped: these are logged as the 408s, 414s and 431s are, the first, then a line a minute with how many more came.

Every refusal here says its language (``Content-Language``) and that it depends on ``Accept-Language`` (``Vary``), as
the app's problems do.

Nor does uvicorn time an answer: a client that never read held its connection, request and unsent answer for good.
Once an answer waits in the server (the kernel's buffer is full), some of it must move every
``REGISTRY_HTTP_SEND_TIMEOUT_SECONDS``, else the connection is reset, logged as the 408s are.

A browser opening a page (``/v…``, ``/s/…``, ``/holder…``) gets these refusals as the problem page the app shows
(``api.page_problems``), in the page's language, when its ``Accept`` header has arrived whole before the refusal: a
431 after it, a 408 whose head stalled after it or whose body was late. A 414 comes before any header can, and a head
that stalls before its ``Accept`` says nothing of what it accepts: those stay problem+json, as for every other client.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from api import page_problems
from api.errors import HTTP_TITLES
from api.logs import RepeatedWarnings
from api.sockets import reset, unsent_bytes
from registry.config import Settings
from registry.errors import PROBLEM_TYPE_BASE
from registry.i18n import _, negotiate, translate
from registry.metrics import SERVER_REFUSALS

MAX_REQUEST_LINE_BYTES = 8 * 1024
MAX_REQUEST_HEAD_BYTES = 32 * 1024
LINGER_SECONDS = 2.0
# A body earns a second of its deadline for each of these it declares: a 1 MiB body gets 64 s more, a 32 MiB batch
# 34 minutes — a slow office line's pace, while a client that sends a byte now and then is cut off.
BODY_BYTES_PER_SECOND = 16 * 1024
# One line per slow or oversized request would let a slowloris flood write the log: the first of each kind is logged,
# then one line a minute with how many more came.
_REFUSALS_LOG = RepeatedWarnings(logging.getLogger("uvicorn.error"), interval=60.0)
# uvicorn logs this for every request httptools refuses, before it calls send_400_response: a flood of malformed
# requests would write one line each. It is dropped; send_400_response logs through _REFUSALS_LOG instead.
_UVICORN_PARSER_LINE = "Invalid HTTP request received."


def _not_uvicorns_parser_line(record: logging.LogRecord) -> bool:
    return not (record.msg == _UVICORN_PARSER_LINE and record.module == "httptools_impl")


logging.getLogger("uvicorn.error").addFilter(_not_uvicorns_parser_line)  # kept by dictConfig: it adds, never clears
# An Accept-Language among the raw bytes of a request the parser gave up on before reaching its headers.
_ACCEPT_LANGUAGE = re.compile(rb"\r\naccept-language[ \t]*:[ \t]*([^\r\n]{1,200})", re.IGNORECASE)
# How much of the earlier reads of an unfinished head is kept for that search: llhttp reports a header line only once
# the byte after its CRLF has arrived, so one that ended a read is not among the parsed headers yet.
_HEAD_TAIL_BYTES = 1024
# What a request httptools refused got wrong, by words of llhttp's reason ("Invalid character in chunk size").
_MALFORMED = (
    ("chunk", _("the chunked body is malformed: each chunk starts with its size in hexadecimal on a line of its own")),
    (
        "content-length",
        _(
            "the body's length is unclear: send one Content-Length holding a whole number of bytes, "
            "or Transfer-Encoding: chunked, not both"
        ),
    ),
    ("transfer-encoding", _("Transfer-Encoding must end with chunked, and not come with a Content-Length")),
    (
        "header",
        _(
            "a header is malformed: its name is letters, digits and hyphens (no spaces), its value holds no control "
            "characters, and each line ends with CRLF"
        ),
    ),
)
_BAD_ADDRESS = _(
    "the address holds a character that must be percent-encoded (a space, a control character, or a non-ASCII "
    "character such as 具, which is %E5%85%B7): encode it, as curl -G --data-urlencode 'q=具身智能' does"
)
_BAD_METHOD = _("the request does not begin with an HTTP method such as GET or POST: send HTTP/1.1 on this port")
_NOT_HTTP = _(
    "the request is not well-formed HTTP/1.1: its request line is METHOD ADDRESS HTTP/1.1, each line ending with CRLF"
)


def malformed(error: BaseException | None) -> str:
    """What is wrong with a request httptools refused, and how to send it, from the parser's error; never its bytes."""
    if isinstance(error, httptools.HttpParserInvalidURLError):
        return _BAD_ADDRESS
    if isinstance(error, httptools.HttpParserInvalidMethodError):
        return _BAD_METHOD
    reason = str(error).lower()
    return next((said for word, said in _MALFORMED if word in reason), _NOT_HTTP)


@dataclass(frozen=True, slots=True)
class Deadlines:
    head_seconds: float
    body_seconds: float
    send_seconds: float

    def body_due(self, started: float, size: int) -> float:
        """When a body of ``size`` bytes (declared, or received so far when larger) whose head ended at ``started``
        must be complete."""
        return started + self.body_seconds + size / BODY_BYTES_PER_SECOND


@functools.cache
def deadlines() -> Deadlines:
    """From the environment, once per process (a protocol is made per connection)."""
    given = Settings()
    return Deadlines(given.http_head_timeout_seconds, given.http_body_timeout_seconds, given.http_send_timeout_seconds)


def _closes_if_answered_early(cycle: Any) -> None:
    """An answer that starts before its request's body has all arrived (a 413 at the Content-Length, a 404 that never
    reads the body) ends the connection (``on_response_complete``): it says so, ``Connection: close``, so a client
    does not send its next request on it."""
    if cycle is None:
        return
    send = cycle.send

    async def send_saying_close(message: Any) -> None:
        if message["type"] != "http.response.start" or not cycle.more_body:
            await send(message)
            return
        cycle.keep_alive = False  # uvicorn writes "connection: close" ...
        await send(message)
        # ... and would close at once once the answer is sent, resetting a connection with unread data (the answer
        # could be lost): the protocol closes it itself, lingering (``on_response_complete``).
        cycle.keep_alive, cycle.said_close = True, True

    cycle.send = send_saying_close


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing oversized request lines (414) and heads (431) before they are kept, and
    requests that arrive too slowly (408)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = False  # a request has begun and its headers are not complete
        self._heads_begun = 0
        self._head_bytes = 0  # reads that fell wholly inside one unfinished head
        self._parsed_bytes = 0  # what the parser handed over of the head: exact, however the bytes arrived
        self._refusal: int | None = None
        self._closing = False  # answered for the last time: what still arrives is thrown away
        self._deadlines = deadlines()
        self._timer: asyncio.TimerHandle | None = None  # the head's deadline, or the body's
        self._body_started = 0.0  # loop time at which the body's head ended
        self._body_declared = 0  # its Content-Length
        self._body_received = 0
        self._read = b""  # the read being parsed: where a refused request's Accept-Language is looked for
        self._head_tail = b""  # and the end of the earlier reads of the head being received (_HEAD_TAIL_BYTES)
        self._sniffed: str | None = None  # the Accept-Language found there
        self._deferred: str | None = None  # a 400's detail, to be answered once the answer in flight is complete
        self._send_timer: asyncio.TimerHandle | None = None  # while an answer waits in the write buffer
        self._waiting = 0  # how much of it waited at the last check
        self._answering: Any = None  # the request whose answer is being sent

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._deadlines.head_seconds, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._drop_answer()
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        self._answering = cycle  # self.cycle is the last request parsed: with pipelining, not the one answered
        super()._start_asgi_task(cycle, app)

    def _drop_answer(self) -> None:
        """No more sending: uvicorn stops only the last request parsed (a pipelined answer would write on, and fail)."""
        if self._send_timer is not None:
            self._send_timer.cancel()
        if self._answering is not None and not self._answering.response_complete:
            self._answering.disconnected = True

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return  # refused or late: the connection is closing and what still arrives is thrown away
        continuing, heads_begun = self._in_head, self._heads_begun
        self._read = data
        super().data_received(data)
        self._read = b""
        if self._closing:
            return  # the parser refused it (send_400_response)
        if self._in_head:
            self._keep_tail(data, began=self._heads_begun != heads_begun)
        if self._refusal is None and continuing and self._in_head and self._heads_begun == heads_begun:
            # The whole read went into a header that is still not complete, which httptools holds until it ends: count
            # the reads. (The read in which a request begins is not counted: it may hold the end of the one before.)
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_HEAD_BYTES:  # a lower bound of the head, as _parsed_bytes is
                self._refusal = 431
        if self._refusal is not None:
            self._refuse(self._refusal)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes, self._parsed_bytes, self._head_tail = True, 0, 0, b""
        self._heads_begun += 1
        if self._timer is None:  # a request pipelined behind one still being answered
            self._arm(self._deadlines.head_seconds, self._head_late)

    def on_url(self, url: bytes) -> None:
        if self._refusal is None:
            super().on_url(url)
            self._count(len(url), line=True)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refusal is None:
            super().on_header(name, value)
            self._count(len(name) + len(value) + 4, line=False)  # "name: value\r\n"

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._refusal is None:
            super().on_headers_complete()
            _closes_if_answered_early(self.cycle)
            declared = next((value for name, value in self.headers if name == b"content-length"), b"")
            self._body_started = self.loop.time()
            self._body_declared = min(int(declared), 1 << 40) if declared.isdigit() else 0
            self._body_received = 0
            due = self._deadlines.body_due(self._body_started, self._body_declared)
            self._arm(due - self._body_started, self._body_late)

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            self._body_received += len(body)
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refusal is None:
            self._disarm()  # the request is all here: the app's time is not the client's
            super().on_message_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_sending()

    def on_response_complete(self) -> None:
        self._watch_sending()  # the end of an answer may wait, and a close would wait for it for good
        if self._deferred is not None and not self.pipeline:
            self.server_state.total_requests += 1
            detail, self._deferred = self._deferred, None
            if not self.transport.is_closing():
                self._answer(400, HTTP_TITLES[400], detail)
            return
        cycle = self.cycle
        early = cycle is not None and (cycle.more_body or getattr(cycle, "said_close", False))
        if cycle is not None and cycle.response_complete and early and not self.transport.is_closing():
            # Answered before its body had all arrived (a 413 at its Content-Length, a 429): uvicorn would go on
            # reading the rest, for no one, with no timer, and keep the connection when the client had gone.
            self.server_state.total_requests += 1
            cycle.body = bytearray()
            self._linger()
            return
        super().on_response_complete()
        if self._timer is None and not self.transport.is_closing():
            self._arm(self._deadlines.head_seconds, self._head_late)  # the next head, besides the keep-alive timeout

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request httptools cannot parse, called while ``data_received`` handles the parser's
        error (``msg`` is its English "Invalid HTTP request received."): a 400 problem in the reader's language saying
        what is malformed. What arrives after it is thrown away: the parser can read no further."""
        error = sys.exc_info()[1]
        detail = malformed(error)
        # llhttp's reason ("Invalid character in chunk size") is a fixed text: it never holds the request's bytes.
        _REFUSALS_LOG.warning("refused a request the HTTP parser could not read (400): %s", error or msg)
        found = _ACCEPT_LANGUAGE.search(self._head_tail + self._read if self._in_head else self._read)
        self._sniffed = found[1].decode("latin-1") if found is not None else None
        self._closing = True
        self._disarm()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        # A malformed head has no cycle yet: self.cycle is the request before it, which is answered as it would be.
        queued = [] if self._in_head else [entry for entry in self.pipeline if entry[0] is cycle]
        for entry in queued:
            self.pipeline.remove(entry)  # its body is the malformed part: it is never run
        if not self._in_head and cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the malformed body's own request: its app reads no more, and is not sent
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        in_flight = queued or self.pipeline or (self._in_head and cycle is not None and not cycle.response_complete)
        if in_flight:
            self._deferred = detail  # not written into the answer being sent: after it (on_response_complete)
            return
        self._answer(400, HTTP_TITLES[400], detail)

    def _keep_tail(self, data: bytes, *, began: bool) -> None:
        """Keep the end of a read that ended inside a head, for ``send_400_response`` to look for its Accept-Language
        in. Of the read the head began in, only what follows the last blank line (the end of the head before)."""
        if began:
            data = data[data.rfind(b"\r\n\r\n") + 4 :] if b"\r\n\r\n" in data else data
        self._head_tail = (self._head_tail + data[-_HEAD_TAIL_BYTES:])[-_HEAD_TAIL_BYTES:]

    def _watch_sending(self) -> None:
        """While any of an answer waits in the write buffer, check every ``send_seconds`` that some of it moved."""
        if self._send_timer is None and self.transport.get_write_buffer_size():
            self._waiting = unsent_bytes(self.transport)
            self._send_timer = self.loop.call_later(self._deadlines.send_seconds, self._send_late)

    def _send_late(self) -> None:
        self._send_timer = None
        waiting = unsent_bytes(self.transport)
        if waiting != self._waiting:  # the client took some (or, not paused, the app wrote more): check on
            self._watch_sending()
            return
        # The client reads nothing. close() would wait for it for good: a reset (SO_LINGER 0) frees every buffer.
        _REFUSALS_LOG.warning(
            "dropped a connection whose client took none of its answer in %.0f s", self._deadlines.send_seconds
        )
        self._drop_answer()
        reset(self.transport)

    def _arm(self, delay: float, late: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, late)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_late(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused or (self.cycle is not None and not self.cycle.response_complete):
            # A head behind a request still being answered, or one the server stopped reading: not the client's delay.
            self._arm(self._deadlines.head_seconds, self._head_late)
        elif self._in_head:
            self._request_timeout(self._deadlines.head_seconds)
        else:
            self.transport.close()  # nothing of a request came: closed as an idle keep-alive connection is

    def _body_late(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused or self.pipeline:
            # The app has not read what came, or the late body's request is queued behind one still being answered
            # (pipelined): not the client's delay, and no 408 may be written into the other request's answer. The
            # clock starts again when its turn has come.
            self._body_started = now
        due = self._deadlines.body_due(self._body_started, max(self._body_declared, self._body_received))
        if now < due:
            self._arm(due - now, self._body_late)
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app reads no more of the body, and what it answers is not sent
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        self._request_timeout(now - self._body_started)

    def _request_timeout(self, seconds: float) -> None:
        _REFUSALS_LOG.warning("closed a connection whose request had not arrived after %.0f s (408)", seconds)
        detail = _("the request did not arrive within {seconds} s", seconds=round(seconds))
        self._answer(408, HTTP_TITLES[408], detail)

    def _count(self, size: int, *, line: bool) -> None:
        self._parsed_bytes += size
        if line and self._parsed_bytes > MAX_REQUEST_LINE_BYTES:
            self._refusal = 414
        elif self._parsed_bytes > MAX_REQUEST_HEAD_BYTES:
            self._refusal = 431

    def _refuse(self, status: int) -> None:
        if self.transport.is_closing():
            return
        limit = MAX_REQUEST_LINE_BYTES if status == 414 else MAX_REQUEST_HEAD_BYTES
        part = _("request line") if status == 414 else _("request line and headers")
        _REFUSALS_LOG.warning("refused a request whose %s passed %d bytes (%d)", part, limit, status)
        self._answer(status, HTTP_TITLES[status], _("the {part} must fit in {limit} bytes", part=part, limit=limit))

    def _arrived(self) -> dict[str, Any] | None:
        """What has arrived of the request being refused, as much of an ASGI scope as ``api.page_problems`` reads
        (path, query string, the headers complete so far), once its target has all arrived (a header has followed
        it); else None."""
        if not self.headers:
            return None
        try:
            target = httptools.parse_url(self.url)
            path = unquote(target.path.decode("ascii")) if target.path else "/"
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return None
        return {"type": "http", "path": path, "query_string": target.query or b"", "headers": self.headers}

    def _accept_language(self) -> str | None:
        """The Accept-Language of the request being refused, when it arrived before the refusal (a 431's may have):
        among its parsed headers, else among the raw bytes of the head's earlier reads (their last
        ``_HEAD_TAIL_BYTES``) and of the read the parser refused (``send_400_response``)."""
        said = (value.decode("latin-1") for name, value in self.headers or [] if name == b"accept-language")
        return next(said, self._sniffed)

    def _problem(self, status: int, title: str, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """A problem+json, in the language the request's Accept-Language asks for (``_accept_language``), saying
        which (``Content-Language``) and that it depends on it (``Vary``), as the app's problems do."""
        lang = negotiate(self._accept_language())
        problem = {
            "type": f"{PROBLEM_TYPE_BASE}http-{status}",
            "title": translate(title, lang),
            "status": status,
            "detail": translate(detail, lang),
        }
        body = orjson.dumps(problem)
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-language", b"zh-CN" if lang == "zh" else b"en"),
            (b"vary", b"Accept-Language"),
            (b"content-length", b"%d" % len(body)),
        ]
        return headers, body

    def _answer(self, status: int, title: str, detail: str) -> None:
        """The last answer on this connection, then a lingering close: the problem page for a browser opening a page
        (``api.page_problems``), else a problem+json."""
        SERVER_REFUSALS.labels(status=str(status)).inc()  # never reaches the app, so REQUESTS does not count it
        arrived = self._arrived()
        page = None if arrived is None else page_problems.server_page(status, title=title, detail=detail, scope=arrived)
        headers, body = (
            (page.raw_headers, bytes(page.body)) if page is not None else self._problem(status, title, detail)
        )
        if arrived is not None and page_problems.is_page(arrived["path"]):
            # As the app's refusals on a page: what it says depends on it (one Vary, naming Accept-Language too).
            varies = b", ".join([*(value for name, value in headers if name == b"vary"), b"Accept"])
            headers = [*((name, value) for name, value in headers if name != b"vary"), (b"vary", varies)]
        head = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *headers]:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        self._linger()

    def _linger(self) -> None:
        """A lingering close: closing with the client's bytes unread would reset the connection, and a reset can
        destroy the answer before the client reads it. So end our side, throw away what still arrives (nothing is
        kept), and close when the client does or after LINGER_SECONDS."""
        self._closing = True
        self._disarm()
        self._watch_sending()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.flow.resume_reading()  # to see the client's end, and throw away what comes before it
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
