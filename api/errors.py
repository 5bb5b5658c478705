"""Every error leaves as application/problem+json (RFC 9457) with the failing fields named."""

from __future__ import annotations

import logging
import re
from typing import Any

import asyncpg
import orjson
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from api import page_problems
from api.shown_paths import shown_problem
from registry.errors import (
    PROBLEM_TYPE_BASE,
    InvalidClient,
    InvalidInput,
    InvalidScope,
    RegistryError,
    UnsupportedGrantType,
    UnsupportedMediaType,
    field_errors,
)
from registry.faults import database_fault, unavailable
from registry.i18n import Language, Listing, Message, _, negotiate, translate

log = logging.getLogger("registry.api")
PROBLEM_JSON = "application/problem+json"
# For ``responses=``: what a route that needs the database answers while it is out of reach (see registry.faults).
DATABASE_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The database is out of reach for a moment; nothing was confirmed. Retry after Retry-After "
        "seconds (a request that creates certificates: with the same Idempotency-Key).",
        "content": {PROBLEM_JSON: {}},
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    }
}


# The API's own problems (not RegistryErrors), and the server's (api/server.py): their titles.
HTTP_TITLES = {
    400: _("Bad request"),
    401: _("Authentication required"),
    404: _("Not found"),
    405: _("Method not allowed"),
    408: _("Request timeout"),
    413: _("Request too large"),
    414: _("Request URI too long"),
    415: _("Unsupported media type"),
    429: _("Too many requests"),
    431: _("Request header fields too large"),
    500: _("Internal error"),
    503: _("Temporarily unavailable"),
}
REQUEST_FAILED = _("Request failed")
# What Starlette and FastAPI put in an HTTPException's detail, in English only (a page or a form can meet each: the
# router's 404 and 405, a form that cannot be parsed), said for people; ``framework_detail`` reads them.
HTTP_DETAILS = {
    "Not Found": _("Not Found"),
    "Method Not Allowed": _("Method Not Allowed"),
    "Unauthorized": _("Unauthorized"),
    "Not authenticated": _("Not authenticated"),
    "Content Too Large": _("Content Too Large"),
    "There was an error parsing the body": _("There was an error parsing the body"),
    "Missing boundary in multipart.": _("Missing boundary in multipart."),
    "Invalid multipart data.": _("Invalid multipart data."),
    'The Content-Disposition header field "name" must be provided.': _(
        'The Content-Disposition header field "name" must be provided.'
    ),
}
# Those that carry a number (Starlette's form limits), by the English they are said in.
_NUMBERED_DETAILS = (
    (
        re.compile(r"Too many fields\. Maximum number of fields is (\d+)\."),
        _("Too many fields. Maximum number of fields is {limit}."),
    ),
    (
        re.compile(r"Too many files\. Maximum number of files is (\d+)\."),
        _("Too many files. Maximum number of files is {limit}."),
    ),
    (re.compile(r"Field exceeded maximum size of (\d+)KB\."), _("Field exceeded maximum size of {limit}KB.")),
    (re.compile(r"Part exceeded maximum size of (\d+)KB\."), _("Part exceeded maximum size of {limit}KB.")),
)


def framework_detail(detail: str, status: int) -> str:
    """An HTTPException's detail, to be said in the reader's language: ours (a Message) as it is, Starlette's and
    FastAPI's from ``HTTP_DETAILS``; any other is English only, so a reader of another language gets the status's
    title instead (an English reader the detail as it came)."""
    if isinstance(detail, Message):
        return detail
    known = HTTP_DETAILS.get(detail)
    if known is not None:
        return known
    for pattern, said in _NUMBERED_DETAILS:
        if (found := pattern.fullmatch(detail)) is not None:
            return Message(said.template, limit=int(found[1]))
    # A Message whose English is the detail and whose template, said in any other language, is the title's.
    unknown = str.__new__(Message, detail)
    unknown.template, unknown.values = HTTP_TITLES.get(status, REQUEST_FAILED).template, {}
    return unknown


def language(scope: Scope) -> Language:
    """The language a request is answered in: ``?lang=`` (zh or en), else ``Accept-Language``, else English."""
    query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
    return negotiate(Headers(scope=scope).get("accept-language"), query.get("lang"))


def said_in(response: Response, lang: Language) -> Response:
    """Mark a problem answer with its language, and that it depends on the Accept-Language the request sent."""
    response.headers["Content-Language"] = "zh-CN" if lang == "zh" else "en"
    response.headers["Vary"] = "Accept-Language"
    return response


def problem(
    status: int, *, slug: str, title: str, detail: str, lang: Language, instance: str | None = None, **extra: Any
) -> Response:
    """A problem+json answer with ``title`` and ``detail`` said in ``lang`` (they may be registry.i18n Messages), or
    on a page a browser opened, a page saying them (``api.page_problems``)."""
    shown = page_problems.page(status, title=title, detail=detail, headers={})
    if shown is not None:
        return shown
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": translate(title, lang),
        "status": status,
        "detail": translate(detail, lang),
    }
    if instance is not None:
        body["instance"] = instance
    body.update({key: value for key, value in extra.items() if value is not None})
    if instance is not None:
        body = shown_problem(body, instance)
    if instance == OAUTH_ENDPOINT and (code := oauth_error(status)) is not None:
        body.update(error=code, error_description=body["detail"])  # a 413 there, as registry_problem's refusals
    return said_in(Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON), lang)


