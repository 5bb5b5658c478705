"""An error on a page people open in a browser (``/v``, ``/v/…``, ``/s/…``, ``/holder…``) is answered as a page.

The pages answer their own refusals as pages (a number not found, a wrong claim code), but what happens around them
answered problem+json, which a browser shows as raw text: the abuse limits' 429 and the body cap's 413 on a form, a
path under ``/v/`` or ``/holder/`` that names no page (404) or a method it does not take (405), a database out of
reach (503), a control character in the address (400). :class:`PagePaths` marks such a request, and
:func:`api.errors.problem` and :func:`api.errors.registry_problem`, where every problem answer is made, then make this
page instead: the same status and headers (``Retry-After`` included), the title and detail in the page's language
(``?lang=``, Chinese by default, as on the pages) and the other beneath, and a way back. Only for a client that asks
for HTML (``Accept`` naming ``text/html``, as every browser's does): any other (curl, a script, ``*/*``) still gets
problem+json. The server's own refusals, made before any app runs (``api.server``: a head or body too slow, 408; a
head too large, 431), are pages too when what arrived of the request says so (``server_page``).
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Final

from fastapi.templating import Jinja2Templates
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.shown_paths import shown_path
from registry.i18n import Language, language_of, translate

# The language and path of the page the current request is for; None for everything else (the API, the well-known
# files).
_PAGE: ContextVar[tuple[Language, str] | None] = ContextVar("page", default=None)
_templates: Final = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_page(path: str) -> bool:
    return path in ("/v", "/holder") or path.startswith(("/v/", "/s/", "/holder/"))


class PagePaths:
    """Marks a request for a page, with its language, for the problem answers made while it runs. Set for every
    request (None for all but pages), so nothing carries over from one request to the next in one task."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = is_page(scope["path"])
        wanted = page and _accepts_html(Headers(scope=scope).get("accept", ""))
        _PAGE.set((_language(scope), scope["path"]) if wanted else None)
        if not page:
            await self.app(scope, receive, send)
            return

        async def varying(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:  # a refusal depends on Accept
                headers = MutableHeaders(scope=message)
                headers["Vary"] = ", ".join(filter(None, (headers.get("vary"), "Accept")))
            await send(message)

        await self.app(scope, receive, varying)


def _accepts_html(accept: str) -> bool:
    """Whether ``Accept`` names text/html with a weight above 0 (``text/html;q=0`` refuses it)."""
    for media_range in accept.split(","):
        kind, *parameters = (part.strip() for part in media_range.split(";"))
        if kind.lower() != "text/html":
            continue
        weights = [value for name, _, value in (p.partition("=") for p in parameters) if name.strip().lower() == "q"]
        try:
            return not weights or float(weights[0]) > 0
        except ValueError:
            return False
    return False


def _language(scope: Scope) -> Language:
    """The pages' reading of ``?lang=`` (``api.deps.page_language``): English if it names English, else Chinese."""
    query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
    return "en" if language_of(query.get("lang", "zh")) == "en" else "zh"


def page(status: int, *, title: str, detail: str, headers: dict[str, str]) -> HTMLResponse | None:
    """The page for a problem, when the current request is for a page; else None (answer problem+json)."""
    current = _PAGE.get()
    if current is None:
        return None
    lang, path = current
    return _render(status, title=title, detail=detail, headers=headers, lang=lang, path=path)


def server_page(status: int, *, title: str, detail: str, scope: Scope) -> HTMLResponse | None:
    """The page for a refusal the server makes before any app runs (``api.server``), when what has arrived of the
    request (``scope``: its path, query string and the headers complete so far) is for a page and its ``Accept``
    asks for HTML; else None (problem+json, as when no ``Accept`` has arrived yet)."""
    if not is_page(scope["path"]) or not _accepts_html(Headers(scope=scope).get("accept", "")):
        return None
    return _render(status, title=title, detail=detail, headers={}, lang=_language(scope), path=scope["path"])


def _render(
    status: int, *, title: str, detail: str, headers: dict[str, str], lang: Language, path: str
) -> HTMLResponse:
    from api.holder_text import TEXT as HOLDER_TEXT
    from api.routes.pages import TEXT as PAGE_TEXT

    other: Language = "en" if lang == "zh" else "zh"
    holder = path == "/holder" or path.startswith("/holder/")
    text = HOLDER_TEXT if holder else PAGE_TEXT
    said = {code: (translate(title, code), translate(detail, code)) for code in (lang, other)}
    back = ("/holder", HOLDER_TEXT[lang]["back"]) if holder else ("/v", PAGE_TEXT[lang]["try_form"])
    response = _templates.TemplateResponse(
        Request({"type": "http", "path": path, "headers": [], "query_string": b""}),
        "problem.html",
        {
            "lang": lang,
            "t": text[lang],
            "u": text[other],
            "alt_lang": "zh-CN" if other == "zh" else "en",
            "switch_url": f"{shown_path(path)}?lang={other}",  # an ID typed into the URL is not said back
            "page_title": said[lang][0],
            "said": said,
            "back_url": f"{back[0]}?lang={lang}",
            "back_text": back[1],
        },
        status_code=status,
        headers={**headers, **_PAGE_HEADERS, "Content-Language": "zh-CN" if lang == "zh" else "en"},
    )
    return response
