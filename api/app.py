"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import contract, errors
from api.limits import RateLimitMiddleware, RateLimits
from api.logs import RequestLogMiddleware
from api.routes import (
    audit,
    auth,
    batches,
    catalogue,
    certificates,
    clients,
    federation,
    holder,
    holder_pages,
    issuers,
    ops,
    pages,
    recognition,
    status_lists,
    transparency,
    verify,
)
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import create_engine, is_sqlite, session_factory
from registry.federation.peers import Federation
from registry.gc_tuning import settle_garbage_collector
from registry.holder_access.identity_provider import IdentityProvider
from registry.verification.readpool import ReadPool
from registry.verification.verifier import Verifier
from registry.verification.visits import VisitLog

# Public verification first: each request walks the included routers in order until one matches.
ROUTERS = (
    verify,
    ops,
    pages,
    recognition,
    auth,
    catalogue,
    issuers,
    clients,
    certificates,
    batches,
    holder,
    holder_pages,
    status_lists,
    audit,
    transparency,
    federation,
)
MAX_BODY_BYTES = 1 << 20  # single requests
LARGE_BODY_PATHS = {"/v1/certificate-batches": 32 << 20}  # 10,000 rows of JSON fit well inside 32 MiB


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the body exceeds {max_bytes} bytes")


class BodySizeLimitMiddleware:
    """Refuses oversized bodies: at once when Content-Length says so, else as soon as the streamed body passes the
    limit (a chunked upload has no Content-Length to check)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, overrides: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.overrides = overrides or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.overrides.get(scope["path"], self.default_max_bytes)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                detail = f"the body exceeds {max_bytes} bytes"
                await errors.problem(413, slug="http-413", title="Request too large", detail=detail)(
                    scope, receive, send
                )
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # An HTTPException, so FastAPI's body parsing passes it on to the problem+json handler.
                    raise BodyTooLarge(max_bytes)
            return message

        await self.app(scope, limited_receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check_production()
    context = RegistryContext.from_settings(settings)
    wait = settings.database_pool_timeout_seconds
    engine = create_engine(settings.database_url, pool_timeout=wait)
    read_url = settings.database_read_url or settings.database_url
    read_engine = create_engine(read_url, read_only=True, pool_timeout=wait) if settings.database_read_url else engine
    size = settings.database_read_pool_size
    read_pool = None
    if not is_sqlite(read_url):
        read_pool = ReadPool(read_url, min_size=min(4, size), max_size=size, acquire_timeout=wait)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settle_garbage_collector()
        yield
        await dispose(app)

    options: dict[str, Any] = {
        "title": "Talent Registry",
        "version": "0.1.0",
        "summary": "Issues and verifies electronic professional-title (职称) and skill-level (职业技能等级) "
        "certificates.",
        "lifespan": lifespan,
        "generate_unique_id_function": lambda route: route.operation_id or route.name,
    }
    # /docs and /redoc serve Swagger UI and ReDoc from the installed package (fastapi-offline), never a CDN: they work
    # on a closed network. Off in production unless REGISTRY_DOCS says otherwise (``registry openapi`` still prints
    # the document).
    if settings.docs_enabled:
        app = FastAPIOffline(**options, static_url="/docs-assets")
    else:
        app = FastAPI(**options, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = context
    # Who looked: written in batches, off the verification path.
    app.state.visits = VisitLog(engine) if settings.record_visits else None
    app.state.verifier = Verifier(
        box=context.box, keyring=context.keyring, region=settings.region.value, visits=app.state.visits
    )
    app.state.identity_provider = IdentityProvider.configured(settings)
    app.state.federation = Federation(context, session_factory(engine))
    app.state.engine = engine
    app.state.read_engine = read_engine
    app.state.read_pool = read_pool
    app.state.sessions = session_factory(engine)
    app.state.unlocked_sessions = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
    app.state.read_sessions = session_factory(read_engine)
    errors.install(app)
    contract.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES, overrides=LARGE_BODY_PATHS)
    # Outside the body cap: a request over its limit is refused before anything reads its body.
    app.state.rate_limits = RateLimits(settings, box=context.box) if settings.rate_limits_enabled else None
    if app.state.rate_limits is not None:
        app.add_middleware(RateLimitMiddleware, limits=app.state.rate_limits)
    # Outermost: every other line of a request carries its request id, and metrics count what the client got.
    app.add_middleware(RequestLogMiddleware)
    return app


async def dispose(app: FastAPI) -> None:
    """Close what ``create_app`` opened: the identity provider's client, the driver pool and the engines."""
    provider: IdentityProvider | None = app.state.identity_provider
    if provider is not None:
        await provider.close()
    await app.state.federation.close()
    if app.state.rate_limits is not None:
        await app.state.rate_limits.close()
    if app.state.read_pool is not None:
        await app.state.read_pool.close()
    if app.state.visits is not None:
        await app.state.visits.close()
    await app.state.engine.dispose()
    if app.state.read_engine is not app.state.engine:
        await app.state.read_engine.dispose()
