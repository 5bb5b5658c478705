"""The OpenAPI document as the service really answers: every status an operation can give, every error as
``application/problem+json`` (RFC 9457) with one shared ``Problem`` schema.

FastAPI documents what a route declares; the statuses that middleware and shared dependencies add (413 from the body
cap, 429 from the rate limits, 401/403 from authentication, 404 for a path naming something, 422 for a query parameter
holding a control character, 415 for a JSON body sent as another format, 503 when the database is unreachable) are
added here, in one place, from what each operation is: so the document cannot drift from the code a route at a time.
``tests/integration/test_contract.py`` holds the service to it with schemathesis.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api.limits import LIMITED_ROUTES

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; validation errors name each field in `errors`. `title`, `detail` and "
    "each `errors[].message` are in Chinese for `Accept-Language: zh` (zh-CN, zh-Hans…) or `?lang=zh`, else in "
    "English (`Content-Language` says which); `type`, `status` and the `field` paths never change with the language.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "row": {"type": "integer", "description": "batch row (1-based), for batch errors"},
                },
            },
        },
    },
}
DESCRIPTIONS = {
    400: "The request cannot be understood as asked",
    401: "No valid credentials",
    403: "Authenticated, but not allowed",
    404: "Not found, or not the caller's to see",
    409: "Conflicts with the current state",
    413: "The body is too large",
    415: "Unsupported media type",
    422: "Invalid input: `errors` names each field",
    429: "Too many requests: `Retry-After` says when to try again",
    503: "The database is unavailable for a moment: `Retry-After` says when to try again",
}
# Answered without the database.
NO_DATABASE = frozenset({("get", "/healthz"), ("get", "/v")})


def statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """What an operation can answer besides what its route declares."""
    found: set[int] = {422}  # every operation: any query parameter holding a control character (api.guards)
    content = operation.get("requestBody", {}).get("content", {})
    if content:
        found.add(413)
    if "application/json" in content:  # a body in another format (api.errors: raw bytes where JSON was expected)
        found.add(415)
    if operation.get("security"):
        found |= {401, 403}
    if "{" in path:
        found.add(404)
    if (method, path) not in NO_DATABASE:
        found.add(503)
    if (method, path) in LIMITED_ROUTES:
        found.add(429)
    return found


def _honest(document: dict[str, Any]) -> dict[str, Any]:
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            # Pages answer their own errors (not found, a mistyped number) as pages; the rest as problems.
            page = any("text/html" in (r.get("content") or {}) for r in responses.values())
            for status in statuses(method, path, operation):
                responses.setdefault(str(status), {})
            for code, response in responses.items():
                if code.isdigit() and int(code) >= 400:
                    response["description"] = response.get("description") or DESCRIPTIONS.get(int(code), "Error")
                    if response["description"] in ("Validation Error", "Successful Response"):
                        response["description"] = DESCRIPTIONS.get(int(code), "Error")
                    response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
                    if page:
                        response["content"]["text/html"] = {"schema": {"type": "string"}}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    return document


def install(app: FastAPI) -> None:
    """``app.openapi()`` answers the honest document (built once and kept, as FastAPI's own is)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _honest(build())
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 — FastAPI's documented way to replace the document builder
