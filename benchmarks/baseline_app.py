"""The verify benchmark's baseline: a bare FastAPI endpoint doing one asyncpg look-up by the unique verify token.

    BENCH_BASELINE_DSN=postgresql://postgres@127.0.0.1/bench_verify_1000000 \\
        python -m uvicorn baseline_app:app --app-dir benchmarks --workers 2 --port 8100

No ORM, no signature check, no joins: the floor for "read one certificate row over HTTP" with the same web stack
(FastAPI on uvicorn, asyncpg) that the registry uses. The pool is sized like the registry's SQLAlchemy pool
(10 connections, growing to 20).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request

QUERY = (
    "SELECT number, status, holder_name, cert_type, catalogue_code, level, awarded_on, valid_until "
    "FROM certificates WHERE verify_token = $1"
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_BASELINE_DSN"], min_size=10, max_size=20)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/verify/{token}")
async def verify(token: str, request: Request) -> dict[str, Any]:
    row = await request.app.state.pool.fetchrow(QUERY, token)
    if row is None:
        raise HTTPException(status_code=404, detail="no certificate for this verification link")
    return dict(row)
