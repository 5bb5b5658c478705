"""``HEAD`` wherever ``GET`` is served (RFC 9110 §9.3.2: a general-purpose server supports both). FastAPI routes answer
only the methods they declare, so a link checker's or a cache's ``HEAD`` of a status list, the JWKS, a verification
page or a QR code was 405. Here it is the ``GET`` (the same status and headers, ``Content-Length`` included) without
the body. It sits outside the rate limits, which count it as the ``GET`` it costs; and it is recorded as the ``GET`` is
(a holder's "who looked", the audit): it learns what the ``GET`` would (a status, whether a name matches), so it is a
look like any other."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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

        await self.app({**scope, "method": "GET"}, receive, headers_only)
