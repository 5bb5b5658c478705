"""The FastAPI application factory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.routes import (
    audit,
    auth,
    batches,
    catalogue,
    certificates,
    clients,
    federation,
    holder,
    issuers,
    ops,
    pages,
    recognition,
    status_lists,
    verify,
)
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import create_engine, is_sqlite, session_factory
from registry.federation.peers import Federation
from registry.gc_tuning import settle_garbage_collector
from registry.holder_access.identity_provider import IdentityProvider
from registry.metrics import REQUEST_SECONDS, REQUESTS
from registry.verification.readpool import ReadPool
from registry.verification.verifier import Verifier

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_BODY_BYTES = 1 << 20  # single requests
LARGE_BODY_PATHS = {"/v1/certificate-batches": 32 << 20}  # 10,000 rows of JSON fit well inside 32 MiB


class MetricsMiddleware:
    """Counts and times requests by route template (not raw path), so tokens and numbers never become labels."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = route.path if isinstance(route, APIRoute) else "unmatched"
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"  # label values stay bounded
            REQUESTS.labels(method=method, route=template, status=str(status)).inc()
            REQUEST_SECONDS.labels(method=method, route=template).observe(time.perf_counter() - started)


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
    engine = create_engine(settings.database_url)
    read_url = settings.database_read_url or settings.database_url
    read_engine = create_engine(read_url, read_only=True) if settings.database_read_url else engine
    size = settings.database_read_pool_size
    read_pool = None if is_sqlite(read_url) else ReadPool(read_url, min_size=min(4, size), max_size=size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settle_garbage_collector()
        yield
        await dispose(app)

    app = FastAPI(
        title="Talent Registry",
        version="0.1.0",
        summary="Issues and verifies electronic professional-title (职称) and skill-level (职业技能等级) certificates.",
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.operation_id or route.name,
    )
    app.state.context = context
    app.state.verifier = Verifier(box=context.box, keyring=context.keyring, region=settings.region.value)
    app.state.identity_provider = IdentityProvider.configured(settings)
    app.state.federation = Federation(context, session_factory(engine))
    app.state.engine = engine
    app.state.read_engine = read_engine
    app.state.read_pool = read_pool
    app.state.sessions = session_factory(engine)
    app.state.unlocked_sessions = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
    app.state.read_sessions = session_factory(read_engine)
    errors.install(app)
    # Public verification first: each request walks the included routers in order until one matches.
    routers = (
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
        status_lists,
        audit,
        federation,
    )
    for module in routers:
        app.include_router(module.router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES, overrides=LARGE_BODY_PATHS)
    app.add_middleware(MetricsMiddleware)
    return app


async def dispose(app: FastAPI) -> None:
    """Close what ``create_app`` opened: the identity provider's client, the driver pool and the engines."""
    provider: IdentityProvider | None = app.state.identity_provider
    if provider is not None:
        await provider.close()
    await app.state.federation.close()
    if app.state.read_pool is not None:
        await app.state.read_pool.close()
    await app.state.engine.dispose()
    if app.state.read_engine is not app.state.engine:
        await app.state.read_engine.dispose()
