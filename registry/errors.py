"""Typed domain errors, mapped once to problem+json (RFC 9457) by the API.

RegistryError
├── InvalidInput (422)           — a field is wrong; ``errors`` names each field
├── Unauthenticated (401)        — no credentials, or credentials that do not check out
├── Forbidden (403)              — authenticated, but not allowed (role, scope, filed scope)
├── NotFound (404)               — absent, or not the caller's to see (never tells which)
├── Conflict (409)               — the request clashes with current state (duplicate code, illegal transition)
└── TooManyRequests (429)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    row: int | None = None


class RegistryError(Exception):
    status: ClassVar[int] = 400
    # Most errors undo the request's writes; a few (a failed sign-in attempt) must be kept although the request fails.
    commit: ClassVar[bool] = False
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(RegistryError):
    status = 422
    slug = "validation-error"
    title = "The request is not valid"

    @classmethod
    def field(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", errors=[FieldError(field=field, message=message)])


class Unauthenticated(RegistryError):
    status = 401
    slug = "unauthenticated"
    title = "Authentication required"


class Forbidden(RegistryError):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


class OutsideFiledScope(Forbidden):
    slug = "outside-filed-scope"
    title = "Outside the evaluation body's filed scope"


class NotFound(RegistryError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(RegistryError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class IdempotencyKeyReused(InvalidInput):
    slug = "idempotency-key-reused"
    title = "Idempotency key was used with a different request"


class TooManyRequests(RegistryError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
