"""No control character reaches the registry through the address: a path holding one (``%00``, ``%0A``…) names
nothing, and is answered 404 as any other unknown address; a query parameter holding one is refused (422), named.
PostgreSQL can neither store nor compare a NUL, so without this every look-up by path or query parameter would have
to check for one itself. (JSON bodies and forms are typed: free text is held to ``registry.schemas``' rule for text
a person reads, numbers and identity numbers to their formats, a client id by ``registry.auth.tokens``.)"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from registry.errors import InvalidInput
from registry.schemas import control_character

# A percent-encoded control character in a raw query string (servers refuse raw ones in the request line).
_ENCODED_CONTROL = re.compile(rb"%(?:[01][0-9A-Fa-f]|7[Ff]|[Cc]2%[89][0-9A-Fa-f])")


class ControlCharacterMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = _refused(scope)
            if refused is not None:
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refused(scope: Scope) -> ASGIApp | None:
    """The answer to a request holding a control character in its address, or None (nearly always, and cheaply:
    one search of the path and one of the raw query string; the language is worked out only for a refusal)."""
    if control_character(scope["path"]) is not None:
        detail, title = errors.HTTP_DETAILS["Not Found"], errors.HTTP_TITLES[404]
        return errors.problem(404, slug="http-404", title=title, detail=detail, lang=errors.language(scope))
    query: bytes = scope.get("query_string", b"")
    if not _ENCODED_CONTROL.search(query):
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace"):
        problem = control_character(name) or control_character(value)
        if problem is not None:
            field = name if control_character(name) is None else "query"
            invalid = InvalidInput.field(field, problem)
            return errors.registry_problem(invalid, instance=scope["path"], lang=errors.language(scope))
    return None
