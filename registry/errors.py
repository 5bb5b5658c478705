"""Every error the registry raises, in one place; the API maps each RegistryError once to problem+json (RFC 9457).
Each line: the class, the HTTP status it is answered with, and when it is raised. Titles, details and field messages
are registry.i18n Messages: English here, said in the reader's language by ``problem(lang=...)``.

RegistryError                        400   the base: a request the registry refuses
├── BadRequest                       400   the request cannot be understood as asked
│   ├── InvalidScope                 400     a token request asks for scopes its client does not hold
│   └── UnsupportedGrantType         400     POST /oauth/token with a grant other than client_credentials
├── Unauthenticated                  401   no credentials, or credentials that do not check out
│   ├── InvalidClient                401     wrong client id or secret (POST /oauth/token)
│   └── WrongClaimCode               401     identity document and claim code do not match (holder sign-in)
├── Forbidden                        403   authenticated, but not allowed (role, scope, suspended body)
│   └── OutsideFiledScope            403     the award is outside the body's filed scope (备案范围)
├── NotFound                         404   absent, or not the caller's to see (never tells which)
├── Conflict                         409   the request clashes with the current state
│   ├── IllegalTransition            409     a status change the rules do not allow (certificate or body)
│   ├── DuplicateCertificate         409     the holder already has a live certificate for the entry and level
│   ├── IdempotencyKeyInFlight       409     the same Idempotency-Key is still being processed
│   ├── NotVouchedFor                409     a stored certificate no longer checks out; nothing is re-signed
│   ├── OverlappingRule              409     a recognition rule as specific as one in force for the same cases
│   ├── LastAdminClient              409     over the API, disabling the last enabled admin client
│   └── RecordingConflict            409     a unique value clashed while recording; retrying is safe
├── Gone                             410   a holder's share link that expired or was withdrawn (never the certificate)
├── UnsupportedMediaType             415   a body in a format the endpoint does not take
├── InvalidInput                     422   fields are wrong; ``errors`` names each ({field, message}, with row)
│   ├── BatchRejected                422     a batch with bad rows: every bad row listed, nothing issued
│   └── IdempotencyKeyReused         422     an Idempotency-Key reused with a different request
├── TooManyRequests                  429   over a rate limit or locked out; ``Retry-After`` says for how long
└── ServiceUnavailable               503   database unreachable or busy (registry.faults); ``Retry-After`` says when
    └── MigrationLockWait            503     a migration gave up waiting for another session's lock (the CLI: exit 4)

ValueError subclasses, raised by pure parsers and turned into InvalidInput (422) naming the field by the schemas:
FieldValueError (a model validator blaming one field), InvalidCertificateNumber, InvalidIdentityNumber,
InvalidCreditCode.

Never answered as such: ConfigurationError (the process refuses to start), DecryptionError (a stored secret does not
open under the master key: a 500, and an operator's problem), KeySetUnavailable (another party's published keys
cannot be fetched; each caller says what that means for its answer), JWSRefused (a compact JWS registry.keys.jws
cannot read or verify: a ValueError whose ``reason`` is a message), IllegalHistory (a certificate's status
history the lifecycle cannot have written: `registry audit verify` names it), OutputsNotWritten (`registry import`
could not write its output files midway, e.g. a full disk: its ``detail`` says what was committed) and InputNotRead
(`registry import` could not read its file to the end: an I/O error, a file changed while read). Federation's own,
turned into ``result: "unknown"`` with a reason (or 401 for a peer's token) by registry.federation: PeerFailure (no
usable answer from a peer node), CircuitOpen (the peer failed repeatedly a moment ago and is not being asked),
PeerOverloaded (a 502/503/504 worth one more try) and ProtocolError (a peer's token or statement that does not
check out).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote

from registry.i18n import Listing, _, translate, validation_message
from registry.numerals import DIGIT_OF


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    row: int | None = None


PROBLEM_TYPE_BASE = "https://talent-registry.example/problems/"


class RegistryError(Exception):
    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = _("Bad request")

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer must carry (authentication challenge, retry delay)."""
        return {}

    def problem(self, *, instance: str | None = None, lang: str | None = "en") -> dict[str, Any]:
        """The RFC 9457 problem document, said in ``lang``: for a response, or for one item of a bulk answer (no
        ``lang``: its texts left as registry.i18n Messages, to be said once the reader is known)."""
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": translate(self.title, lang),
            "status": self.status,
            "detail": translate(self.detail, lang),
        }
        if instance is not None:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [
                {
                    key: value
                    for key, value in (("row", e.row), ("field", e.field), ("message", translate(e.message, lang)))
                    if value is not None
                }
                for e in self.errors
            ]
        return body


