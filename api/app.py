"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import contract, errors
from api.caching import NoStoreByDefault
from api.guards import ControlCharacterMiddleware, slash_redirects
from api.head import HeadMiddleware
from api.limits import RateLimitMiddleware, RateLimits
from api.logs import RequestLogMiddleware, guard_server_logs
from api.page_problems import PagePaths
from api.routes import (
    audit,
    auth,
    batches,
    catalogue,
    certificates,
    clients,
    contexts,
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
from registry import i18n, workers
from registry.config import Settings
from registry.context import RegistryContext
from registry.db import create_engine, is_sqlite, session_factory
from registry.faults import database_fault
from registry.federation.peers import Federation
from registry.gc_tuning import settle_garbage_collector
from registry.holder_access.identity_provider import IdentityProvider
from registry.i18n import _
from registry.keys import key_check
from registry.verification.readpool import ReadPool
from registry.verification.replica import ReadRoute, ReadTarget
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
    contexts,
    audit,
    transparency,
    federation,
)
MAX_BODY_BYTES = 1 << 20  # single requests
LARGE_BODY_PATHS = {"/v1/certificate-batches": 32 << 20}  # 10,000 rows of JSON fit well inside 32 MiB


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _("the body exceeds {max_bytes} bytes", max_bytes=max_bytes))


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
                detail = _("the body exceeds {max_bytes} bytes", max_bytes=max_bytes)
                title, lang, path = errors.HTTP_TITLES[413], errors.language(scope), scope["path"]
                # As the streamed body's 413 (errors._http_error): with its instance, and at the token endpoint
                # RFC 6749's error members.
                refusal = errors.problem(413, slug="http-413", title=title, detail=detail, lang=lang, instance=path)
                await refusal(scope, receive, send)
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
    i18n.catalogue("zh")  # read at start: a broken catalogue stops the process, not a Chinese reader's request
    context = RegistryContext.from_settings(settings)
    engine = create_engine(
        settings.database_url,
        pool_timeout=settings.database_pool_timeout_seconds,
        command_timeout=settings.database_command_timeout_seconds,  # a hung primary: 503, not a request held
    )
    read_route = _read_route(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.master_key_checked = await _check_master_key(engine, context)  # False: out of reach, not checked
        settle_garbage_collector()
        # Started before the first request, not by the first large batch, which would wait for them (2.4 s here).
        await asyncio.to_thread(workers.start, settings.batch_worker_count)
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
    # Verification reads: on the replica while it serves, else on the primary (registry.verification.replica).
    app.state.read_route = read_route
    read = read_route.replica or read_route.primary
    app.state.read_engine = read.engine
    app.state.read_pool = read.pool
    app.state.sessions = session_factory(engine)
    app.state.unlocked_sessions = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
    errors.install(app)
    contract.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    slash_redirects(app.router)  # relative: never to the host a request's Host header names
    app.state.rate_limits = RateLimits(settings, box=context.box) if settings.rate_limits_enabled else None
    _wrap(app)
    return app


async def _check_master_key(engine: AsyncEngine, context: RegistryContext) -> bool:
    """Refuse to start (ConfigurationError) under a master key that does not open what the database holds. A database
    out of reach is no refusal: the process starts unready, as it would have, and says the key was not checked."""
    try:
        await key_check.check_master_key_on(engine, context.box)
    except Exception as error:
        if database_fault(error) is None:
            raise
        logging.getLogger("registry.serve").warning("the master key was not checked: the database cannot be reached")
        return False
    return True


def _wrap(app: FastAPI) -> None:
    """The middleware, innermost first."""
    app.add_middleware(ControlCharacterMiddleware)  # no NUL (or other control) in a path or query parameter
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES, overrides=LARGE_BODY_PATHS)
    # Outside the body cap: a request over its limit is refused before anything reads its body.
    if app.state.rate_limits is not None:
        app.add_middleware(RateLimitMiddleware, limits=app.state.rate_limits)
    app.add_middleware(HeadMiddleware)  # outside the rate limits: a HEAD counts as the GET it costs
    app.add_middleware(PagePaths)  # outside all that may refuse a request: a page's refusal is a page
    app.add_middleware(NoStoreByDefault)  # outside all that answers: a refusal without Cache-Control is no-store too
    # Outermost: every other line of a request carries its request id, and metrics count what the client got.
    app.add_middleware(RequestLogMiddleware)
    guard_server_logs()  # served by plain uvicorn, its access log is on: no token or identity number in that either


def _read_route(settings: Settings, engine: AsyncEngine) -> ReadRoute:
    """The primary's read side (its driver pool opens only when first used) and, when configured, the replica's: its
    connections open and its reads answer within ``REGISTRY_READ_REPLICA_TIMEOUT_SECONDS``, or reads go elsewhere.
    The primary's driver pool within ``REGISTRY_DATABASE_COMMAND_TIMEOUT_SECONDS``, as its engine (``create_app``), or
    the request is answered 503: a primary that hangs must not hold every request as long as it hangs."""
    wait = settings.database_pool_timeout_seconds
    size = settings.database_read_pool_size
    bounded = settings.database_command_timeout_seconds

    def driver_pool(url: str, limit: float) -> ReadPool | None:
        if is_sqlite(url):
            return None
        return ReadPool(
            url,
            min_size=min(4, size),
            max_size=size,
            acquire_timeout=wait,
            connect_timeout=limit,
            command_timeout=limit,
        )

    primary = ReadTarget("primary", engine, driver_pool(settings.database_url, bounded), session_factory(engine))
    url = settings.database_read_url
    if not url:
        return ReadRoute(primary)
    limit = settings.read_replica_timeout_seconds
    replica_engine = create_engine(url, read_only=True, pool_timeout=wait, command_timeout=limit)
    replica = ReadTarget("replica", replica_engine, driver_pool(url, limit), session_factory(replica_engine))
    return ReadRoute(
        primary,
        replica,
        max_lag=settings.read_max_lag_seconds,
        check_every=settings.read_lag_check_seconds,
        reset_after=settings.read_replica_reset_seconds,
        timeout=limit,
    )


async def dispose(app: FastAPI) -> None:
    """Close what ``create_app`` opened: the identity provider's client, the driver pool, the engines and the batch
    workers."""
    provider: IdentityProvider | None = app.state.identity_provider
    if provider is not None:
        await provider.close()
    await app.state.federation.close()
    if app.state.rate_limits is not None:
        await app.state.rate_limits.close()
    await app.state.read_route.close()  # the read pools, and the replica's engine
    if app.state.visits is not None:
        await app.state.visits.close()
    await app.state.engine.dispose()
    await asyncio.to_thread(workers.shutdown)  # the batch signing workers, if a large batch started them
