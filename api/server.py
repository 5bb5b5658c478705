"""How `registry serve` runs uvicorn: HTTP/1.1 (httptools) with a bounded request head.

uvicorn's httptools protocol keeps no limit on the request line or the headers: it gathers them in memory however long
they are (one 256 MB header was accepted, +520 MB resident). This protocol counts the head as it arrives and answers
**414** when the request line passes ``MAX_REQUEST_LINE_BYTES`` and **431** when the whole head (request line and
headers) passes ``MAX_REQUEST_HEAD_BYTES``, with a problem+json body, then closes the connection, throwing away
whatever still arrives: at most two reads (256 KiB each) beyond the limit are ever held. Bodies are not counted here
(BodySizeLimitMiddleware is).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from api.errors import HTTP_TITLES
from registry.errors import PROBLEM_TYPE_BASE
from registry.i18n import _, negotiate, translate

MAX_REQUEST_LINE_BYTES = 8 * 1024
MAX_REQUEST_HEAD_BYTES = 32 * 1024
LINGER_SECONDS = 2.0


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing oversized request lines (414) and heads (431) before they are kept."""

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

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # refused: the connection is closing and what still arrives is thrown away
        continuing, heads_begun = self._in_head, self._heads_begun
        super().data_received(data)
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
        self._in_head, self._head_bytes, self._parsed_bytes = True, 0, 0
        self._heads_begun += 1

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

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refusal is None:
            super().on_message_complete()

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
        self.logger.warning("refused a request whose %s passed %d bytes (%d)", part, limit, status)
        # Said in the reader's language when its Accept-Language arrived before the limit (a 431 may have it).
        lang = negotiate(
            next((value.decode("latin-1") for name, value in self.headers if name == b"accept-language"), None)
        )
        body = orjson.dumps(
            {
                "type": f"{PROBLEM_TYPE_BASE}http-{status}",
                "title": translate(HTTP_TITLES[status], lang),
                "status": status,
                "detail": translate(_("the {part} must fit in {limit} bytes", part=part, limit=limit), lang),
            }
        )
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/problem+json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        # A lingering close: closing with the client's bytes unread would reset the connection, and a reset can
        # destroy the answer before the client reads it. So end our side, throw away what still arrives (nothing is
        # kept), and close when the client does or after LINGER_SECONDS.
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
