"""Review of d50c7f6: the wider IPv6 counts — a subscriber's /56 at IPV6_NETWORK_ALLOWANCE times each per-address
limit, its /48 at IPV6_BACKSTOP_ALLOWANCE (16 times a /56's) — must not let one subscriber lock out its neighbours,
and a request one count refuses must not be counted by another.

The bound: one /56 spends at most a sixteenth of its /48, so 15 /56s at their limit leave a 16th its whole
allowance, and only after 16 /56s (or a subscriber with more than a /56) have spent theirs is the rest of the /48
refused. The counts are read back from the counters themselves (``Counters`` in api/limits.py), in memory and in
Redis shared by two processes.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.limits import IPV6_BACKSTOP_ALLOWANCE, IPV6_NETWORK_ALLOWANCE, RateLimits
from registry.config import Settings
from tests.checks import assert_problem
from tests.integration.rate_limit_support import forget_redis_keys, from_address, limited_app, reachable_redis

LIMIT = 1  # a minute, per /64: a /56 may send 16, a /48 256
SITES_TO_SPEND_A_48 = IPV6_BACKSTOP_ALLOWANCE // IPV6_NETWORK_ALLOWANCE  # 16


def _home(site: int, subnet: int, network: str = "2001:db8:1") -> str:
    """An address in the ``subnet``-th /64 of the ``site``-th /56 of ``network``'s /48."""
    return f"{network}:{site << 8 | subnet:x}::1"


