"""Review of d50c7f6 (IPv6 clients also counted by their /48): one subscriber can lock out its neighbours.

An ISP that gives each home a /56 (RFC 6177, RIPE-690: the common residential allocation) puts 256 homes in one /48;
a mobile carrier hands each connection a fresh /64 out of a shared pool. The /48 count is only 16 times one /64's
limit, so a single subscriber with a /56 — sending from 16 × limit of its own 256 /64s, each within its own limit,
or a phone reconnecting for a new /64 — spends the whole /48's allowance, and every other home in that /48 is then
refused verification, holder sign-in and /oauth/token (429) although it sent nothing. Before the change nobody could
spend a neighbour's allowance; one subscriber could be held to a bounded multiple of the limit without it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from api.limits import IPV6_NETWORK_ALLOWANCE
from registry.config import Settings
from tests.integration.rate_limit_support import from_address, limited_app

LIMIT = 2  # a minute, per /64 (and per IPv4 address)
SIGN_IN = {"id_type": "resident_id", "id_number": "110105198807120011", "claim_code": "AAAA-BBBB-CCCC"}

Ask = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def _verify(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/v1/verify/unknown-token")


async def _sign_in(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post("/v1/holder/sessions", json=SIGN_IN)


def _home(subscriber: int, subnet: int) -> str:
    """An address in the ``subnet``-th /64 of the ``subscriber``-th /56 of the ISP's 2001:db8:1::/48."""
    return f"2001:db8:1:{subscriber << 8 | subnet:x}::1"


@pytest.mark.parametrize(
    ("setting", "ask", "answered"),
    [("rate_limit_verify", _verify, (404,)), ("rate_limit_holder_sign_in", _sign_in, (401, 422))],
    ids=["verify", "holder sign-in"],
)
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the counts are in memory, not in the database
async def test_one_subscribers_56_does_not_lock_out_the_other_homes_of_its_48(
    settings: Settings, setting: str, ask: Ask, answered: tuple[int, ...]
) -> None:
    async with limited_app(settings, **{setting: f"{LIMIT}/minute"}) as limited:
        # One subscriber (its own /56, 2001:db8:1:100::/56) asks from LIMIT * IPV6_NETWORK_ALLOWANCE of its /64s,
        # each once — every one of them within its own limit.
        for subnet in range(LIMIT * IPV6_NETWORK_ALLOWANCE):
            async with from_address(limited, _home(1, subnet)) as http:
                assert (await ask(http)).status_code in answered, subnet
        # Another home of the same ISP /48 (its own /56), which has sent nothing, asks once.
        async with from_address(limited, _home(2, 0)) as neighbour:
            response = await ask(neighbour)
        # Before: 429 "… counted over the whole IPv6 /48 network your address is in".
        assert response.status_code in answered, response.text