class BadRequest(RegistryError):
    pass


class InvalidScope(BadRequest):
    slug = "invalid-scope"
    title = _("Requested scope is not allowed")


class UnsupportedGrantType(BadRequest):
    slug = "unsupported-grant-type"
    title = _("Only the client_credentials grant is supported")


class Unauthenticated(RegistryError):
    status = 401
    slug = "unauthenticated"
    title = _("Authentication required")

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class InvalidClient(Unauthenticated):
    slug = "invalid-client"
    title = _("Client authentication failed")


class WrongClaimCode(Unauthenticated):
    slug = "wrong-claim-code"
    title = _("Identity document and claim code do not match")


class Forbidden(RegistryError):
    status = 403
    slug = "forbidden"
    title = _("Not allowed")


class OutsideFiledScope(Forbidden):
    slug = "outside-filed-scope"
    title = _("Outside the evaluation body's filed scope")


class NotFound(RegistryError):
    status = 404
    slug = "not-found"
    title = _("Not found")


class Conflict(RegistryError):
    status = 409
    slug = "conflict"
    title = _("Conflict")


class IllegalTransition(Conflict):
    slug = "illegal-transition"
    title = _("This status change is not allowed")


class DuplicateCertificate(Conflict):
    slug = "duplicate-certificate"
    title = _("The holder already has a live certificate for this entry and level")


class IdempotencyKeyInFlight(Conflict):
    slug = "idempotency-key-in-flight"
    title = _("A request with this Idempotency-Key is still being processed")


class NotVouchedFor(Conflict):
    slug = "cannot-confirm"
    title = _("The registry cannot confirm this certificate")


class OverlappingRule(Conflict):
    slug = "overlapping-rule"
    title = _("A rule in force already decides these cases with the same precedence")


class LastAdminClient(Conflict):
    slug = "last-admin-client"
    title = _("The last enabled admin client cannot be disabled through the API")


class RecordingConflict(Conflict):
    slug = "recording-conflict"
    title = _("The change could not be recorded; retrying is safe")


class Gone(RegistryError):
    status = 410
    slug = "gone"
    title = _("Gone")


class UnsupportedMediaType(RegistryError):
    status = 415
    slug = "unsupported-media-type"
    title = _("This body format is not accepted")


class InvalidInput(RegistryError):
    status = 422
    slug = "validation-error"
    title = _("The request is not valid")

    @classmethod
    def field(cls, field: str, message: str) -> InvalidInput:
        return cls(
            _("{field}: {message}", field=field, message=message), errors=[FieldError(field=field, message=message)]
        )

    @classmethod
    def fields(cls, errors: list[FieldError]) -> InvalidInput:
        """Several bad fields: the detail names the first five, ``errors`` lists them all."""
        return cls(field_detail(errors), errors=errors)


class BatchRejected(InvalidInput):
    slug = "batch-rejected"
    title = _("The batch has invalid rows; nothing was issued")


class IdempotencyKeyReused(InvalidInput):
    slug = "idempotency-key-reused"
    title = _("Idempotency key was used with a different request")


class TooManyRequests(RegistryError):
    status = 429
    slug = "too-many-requests"
    title = _("Too many requests")

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServiceUnavailable(RegistryError):
    status = 503
    slug = "service-unavailable"
    title = _("Temporarily unavailable")

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class MigrationLockWait(ServiceUnavailable):
    """A migration gave up waiting for a lock another session holds and was rolled back whole
    (``registry.migrate.upgrade``): its detail names the migration and the session holding the lock. The commands say
    it as it is and exit 4 (``cli.database.with_database``)."""


# --- parse errors of pure functions --------------------------------------------------------------------------------


