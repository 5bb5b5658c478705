"""An IPv6 subscriber given a /56 (one subscriber's allocation) or a /48 sends from 256 or 65,536 /64s, each with a
count of its own: besides its /64, every per-address limit counts an IPv6 address's whole /56, at
IPV6_NETWORK_ALLOWANCE times the limit (and its /48, as a backstop: tests/integration/test_ipv6_fix_networks.py).
Many /64s of one /56 are refused (429 problem+json with Retry-After, naming the /56) once it is spent, in memory and
in Redis alike; another /56 of the same /48 is not, nor another /48; a single /64 meets its own limit as before, and
IPv4 is counted as before."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.limits import IPV6_NETWORK_ALLOWANCE
from registry.auth.scopes import Role
from registry.config import Settings
from tests.checks import assert_problem
from tests.factories import create_client
from tests.integration.rate_limit_support import (
    forget_redis_keys,
    from_address,
    limited_app,
    reachable_redis,
    redis_keys,
)

LIMIT = 2  # per /64 and per IPv4 address, a minute: a /56 may send LIMIT * IPV6_NETWORK_ALLOWANCE
SIGN_IN = {"id_type": "resident_id", "id_number": "110105198807120011", "claim_code": "AAAA-BBBB-CCCC"}

Ask = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]


def _route(name: str, client_id: str) -> tuple[dict[str, str], Ask, tuple[int, ...]]:
    """The limit setting of a route counted per address, a request to it, and what it answers when let through."""

    async def verify(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        return await http.get("/v1/verify/unknown-token", headers=headers)

    async def sign_in(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        return await http.post("/v1/holder/sessions", json=SIGN_IN, headers=headers)

    async def token(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "wrong"}
        return await http.post("/oauth/token", data=form, headers=headers)

    per_minute = f"{LIMIT}/minute"
    return {
        "verify": ({"rate_limit_verify": per_minute}, verify, (404,)),
        "holder sign-in": ({"rate_limit_holder_sign_in": per_minute}, sign_in, (401, 422)),
        "token": ({"rate_limit_token": per_minute, "rate_limit_token_client": ""}, token, (401,)),
    }[name]


def _subnet_64(n: int, network: str = "2001:db8:1", site: int = 1) -> str:
    """An address in the n-th /64 of the ``site``-th /56 of ``network``'s /48."""
    return f"{network}:{site << 8 | n:x}::1"


def _assert_refused(response: httpx.Response) -> str:
    problem = assert_problem(response, 429, slug="too-many-requests")
    assert 1 <= int(response.headers["Retry-After"]) <= 60, response.headers
    detail: str = problem["detail"]
    return detail


async def _spend_the_56(limited: FastAPI, ask: Ask, answered: tuple[int, ...]) -> None:
    """Each of LIMIT * IPV6_NETWORK_ALLOWANCE /64s of 2001:db8:1:100::/56 asks once, within its own limit: all
    answered."""
    for n in range(LIMIT * IPV6_NETWORK_ALLOWANCE):
        async with from_address(limited, _subnet_64(n)) as http:
            assert (await ask(http, {})).status_code in answered, n


async def _refused_there_and_not_next_door(limited: FastAPI, ask: Ask, answered: tuple[int, ...]) -> None:
    async with from_address(limited, _subnet_64(0x80)) as fresh:  # a /64 of that /56 never heard from
        detail = _assert_refused(await ask(fresh, {}))
        assert "counted over the whole IPv6 /56 network" in detail, detail
        zh = _assert_refused(await ask(fresh, {"Accept-Language": "zh"}))
        assert "按您的地址所在的整个 IPv6 /56 网段合计" in zh, zh
    async with from_address(limited, _subnet_64(0)) as seen:  # one that asked once, within its own limit
        _assert_refused(await ask(seen, {}))
    async with from_address(limited, _subnet_64(0, site=2)) as next_door:  # another /56 of the same /48
        assert (await ask(next_door, {})).status_code in answered
    async with from_address(limited, _subnet_64(0, network="2001:db8:2")) as other_48:
        assert (await ask(other_48, {})).status_code in answered


@pytest.mark.parametrize("route", ["verify", "holder sign-in", "token"])
async def test_many_64s_of_one_56_meet_429_once_it_is_spent_and_its_neighbours_do_not(
    app: FastAPI, settings: Settings, route: str
) -> None:
    client_id, _secret = await create_client(app, role=Role.admin)
    limit, ask, answered = _route(route, client_id)
    async with limited_app(settings, **limit) as limited:
        await _spend_the_56(limited, ask, answered)
        await _refused_there_and_not_next_door(limited, ask, answered)


async def test_the_56_and_48_are_counted_in_redis_shared_by_processes_and_keyed_by_hash(settings: Settings) -> None:
    redis_url = await reachable_redis()
    prefix = f"tr-test-{uuid.uuid4().hex}"
    limit, ask, answered = _route("verify", "unused")
    shared: dict[str, Any] = {"redis_url": redis_url, "redis_key_prefix": prefix, **limit}
    try:
        async with limited_app(settings, **shared) as first, limited_app(settings, **shared) as second:
            await _spend_the_56(first, ask, answered)  # one process hears from every /64 ...
            await _refused_there_and_not_next_door(second, ask, answered)  # ... and the other knows the /56 spent
        keys = await redis_keys(prefix)
        assert any("verify-ipv6-56" in key for key in keys), keys
        assert any("verify-ipv6-48" in key for key in keys), keys
        assert not any("2001:db8" in key for key in keys), keys  # keyed hashes only, as for every count
    finally:
        await forget_redis_keys(prefix)


async def test_a_single_64_meets_its_own_limit_as_before_and_its_refusals_do_not_spend_its_56(
    settings: Settings,
) -> None:
    """One /64 asking far over its limit is refused by its own count (not the /56's or the /48's), and what it was
    refused is not counted against its /56 or its /48: its neighbours keep their allowance."""
    _limit, ask, answered = _route("verify", "unused")
    async with limited_app(settings, rate_limit_verify="3/minute") as limited:
        async with from_address(limited, "2001:db8:1:2::1") as busy:
            for _ in range(3):
                assert (await ask(busy, {})).status_code in answered
            for _ in range(3 * IPV6_NETWORK_ALLOWANCE + 5):
                detail = _assert_refused(await ask(busy, {}))
                assert detail.startswith("too many verification requests from your network; try again"), detail
        async with from_address(limited, "2001:db8:1:3::1") as neighbour:
            for _ in range(3):
                assert (await ask(neighbour, {})).status_code in answered
            _assert_refused(await ask(neighbour, {}))  # and then its own limit


async def test_ipv4_addresses_are_counted_one_by_one_as_before(settings: Settings) -> None:
    """No wider count for IPv4 (nor IPv4-mapped IPv6): many addresses of one /16 each keep their own allowance."""
    _limit, ask, answered = _route("verify", "unused")
    async with limited_app(settings, rate_limit_verify=f"{LIMIT}/minute") as limited:
        for n in range(LIMIT * IPV6_NETWORK_ALLOWANCE + 4):
            for address in (f"10.1.{n}.1", f"::ffff:10.2.{n}.1"):
                async with from_address(limited, address) as http:
                    for _ in range(LIMIT):
                        assert (await ask(http, {})).status_code in answered, address
                    _assert_refused(await ask(http, {}))
