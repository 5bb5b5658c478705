"""Every error leaves as application/problem+json (RFC 9457) with the failing fields named."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.errors import PROBLEM_TYPE_BASE, RegistryError, field_errors

log = logging.getLogger("registry.api")
PROBLEM_JSON = "application/problem+json"


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
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, slug="internal-error", title="Internal error", detail="the request could not be completed")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RegistryError, _registry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
