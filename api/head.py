"""``HEAD`` wherever ``GET`` is served (RFC 9110 §9.3.2: a general-purpose server supports both). FastAPI routes answer
only the methods they declare, so a link checker's or a cache's ``HEAD`` of a status list, the JWKS, a verification
page or a QR code was 405. Here it is the ``GET`` (the same status and headers, ``Content-Length`` included) without
the body. It sits outside the rate limits, which count it as the ``GET`` it costs; and it is recorded as the ``GET`` is
(a holder's "who looked", the audit): it learns what the ``GET`` would (a status, whether a name matches), so it is a
look like any other. A download (a PDF, a credential, the CSV export) is the exception: ``HeadOnly`` tells its route
that no body will be sent, and the route then makes no document and records no download; the headers it can give
without making one (type, attachment name, caching) are sent, ``Content-Length`` is not (RFC 9110 §9.3.2 allows
leaving out what only making the content would tell)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD: Final = "registry.head"  # set in the scope of a HEAD request, which the routes see as a GET


class HeadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET", HEAD: True}, receive, headers_only)


def _head_only(request: Request) -> bool:
    return bool(request.scope.get(HEAD))


# True when the GET being answered is a HEAD: its body will be thrown away.
HeadOnly = Annotated[bool, Depends(_head_only)]


def headers_only(media_type: str, headers: dict[str, str]) -> Response:
    """The answer to a HEAD of a download, without making the download: no Content-Length, as it is not known."""
    response = Response(media_type=media_type, headers=headers)
    del response.headers["content-length"]
    return response
