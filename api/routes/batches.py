"""Batch issuance: JSON or CSV, up to 10,000 rows, all or nothing, Idempotency-Key required."""

from __future__ import annotations

import codecs
import email.message
import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from api.deps import ISSUER, BearerDep, ContextDep, IssuerBeforeUpload, SessionDep, get_held_principal
from api.errors import DATABASE_UNAVAILABLE
from api.responses import outcome_response
from registry.auth.principals import Principal, require
from registry.auth.scopes import Scope
from registry.certificates import issuance, rows
from registry.errors import InvalidInput, UnsupportedMediaType
from registry.i18n import _
from registry.schemas import StrictInput

router = APIRouter(prefix="/v1/certificate-batches", tags=["certificates"])


class BatchBody(StrictInput):
    # Any item: one that is not an object is refused as its own row ("must be an object"), beside every other bad row.
    # No count limits here: an empty or oversized batch is refused by issuance.issue_batch in the same words for JSON
    # and CSV (the CSV reader stops early, at one row past the limit).
    certificates: list[Any]


_ROW_SCHEMA = {"$ref": "#/components/schemas/CertificateIssue"}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["certificates"],
                    "properties": {"certificates": {"type": "array", "maxItems": rows.MAX_ROWS, "items": _ROW_SCHEMA}},
                }
            },
            "text/csv": {
                "schema": {"type": "string"},
                "example": ",".join(rows.CSV_COLUMNS),
            },
        },
    }
}


def _parse(media_type: str, raw: bytes) -> list[rows.Row]:
    if media_type == "text/csv":
        header, records = rows.read_csv(rows.utf8_lines(raw))
        return rows.rows_from_records(header, records, max_rows=rows.MAX_ROWS)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # What a single request's parser (the standard library's) takes, a batch takes too: an escaped lone
        # surrogate, say, is then refused in its field with the same words as in a single request.
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter goes
            raise InvalidInput.field("body", _("is not valid JSON")) from None
    try:
        body = BatchBody.model_validate(document)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    return list(body.certificates)


def _check_charset(content_type: str) -> None:
    """A CSV upload is read as UTF-8: one labelled with another charset would have every cell refused as "not
    UTF-8", so it is refused whole. UTF-8 under any of its names, ASCII (a part of it) or no label pass."""
    message = email.message.Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    if not isinstance(charset, str) or not charset.strip():
        return
    try:
        name = codecs.lookup(charset.strip()).name
    except LookupError:
        name = charset
    if name not in ("utf-8", "utf-8-sig", "ascii"):
        raise UnsupportedMediaType(_("charset {charset} is not accepted: send UTF-8", charset=charset.strip()))


def _is_json(media_type: str) -> bool:
    """JSON as a single request takes it (FastAPI): application/json or application/...+json."""
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


async def read_rows(request: Request, issuer: IssuerBeforeUpload) -> list[rows.Row]:
    """The uploaded rows — read only after the caller is known to be an issuer, and before the request's transaction
    opens, so a slow upload holds no lock. Parsing runs in a worker thread: 10,000 rows must not stall the loop."""
    raw = await request.body()
    if not raw:  # nothing sent is "required", whatever the label says, as on a single request
        raise InvalidInput.field("body", _("is required"))
    sent = request.headers.get("content-type", "")
    media_type = sent.split(";")[0].strip().lower()
    if media_type != "text/csv" and not _is_json(media_type):
        sent_as = media_type or "none"
        raise UnsupportedMediaType(
            _("content type {media_type} is not accepted: send application/json or text/csv", media_type=sent_as)
        )
    if media_type == "text/csv":  # JSON is UTF-8 whatever its label (RFC 8259), as a single request reads it
        _check_charset(sent)
    return await run_in_threadpool(_parse, media_type, raw)


BatchRows = Annotated[list[rows.Row], Depends(read_rows)]


async def issuer_after_upload(
    given: BatchRows, context: ContextDep, session: SessionDep, credentials: BearerDep
) -> Principal:
    """The caller checked once more, in the transaction that issues, once the rows have arrived: the check before the
    upload (``IssuerBeforeUpload``) holds no lock, and a client disabled while its rows were on their way, or whose
    tokens a secret rotation without grace ended, must issue nothing (401), as any request of its after that does.
    The client's row stays held until the batch commits: a disable or rotation arriving after this check waits for it.
    """
    principal = await get_held_principal(context, session, credentials)
    return require(principal, scope=Scope.certificates_issue, roles=ISSUER)


IssuerAfterUpload = Annotated[Principal, Depends(issuer_after_upload)]


@router.post(
    "",
    status_code=201,
    operation_id="certificate-batches-create",
    openapi_extra=_OPENAPI,
    responses={
        200: {"description": "dry run: every row is valid"},
        422: {"description": "every bad row, with row number and field; nothing issued"},
        409: {"description": "a request with this Idempotency-Key is still being processed"},
        415: {"description": "the body is neither application/json nor text/csv"},
        **DATABASE_UNAVAILABLE,
    },
)
async def create_batch(
    given: BatchRows,
    issuer: IssuerAfterUpload,
    context: ContextDep,
    session: SessionDep,
    idempotency_key: Annotated[
        str, Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
    ],
    dry_run: Annotated[bool, Query(description="validate every row, issue nothing")] = False,
) -> Response:
    outcome = await issuance.issue_batch(
        context, session, principal=issuer, rows_given=given, idempotency_key=idempotency_key, dry_run=dry_run
    )
    return outcome_response(outcome)
