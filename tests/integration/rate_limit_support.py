"""An app with abuse limits on (the ``settings`` fixture turns them off), and clients that call it from chosen
addresses: the ASGI ``client`` the limits count by."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
from fastapi import FastAPI

from api.app import create_app, dispose
from registry.config import Settings

REDIS_URL = os.environ.get("REGISTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_REDIS = os.environ.get("REGISTRY_TEST_REQUIRE_REDIS") == "1"
BASE_URL = "https://registry.test"
# Every limit the tests set counts per minute (or per hour, whose windows also begin on a minute).
WINDOW_SECONDS = 60
WINDOW_END_MARGIN_SECONDS = 3.0


@asynccontextmanager
async def limited_app(settings: Settings, **limits: Any) -> AsyncIterator[FastAPI]:
    """The registry on ``settings``' database with limits on: the defaults, except those given."""
    app = create_app(settings.model_copy(update={"rate_limits_enabled": True, **limits}))
    try:
        await clear_of_a_window_end()
        yield app
    finally:
        await dispose(app)


async def clear_of_a_window_end() -> None:
    """Wait for the next minute when this one ends within 3 s. limits' sliding-window counter in memory (where the
    tests count, and where a process counts while Redis is away) weights the previous fixed window, aligned on the
    minute, by how much of it still overlaps the last minute, rounded down: requests that straddle a window's end
    let one more through than the limit says. The tests count exactly, so they start clear of a window's end. (In
    Redis a window starts with its key's first hit instead: a test with a fresh key prefix needs no wait.)"""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < WINDOW_END_MARGIN_SECONDS:
        await asyncio.sleep(left + 0.01)


@asynccontextmanager
async def from_address(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


async def reachable_redis() -> str:
    """REGISTRY_TEST_REDIS_URL when a Redis answers there; else the test is skipped (failed with
    REGISTRY_TEST_REQUIRE_REDIS=1, as .ci/run sets it)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()  # type: ignore[misc]  # redis-py types ping() for its sync and async clients at once
    except (redis.RedisError, OSError) as exc:
        message = f"Redis tests skipped: no Redis at {REDIS_URL} ({type(exc).__name__}: {exc})"
        if REQUIRE_REDIS:
            pytest.fail(message + " — REGISTRY_TEST_REQUIRE_REDIS=1 makes them mandatory")
        pytest.skip(message)
    finally:
        await client.aclose()
    return REDIS_URL


async def redis_keys(prefix: str) -> list[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return [key.decode() async for key in client.scan_iter(match=f"*{prefix}*")]
    finally:
        await client.aclose()


async def forget_redis_keys(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"*{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
