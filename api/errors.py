"""Every error leaves as application/problem+json (RFC 9457) with the failing fields named."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.errors import PROBLEM_TYPE_BASE, RegistryError, field_errors
from registry.faults import database_fault, unavailable

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


def problem(status: int, *, slug: str, title: str, detail: str, instance: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    body.update({key: value for key, value in extra.items() if value is not None})
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON)


def registry_problem(error: RegistryError, *, instance: str) -> Response:
    """The problem+json answer for a domain error: its status, its fields, the headers it calls for."""
    response = Response(
        orjson.dumps(error.problem(instance=instance)), status_code=error.status, media_type=PROBLEM_JSON
    )
    response.headers.update(error.headers())
    return response


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return registry_problem(exc, instance=request.url.path)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": e.field, "message": e.message} for e in field_errors(exc.errors())]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem(
        422,
        slug="validation-error",
        title="The request is not valid",
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI's "error parsing the body" (a JSON body that is not UTF-8, a broken form): bad input, named.
        message = "cannot be read: send UTF-8 JSON (or the form the endpoint documents)"
        return problem(
            422,
            slug="validation-error",
            title="The request is not valid",
            detail=f"body: {message}",
            instance=request.url.path,
            errors=[{"field": "body", "message": message}],
        )
    titles = {404: "Not found", 405: "Method not allowed", 413: "Request too large", 415: "Unsupported media type"}
    response = problem(
        exc.status_code,
        slug=f"http-{exc.status_code}",
        title=titles.get(exc.status_code, "Request failed"),
        detail=str(exc.detail),
        instance=request.url.path,
    )
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    route = getattr(request.scope.get("route"), "path", "unmatched")  # the template: a path may hold a token
    log.exception("unhandled error on %s %s", request.method, route)
    return problem(500, slug="internal-error", title="Internal error", detail="the request could not be completed")


async def _database_error(request: Request, exc: Exception) -> Response:
    """503 with Retry-After when the database is out of reach for a moment (registry.faults decides); else 500."""
    fault = database_fault(exc)
    if fault is None:
        return await _unexpected_error(request, exc)
    route = getattr(request.scope.get("route"), "path", "unmatched")
    log.warning("database fault (%s) on %s %s: %s", fault, request.method, route, type(exc).__name__)
    return registry_problem(unavailable(fault), instance=request.url.path)


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