# The OAuth 2.0 token endpoint (api/routes/auth.py). Its refusals carry, besides the problem's members, RFC 6749
# §5.2's ``error`` code (what an OAuth client library reads to tell a wrong secret from a bad request) and
# ``error_description`` (the detail); a client that failed to authenticate is challenged with HTTP Basic, the scheme
# the endpoint takes (client_secret_basic), not RFC 6750's Bearer of the resource endpoints.
OAUTH_ENDPOINT = "/oauth/token"
BASIC_CHALLENGE = 'Basic realm="registry", charset="UTF-8"'
_OAUTH_ERRORS: tuple[tuple[type[RegistryError], str], ...] = (
    (InvalidClient, "invalid_client"),
    (UnsupportedGrantType, "unsupported_grant_type"),
    (InvalidScope, "invalid_scope"),
)


def oauth_error(status: int, error: RegistryError | None = None) -> str | None:
    """The RFC 6749 §5.2 ``error`` code of a refusal at the token endpoint, of ``status`` (a domain ``error``'s, or
    the API's own: a body over the size limit, 413): ``invalid_request`` for any other bad request (a missing or
    malformed field, a body that is not a form or too large); None for what is no OAuth error (429, 5xx)."""
    if status >= 429 or status < 400:
        return None
    return next((code for kind, code in _OAUTH_ERRORS if isinstance(error, kind)), "invalid_request")


def _detail(error: RegistryError) -> str:
    """The detail, and for bad input what is wrong with each field: a page has no ``errors`` member to show them."""
    if not error.errors:
        return error.detail
    return Listing([e.message for e in error.errors])


def registry_problem(error: RegistryError, *, instance: str, lang: Language) -> Response:
    """The problem+json answer for a domain error, in ``lang``: its status, its fields, the headers it calls for (or,
    on a page a browser opened, a page saying it: ``api.page_problems``)."""
    shown = page_problems.page(error.status, title=error.title, detail=_detail(error), headers=error.headers())
    if shown is not None:
        return shown
    body = shown_problem(error.problem(instance=instance, lang=lang), instance)
    headers = error.headers()
    if instance == OAUTH_ENDPOINT and (code := oauth_error(error.status, error)) is not None:
        body.update(error=code, error_description=body["detail"])
        if error.status == 401:
            headers = {**headers, "WWW-Authenticate": BASIC_CHALLENGE}
    response = Response(orjson.dumps(body), status_code=error.status, media_type=PROBLEM_JSON)
    response.headers.update(headers)
    return said_in(response, lang)


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return registry_problem(exc, instance=request.url.path, lang=language(request.scope))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    lang = language(request.scope)
    if any(error["loc"] == ("body",) and isinstance(error.get("input"), bytes) for error in exc.errors()):
        # FastAPI hands a JSON endpoint the raw bytes when the body is not declared JSON (text/plain, text/csv, no
        # Content-Type): not a body that "must be an object", but a format the endpoint does not take.
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        refused = UnsupportedMediaType(
            _("content type {media_type} is not accepted: send application/json", media_type=media_type or "none")
        )
        return registry_problem(refused, instance=request.url.path, lang=lang)
    invalid = InvalidInput.fields(field_errors(exc.errors()))
    return registry_problem(invalid, instance=request.url.path, lang=lang)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    lang = language(request.scope)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI's "error parsing the body" (a JSON body that is not UTF-8, a broken form): bad input, named.
        unreadable = InvalidInput.field(
            "body", _("cannot be read: send UTF-8 JSON (or the form the endpoint documents)")
        )
        return registry_problem(unreadable, instance=request.url.path, lang=lang)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    response = problem(
        exc.status_code,
        slug=f"http-{exc.status_code}",
        title=HTTP_TITLES.get(exc.status_code, REQUEST_FAILED),
        detail=framework_detail(detail, exc.status_code),
        instance=request.url.path,
        lang=lang,
    )
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """500. Starlette answers the ``Exception`` handler in its ServerErrorMiddleware, outside every middleware the app
    adds (``api.caching.NoStoreByDefault`` too): so the answer says itself that no cache may keep it."""
    route = getattr(request.scope.get("route"), "path", "unmatched")  # the template: a path may hold a token
    log.exception("unhandled error on %s %s", request.method, route)
    response = problem(
        500,
        slug="internal-error",
        title=HTTP_TITLES[500],
        detail=_("the request could not be completed"),
        lang=language(request.scope),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def _database_error(request: Request, exc: Exception) -> Response:
    """503 with Retry-After when the database is out of reach for a moment (registry.faults decides); else 500."""
    fault = database_fault(exc)
    if fault is None:
        return await _unexpected_error(request, exc)
    route = getattr(request.scope.get("route"), "path", "unmatched")
    log.warning("database fault (%s) on %s %s: %s", fault, request.method, route, type(exc).__name__)
    return registry_problem(unavailable(fault), instance=request.url.path, lang=language(request.scope))


# What a database fault can surface as: the driver's errors, SQLAlchemy's, and the socket's (connection refused).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.DBAPIError,
    sqlalchemy.exc.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RegistryError, _registry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error_class in DATABASE_ERRORS:  # these, not Exception: Starlette answers an Exception handler outermost
        app.add_exception_handler(error_class, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
