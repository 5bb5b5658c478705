"""No answer leaves without saying how it may be cached: one with no ``Cache-Control`` of its own is ``no-store``.

Holder names and client secrets were in answers whose routes said nothing, and a cache other than the shipped nginx
(which skips requests with a cookie or ``Authorization``), or a browser, was free to keep them (RFC 9111 §4.2.2 lets
it guess a lifetime). A route whose answer may be kept says so itself (verification, status
lists, the JSON-LD context, QR codes, the PDF signing root); everything else, public or not, health checks and errors
included, is not kept. A ``304`` is left as it is: its headers replace the stored answer's (RFC 9111 §4.3.4), so a
``no-store`` there would tell a cache to drop the answer it is revalidating."""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CACHE_CONTROL: Final = b"cache-control"
NO_STORE: Final = (CACHE_CONTROL, b"no-store")


class NoStoreByDefault:
    """Raw ASGI, as it wraps every verification: one look at the headers of each answer's start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] != 304:
                headers = message.get("headers", ())
                if not any(name.lower() == CACHE_CONTROL for name, _ in headers):
                    message = {**message, "headers": [*headers, NO_STORE]}
            await send(message)

        await self.app(scope, receive, send_marked)
