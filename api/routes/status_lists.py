"""Public W3C Bitstring Status Lists, signed by the evaluation body, cacheable for a minute."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import ContextDep, ReadsDep
from api.errors import DATABASE_UNAVAILABLE
from registry.credentials import service as credentials

router = APIRouter(prefix="/v1/status-lists", tags=["status-lists"], responses=DATABASE_UNAVAILABLE)
# Short enough that a revocation reaches verifiers within a minute; long enough for a CDN to absorb scan storms.
MAX_AGE_SECONDS = 60


@router.get(
    "/{issuer_code}/{list_name}",
    operation_id="status-lists-get",
    response_class=Response,
    responses={200: {"content": {"application/vc+jwt": {}}}, 304: {}, 404: {}},
)
async def status_list(
    issuer_code: str, list_name: str, request: Request, context: ContextDep, reads: ReadsDep
) -> Response:
    """`list_name` is `{list_id}-revocation` or `{list_id}-suspension`, as named in a credential's status entry."""
    token = await reads(
        lambda session: credentials.status_list_credential(context, session, issuer_code=issuer_code, name=list_name)
    )
    etag = '"' + hashlib.sha256(token.encode()).hexdigest()[:32] + '"'
    headers = {"Cache-Control": f"public, max-age={MAX_AGE_SECONDS}", "ETag": etag}
    wanted = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in wanted or "*" in wanted:
        return Response(status_code=304, headers=headers)
    return Response(token, media_type="application/vc+jwt", headers=headers)
