"""No control character reaches the registry through the address: a path holding one (``%00``, ``%0A``…) names
nothing, and is answered 404 as any other unknown address; a query parameter holding one is refused (422), named.
PostgreSQL can neither store nor compare a NUL, so without this every look-up by path or query parameter would have
to check for one itself. (JSON bodies and forms are typed: free text is held to ``registry.schemas``' rule for text
a person reads, numbers and identity numbers to their formats, a client id by ``registry.auth.tokens``.)

Nor does the address a client sends choose where it is sent: ``slash_redirects`` answers an address with a slash too
many or too few with a Location naming the path and query only (see there).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, quote_from_bytes

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
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


def slash_redirects(router: Router) -> None:
    """Answer ``/v1/certificates/`` with 307 to ``/v1/certificates`` (and ``/x`` to ``/x/`` where only that exists) as
    Starlette does, but with a relative Location. Starlette's names the host the request's ``Host`` header named:
    ``Host: evil.example`` got ``Location: http://evil.example/v1/certificates``, which a cache in front of the
    registry could keep and hand to everyone (host-header injection). A relative one leaves the browser on the host it
    asked; uvicorn's ``proxy_headers`` (``registry serve`` trusts X-Forwarded-Proto and -For from
    ``FORWARDED_ALLOW_IPS``, 127.0.0.1 by default) sets the scheme and the client's address, which it then names
    nothing of. The app's other redirects (the holder's pages, 303) are fixed relative paths already."""
    router.redirect_slashes = False
    not_found = router.default

    async def redirect_or_not_found(scope: Scope, receive: Receive, send: Send) -> None:
        location = _slash_twin(router, scope) if scope["type"] == "http" else None
        if location is None:
            await not_found(scope, receive, send)
            return
        await RedirectResponse(location, status_code=307)(scope, receive, send)

    router.default = redirect_or_not_found


# What stays as it is in a Location's path and query (RFC 3986 pchar; "%" in a query is the client's own escape).
_PATH_SAFE = "/!$&'()*+,;=:@"
_QUERY_SAFE = _PATH_SAFE + "?%"


def _slash_twin(router: Router, scope: Scope) -> str | None:
    """The relative address of the route this path names with a slash more or less, or None when none does (or it
    would start with ``//``, which a browser reads as another host)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    route_path = path.removeprefix(root_path) if root_path else path  # what the routes match (Starlette's reading)
    if route_path in ("", "/"):
        return None
    twin = path.rstrip("/") if route_path.endswith("/") else path + "/"
    if not twin or twin.startswith("//"):
        return None
    twin_scope = {**scope, "path": twin}
    if all(route.matches(twin_scope)[0] is Match.NONE for route in router.routes):
        return None
    location = quote(twin, safe=_PATH_SAFE)  # the decoded path, escaped again: a backslash or a space cannot pass
    query: bytes = scope.get("query_string", b"")
    return f"{location}?{quote_from_bytes(query, safe=_QUERY_SAFE)}" if query else location
