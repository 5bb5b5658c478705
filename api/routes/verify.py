"""Public verification: by the QR code's token, or by number and holder name."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from api.deps import FederationDep, ReaderDep, VerifierDep
from api.errors import DATABASE_UNAVAILABLE, language, registry_problem
from api.responses import not_modified
from registry.errors import NotFound
from registry.federation import forwarding
from registry.verification.reading import Reader
from registry.verification.schemas import Verification, VerifyByNumber
from registry.verification.verifier import Verifier

router = APIRouter(prefix="/v1/verify", tags=["verify"], responses=DATABASE_UNAVAILABLE)

_NO_STORE = {"Cache-Control": "no-store"}


def _json(answer: Verification) -> Response:
    # Serialised once by pydantic-core; the model is already validated, so FastAPI need not check it again.
    return Response(answer.model_dump_json(), media_type="application/json", headers=_NO_STORE)


def etag(answer: Verification) -> str:
    """The whole answer, ``checked_at`` included: a cache that revalidates an expired answer and is told 304 keeps the
    body it has, so a tag that left ``checked_at`` out would let it go on serving a ``checked_at`` of any age. A tag
    still saves a phone the body when it asks a cache again for the answer it already holds."""
    digest = hashlib.sha256(answer.model_dump_json().encode()).hexdigest()
    return f'W/"{digest[:32]}"'


def _cacheable(request: Request, answer: Verification, max_age: int) -> Response:
    """A CDN or the scanning phone may reuse the answer for ``max_age`` seconds, and no longer: no ``stale-while-
    revalidate`` or ``stale-if-error``, which nginx and CDNs honour, so a revocation reaches scanners within max-age
    even while the registry is down or hanging (deploy/README.md)."""
    if max_age == 0:
        return _json(answer)
    tag = etag(answer)
    # Shared caches (nginx, a CDN) keep time in whole seconds and may hold an answer up to a second past its
    # lifetime: s-maxage one second shorter keeps what scanners behind them see within max_age of a revocation.
    headers = {"Cache-Control": f"public, max-age={max_age}, s-maxage={max_age - 1}", "ETag": tag}
    if not_modified(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(answer.model_dump_json(), media_type="application/json", headers=headers)


class ScanRoute(APIRoute):
    """The route every QR scan takes. FastAPI's handler validates the declared parameters and solves dependencies on
    each request; this one hands the endpoint the request and the path's token as they are, and the declared
    signature still documents the route in OpenAPI. Worth it, measured twice in one session with
    ``python benchmarks/verify.py --sizes 10000``: verify/baseline 1.00 and 0.96 with it, 0.83 and 0.86 without.
    Anything every request needs (rate limits, body caps, metrics) is middleware, which this route does not skip;
    ``tests/integration/test_verify_caching.py`` checks that it answers as a plain route would."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[..., Awaitable[Response]] = self.endpoint

        async def handler(request: Request) -> Response:
            return await endpoint(token=request.path_params["token"], request=request)

        return handler


async def verify_token(token: str, request: Request) -> Response:
    state = request.app.state
    verifier: Verifier = state.verifier
    try:
        async with Reader(state.read_route) as source:
            answer = await verifier.by_token(source, token=token, channel="token")
    except NotFound as exc:
        # Never kept by any cache (deploy/nginx's comment says so): a code first scanned on a replica its certificate
        # has not reached yet must not go on answering "not found", and guessed tokens must not fill caches.
        missing = registry_problem(exc, instance=request.url.path, lang=language(request.scope))
        missing.headers.update(_NO_STORE)
        return missing
    return _cacheable(request, answer, state.context.settings.verify_max_age_seconds)


_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the answer matching If-None-Match still holds"},
    404: {},
}
router.add_api_route(
    "/{token}",
    verify_token,
    methods=["GET"],
    response_model=Verification,
    operation_id="verify-token",
    responses=_NOT_MODIFIED,
    route_class_override=ScanRoute,
)


@router.post("", response_model=Verification, operation_id="verify-number", responses={404: {}})
async def verify_number(
    body: VerifyByNumber, verifier: VerifierDep, federation: FederationDep, source: ReaderDep
) -> Response:
    # Not cacheable: the question (number and holder name) is in the body, and shared caches do not key on bodies.
    # A number of another region with a configured peer is answered by that region's node.
    return _json(
        await forwarding.verify_by_number(
            federation, verifier, source, number=body.number, holder_name=body.holder_name
        )
    )
