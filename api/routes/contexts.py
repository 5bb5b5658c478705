"""The registry's JSON-LD context, at the stable URL its credentials name: public, cacheable for a long time."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from registry.credentials.credential import REGISTRY_CONTEXT_PATH
from registry.credentials.jsonld import MEDIA_TYPE, registry_context, registry_context_etag

router = APIRouter(tags=["contexts"])
# A versioned context only ever gains a fix, never a changed meaning (that would be v2): caches may keep it a month.
MAX_AGE_SECONDS = 30 * 86_400


@router.get(
    REGISTRY_CONTEXT_PATH,
    operation_id="contexts-talent-registry-v1",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}, 304: {}},
)
async def talent_registry_v1(request: Request) -> Response:
    """The JSON-LD context defining the registry's own credential terms (`certificateNumber`, `level`, …)."""
    etag = registry_context_etag()
    headers = {"Cache-Control": f"public, max-age={MAX_AGE_SECONDS}", "ETag": etag}
    wanted = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in wanted or "*" in wanted:
        return Response(status_code=304, headers=headers)
    return Response(registry_context(), media_type=MEDIA_TYPE, headers=headers)
