"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import UnlockedReadsDep
from api.errors import DATABASE_UNAVAILABLE, HTTP_DETAILS, HTTP_TITLES, language, problem, registry_problem
from registry.config import Settings
from registry.errors import ConfigurationError, Unauthenticated
from registry.faults import Fault, database_fault, unavailable
from registry.i18n import _, translate
from registry.keys import key_check
from registry.keys import service as keys
from registry.verification.replica import ReadRoute

router = APIRouter(tags=["operations"])
# /readyz answers within this, whatever the database does: a probe that waited as long as a hung primary would be
# counted failed by the load balancer's own timeout without ever saying why.
READY_DEADLINE_SECONDS = 2.0
MASTER_KEY_UNCONFIRMED = _(
    "the master key has not been confirmed since an upgrade: until one of the database's API clients gets a token "
    "(POST /oauth/token) or an operator runs `registry keys confirm-master` on the server, checkpoints, the PDF "
    "signing root, holder sign-in and questions from peer nodes answer 503"
)


@router.get("/healthz", operation_id="ops-healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", operation_id="ops-readyz", responses=DATABASE_UNAVAILABLE)
async def readyz(request: Request, reads: UnlockedReadsDep) -> Response:
    """Ready while the primary answers; ``pools`` says how each database is: the primary ``ok``, and the replica's
    ``state`` (``ok``, ``lagging``, ``down``, ``unchecked``), ``lag_seconds`` and ``breaker`` (``closed``, ``open``,
    ``half_open``). A replica that lags or is down does not make the process unready: reads go to the primary."""
    # (Said here, not in the docstring, which is the OpenAPI document's text.) ``master_key`` appears while the
    # database's master key is unconfirmed (``keys.master_key_state``: API clients of an earlier version, nothing
    # sealed): still ready, for the token request that confirms it must reach a process.
    try:
        key_state = await _primary_answers(request.app, reads)
    except Exception as error:  # any failure to reach the database means "not ready", whatever the driver raises
        fault = database_fault(error) or Fault.unreachable
        return registry_problem(unavailable(fault), instance=request.url.path, lang=language(request.scope))
    if not getattr(request.app.state, "master_key_checked", True):  # the database was out of reach at start
        refused = await _master_key_refused(request, reads)
        if refused is not None:
            return refused
    pools: dict[str, Any] = {"primary": {"state": "ok"}}
    route: ReadRoute = request.app.state.read_route
    if (replica := await route.report()) is not None:
        pools["replica"] = replica
    body: dict[str, Any] = {"status": "ready", "pools": pools}
    if key_state == "unproven":
        body["master_key"] = {
            "state": "unconfirmed",
            "detail": translate(MASTER_KEY_UNCONFIRMED, language(request.scope)),
        }
    return Response(orjson.dumps(body), media_type="application/json")


async def _master_key_refused(request: Request, reads: UnlockedReadsDep) -> Response | None:
    """The master key checked now that the primary answers (``registry.keys.key_check``; at start it could not be):
    never ready under a key that does not open the database's secrets. Checked once there is a sealed key to open."""
    box = request.app.state.context.box
    try:
        checked = await reads(lambda session: key_check.check_master_key(session, box))
    except ConfigurationError:
        logging.getLogger("registry.serve").error(key_check.WRONG_MASTER_KEY)
        detail = _("the registry was started under a master key that does not open this database's secrets")
        lang = language(request.scope)
        return problem(503, slug="master-key-mismatch", title=HTTP_TITLES[503], detail=detail, lang=lang)
    # Nothing sealed to open yet: asked again next time, so a process under the wrong key is not ready once a command
    # under the right one binds the database (registry migrate, registry clients create).
    request.app.state.master_key_checked = checked
    return None


async def _primary_answers(app: FastAPI, reads: UnlockedReadsDep) -> keys.MasterKeyState:
    """The primary's answer (``_probe``), or TimeoutError after READY_DEADLINE_SECONDS. The check itself is not
    cancelled: a statement cancelled while the server hangs would hold the probe in its connection's clean-up until
    the command timeout all the same. It runs on in the background, and the checks that come meanwhile wait for it,
    rather than each taking a connection of its own from the pool a hung server already holds."""
    probe: asyncio.Future[keys.MasterKeyState] | None = getattr(app.state, "ready_probe", None)
    if probe is None or probe.done():
        # A pooled connection that died is no answer to "can the database be reached?": Reads asks a fresh one.
        probe = asyncio.ensure_future(reads(lambda session: _probe(app, session)))
        probe.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen, even if no one waits
        app.state.ready_probe = probe
    state = await asyncio.wait_for(asyncio.shield(probe), READY_DEADLINE_SECONDS)
    if state == "bound":
        app.state.master_key_bound = True  # for good: keys are retired, never deleted
    return state


async def _probe(app: FastAPI, session: AsyncSession) -> keys.MasterKeyState:
    """``SELECT 1`` once the database is known bound to its master key; until then, the question of how it stands
    (``keys.master_key_state``), which the primary answers just as well: no query added to a check, none more."""
    if getattr(app.state, "master_key_bound", False):
        await session.execute(text("SELECT 1"))
        return "bound"
    return await keys.master_key_state(session)


@router.get("/metrics", operation_id="ops-metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: off in production unless REGISTRY_METRICS, and behind REGISTRY_METRICS_TOKEN if set."""
    settings: Settings = request.app.state.context.settings
    if not settings.metrics_enabled:
        lang = language(request.scope)
        return problem(404, slug="http-404", title=HTTP_TITLES[404], detail=HTTP_DETAILS["Not Found"], lang=lang)
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            response = problem(
                401,
                slug="unauthenticated",
                title=Unauthenticated.title,
                detail=_("a metrics token is required"),
                lang=language(request.scope),
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