async def _verify(app: FastAPI, address: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with from_address(app, address) as http:
        return await http.get("/v1/verify/unknown-token", headers=headers or {})


async def _spend_the_56(app: FastAPI, site: int) -> None:
    """Each of the /56's first LIMIT * IPV6_NETWORK_ALLOWANCE /64s asks once, within its own limit: all answered."""
    for subnet in range(LIMIT * IPV6_NETWORK_ALLOWANCE):
        assert (await _verify(app, _home(site, subnet))).status_code == 404, (site, subnet)


def _refused_by(response: httpx.Response, prefix: int | None) -> None:
    """A 429 naming the /``prefix`` network (None: the address's own limit, worded as before the wider counts)."""
    problem = assert_problem(response, 429, slug="too-many-requests")
    assert 1 <= int(response.headers["Retry-After"]) <= 60, response.headers
    if prefix is None:
        assert problem["detail"].startswith("too many verification requests from your network; try again"), problem
        assert "IPv6 /" not in problem["detail"], problem
    else:
        assert f"counted over the whole IPv6 /{prefix} network your address is in" in problem["detail"], problem


async def _counted(app: FastAPI, address: str) -> dict[str, int]:
    """What each count of the verification routes holds for ``address``, by level: "own" (its /64, or the IPv4
    address), "56" and "48"."""
    limits: RateLimits = app.state.rate_limits
    assert limits.reads is not None
    limiter = limits.counters.shared or limits.counters.local
    spent: dict[str, int] = {}
    for rule, subject in limits.addressed(limits.reads, address):
        (item,) = rule.items
        stats = await limiter.get_window_stats(item, rule.name, subject)
        spent[rule.name.rsplit("-", 1)[-1] if "ipv6" in rule.name else "own"] = item.amount - stats.remaining
    return spent


async def test_15_subscribers_at_their_limit_leave_a_16th_its_whole_allowance_and_16_spend_the_48(
    settings: Settings,
) -> None:
    async with limited_app(settings, rate_limit_verify=f"{LIMIT}/minute") as limited:
        for site in range(1, SITES_TO_SPEND_A_48):  # 15 /56s, each at its limit
            await _spend_the_56(limited, site)
            _refused_by(await _verify(limited, _home(site, 0xFF)), 56)  # a fresh /64 of a spent /56: its /56
        await _spend_the_56(limited, SITES_TO_SPEND_A_48)  # the 16th: its whole allowance, none refused
        assert await _counted(limited, _home(SITES_TO_SPEND_A_48, 0)) == {
            "own": LIMIT,
            "56": LIMIT * IPV6_NETWORK_ALLOWANCE,
            "48": LIMIT * IPV6_BACKSTOP_ALLOWANCE,
        }
        # The /48 is spent only now: a 17th /56 is refused by it, in the reader's language ...
        seventeenth = _home(SITES_TO_SPEND_A_48 + 1, 0)
        _refused_by(await _verify(limited, seventeenth), 48)
        zh = await _verify(limited, seventeenth, {"Accept-Language": "zh"})
        assert "按您的地址所在的整个 IPv6 /48 网段合计" in assert_problem(zh, 429)["detail"], zh.text
        # ... and another /48 is not.
        assert (await _verify(limited, _home(1, 0, network="2001:db8:2"))).status_code == 404


async def test_a_request_the_48_refuses_is_not_counted_against_its_56_or_its_64(settings: Settings) -> None:
    async with limited_app(settings, rate_limit_verify=f"{LIMIT}/minute") as limited:
        for site in range(SITES_TO_SPEND_A_48):
            await _spend_the_56(limited, site)
        late = _home(0xAB, 7)
        for _ in range(5):
            _refused_by(await _verify(limited, late), 48)
        assert await _counted(limited, late) == {"own": 0, "56": 0, "48": LIMIT * IPV6_BACKSTOP_ALLOWANCE}


async def _refused_at_the_56_counts_nothing(first: FastAPI, second: FastAPI) -> None:
    await _spend_the_56(first, 1)
    late = _home(1, 0x80)  # a /64 of the spent /56 never heard from
    for _ in range(5):
        _refused_by(await _verify(second, late), 56)
    for app in (first, second):
        assert await _counted(app, late) == {
            "own": 0,
            "56": LIMIT * IPV6_NETWORK_ALLOWANCE,
            "48": LIMIT * IPV6_NETWORK_ALLOWANCE,  # what the /56 refused, the /48 did not count either
        }
    assert (await _verify(second, _home(2, 0))).status_code == 404  # the next /56 of that /48


async def test_a_request_the_56_refuses_is_counted_nowhere_in_memory(settings: Settings) -> None:
    async with limited_app(settings, rate_limit_verify=f"{LIMIT}/minute") as limited:
        await _refused_at_the_56_counts_nothing(limited, limited)


async def test_a_request_the_56_refuses_is_counted_nowhere_in_redis_shared_by_processes(settings: Settings) -> None:
    prefix = f"tr-test-{uuid.uuid4().hex}"
    shared: dict[str, Any] = {
        "redis_url": await reachable_redis(),
        "redis_key_prefix": prefix,
        "rate_limit_verify": f"{LIMIT}/minute",
    }
    try:
        async with limited_app(settings, **shared) as first, limited_app(settings, **shared) as second:
            await _refused_at_the_56_counts_nothing(first, second)
    finally:
        await forget_redis_keys(prefix)


async def test_a_single_64_over_its_limit_is_refused_as_before_and_spends_no_wider_count(settings: Settings) -> None:
    async with limited_app(settings, rate_limit_verify=f"{LIMIT}/minute") as limited:
        busy = _home(3, 3)
        assert (await _verify(limited, busy)).status_code == 404
        for _ in range(IPV6_NETWORK_ALLOWANCE + 3):
            _refused_by(await _verify(limited, busy), None)
        assert await _counted(limited, busy) == {"own": LIMIT, "56": LIMIT, "48": LIMIT}


@pytest.mark.parametrize("address", ["10.1.2.3", "::ffff:10.1.2.3"])
async def test_ipv4_has_its_own_count_only(settings: Settings, address: str) -> None:
    async with limited_app(settings, rate_limit_verify=f"{LIMIT}/minute") as limited:
        assert (await _verify(limited, address)).status_code == 404
        _refused_by(await _verify(limited, address), None)
        assert await _counted(limited, address) == {"own": LIMIT}
