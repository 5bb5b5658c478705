"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import problem

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="ops-healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", operation_id="ops-readyz", responses={503: {"description": "database unreachable"}})
async def readyz(request: Request) -> Response:
    engine: AsyncEngine = request.app.state.engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database means "not ready", whatever the driver raises
        return problem(503, slug="not-ready", title="Not ready", detail="the database is not reachable")
    return Response('{"status":"ready"}', media_type="application/json")


@router.get("/metrics", operation_id="ops-metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