class FieldValueError(ValueError):
    """Raised by a model-level validator to blame one field (a plain ValueError there would name the whole body)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidCertificateNumber(ValueError):
    """A string that is not a well-formed certificate number; the message (a registry.i18n Message) says why."""


class InvalidIdentityNumber(ValueError):
    """An identity number that cannot belong to any document of its type; the message (a Message) says why."""


class InvalidCreditCode(ValueError):
    """A string that is not a well-formed unified social credit code; the message (a Message) says why."""


# --- never answered as such ----------------------------------------------------------------------------------------


class ConfigurationError(RuntimeError):
    """The settings cannot be used in the environment they were given for."""


class IllegalHistory(ValueError):
    """A status history the lifecycle cannot have written (registry.certificates.histories); the message says why, in
    words naming no one."""


class OutputsNotWritten(Exception):
    """``registry import`` stopped because its output files could not take a committed chunk's lines (a full disk, a
    quota, a drive gone); ``detail`` says which rows were committed and that a re-run writes their claim codes."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InputNotRead(Exception):
    """``registry import`` stopped because the file it imports could not be read to its end once chunks were committed
    (an I/O error, a file system gone, the file cut short, written to or replaced while being read); ``detail`` says
    which rows were committed and that a re-run carries on."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class DecryptionError(Exception):
    """Ciphertext that does not open under this master key and context (tampered, or another key)."""


class KeySetUnavailable(Exception):
    """A JWKS could not be fetched or read (network down, an error status, not a key set)."""


# --- pydantic's validation errors, named the registry's way --------------------------------------------------------

_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie", "form"})
# Eight digits, maybe in groups ("1101-0519-4912-3100-2X" passes a catalogue code's shape, "1101_0519_…" a level's).
_EIGHT_DIGITS = re.compile(r"\d(?:[\s_./-]?\d){7}")
_NUMERALS = str.maketrans(DIGIT_OF)  # "一一〇…", "壹壹零…": read as their digits, as purposes are
# A passport's or a Hong Kong, Macau ID's number on its own: one or two letters, six or seven digits ungrouped, maybe a
# check character in brackets ("EA1234567", "e_1234567", "A123456(7)"). No code the registry names has that shape: a
# skill code's digits come in groups ("SK-6-31-01-03"), a client id's letters run on ("trc_…").
_LETTERED = re.compile(r"(?<![0-9A-Za-z])[A-Za-z]{1,2}[ ._-]?\d{6,7}(?:\([0-9A-Za-z]\))?(?![0-9A-Za-z])")


def field_detail(errors: Sequence[FieldError], *, most: int = 5) -> Listing:
    """A problem's detail naming the first few bad fields (``field: message; …``), said in the reader's language."""
    return Listing(_("{field}: {message}", field=e.field, message=e.message) for e in errors[:most])


def said_masked(part: Any) -> str:
    """A part of a field's path, or a refused value, as an error names it: masked when it holds eight digits or more
    (an identity number sent as a key, or in the level or catalogue column of a shifted CSV row), or a passport's or
    Hong Kong ID's number ("EA1234567", "A123456(7)")."""
    text = str(part)
    read = unicodedata.normalize("NFKC", unquote(unquote(text))).translate(_NUMERALS)  # "%31%31%30…", "一一〇…" too
    if _EIGHT_DIGITS.search(read) is None and _LETTERED.search(read) is None:
        return text
    return text[:2] + "*" * (len(text) - 4) + text[-2:] if len(text) > 8 else "*" * len(text)


def field_errors(
    errors: Iterable[Mapping[str, Any]], *, row: int | None = None, whole: str = "body"
) -> list[FieldError]:
    """pydantic's error list as FieldErrors: the field as a dotted path without the request location, the message
    said for people (``registry.i18n.validation_message``: what is expected, never a pattern). Single requests (the
    API) and batch rows (JSON, CSV, ``registry import``) both go through here, so the same bad value is named alike
    everywhere. The rejected value is never echoed: it may be an identity number. Nor is an unknown key that holds a
    run of eight digits or more (of any width: ``１１０１…`` too), as ``{"holder": {"11010519491231002X": …}}`` would:
    it is named by its first two and last two characters (``11**************2X``), as a masked number is shown.
    ``whole`` names an error about the value as a whole (a request body, a batch row)."""
    named: list[FieldError] = []
    for error in errors:
        parts: Sequence[Any] = tuple(error.get("loc", ()))
        if parts and parts[0] in _LOCATIONS:
            parts = parts[1:]
        field = ".".join(said_masked(part) for part in parts) or whole
        if error.get("type") == "json_invalid":
            field = whole  # the loc holds a character offset, not a field
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldValueError):
            field = cause.field if field == whole else f"{field}.{cause.field}"
        named.append(FieldError(field=field, message=validation_message(error), row=row))
    return named


class PeerFailure(Exception):
    """No usable answer from the peer; ``reason`` is what the public answer says (``result: unknown``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CircuitOpen(Exception):
    """The peer failed repeatedly a moment ago; it is not being asked now (registry.breaker; the read replica's breaker
    raises it too, and its route sends reads to the primary instead)."""


class PeerOverloaded(Exception):
    """A peer answer worth one more try (the peer is overloaded or restarting)."""


class ProtocolError(Exception):
    """A peer's token or statement that does not check out; the message says what."""


class JWSRefused(ValueError):
    """A compact JWS that registry.keys.jws cannot read or verify; ``reason`` says why, as a message to put after "not
    a compact JWS:" or "signature does not verify:". A ValueError, as the callers that read leniently catch."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
