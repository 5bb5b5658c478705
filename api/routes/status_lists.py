"""Public W3C Bitstring Status Lists, signed by the evaluation body, cacheable for a minute (their ``ttl``)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import ContextDep, ReadsDep
from api.errors import DATABASE_UNAVAILABLE
from api.responses import not_modified
from registry.credentials import service as credentials
from registry.credentials.status_list import cache_seconds

router = APIRouter(prefix="/v1/status-lists", tags=["status-lists"], responses=DATABASE_UNAVAILABLE)


@router.get(
    "/{issuer_code}/{list_name}",
    operation_id="status-lists-get",
    response_class=Response,
    responses={200: {"content": {"application/vc+jwt": {}}}, 304: {}, 404: {}},
)
async def status_list(
    issuer_code: str, list_name: str, request: Request, context: ContextDep, reads: ReadsDep
) -> Response:
    """`list_name` is `{list_id}-message` (the two-bit list a credential's status entry names: 0 valid, 1 suspended,
    2 or 3 revoked), or `{list_id}-revocation` / `{list_id}-suspension`, named by credentials signed before it."""
    token = await reads(
        lambda session: credentials.status_list_credential(context, session, issuer_code=issuer_code, name=list_name)
    )
    etag = '"' + hashlib.sha256(token.encode()).hexdigest()[:32] + '"'
    # The same as the list's ttl, and never longer than the list stays valid.
    max_age = cache_seconds(timedelta(seconds=context.settings.status_list_validity_seconds))
    headers = {"Cache-Control": f"public, max-age={max_age}", "ETag": etag}
    if not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(token, media_type="application/vc+jwt", headers=headers)
