"""Abuse limits: a client address, a certificate number or a client_id that asks too often meets 429 problem+json
with Retry-After, and nobody else does; counters are shared through Redis; guessing tokens finds nothing. An IPv6
address counts as its /64, which one subscriber owns whole; an IPv4-mapped IPv6 address as its IPv4 address."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
import uuid
from collections import Counter
from types import SimpleNamespace
from typing import Any

import httpx
import limits
import limits.aio.storage
import limits.aio.storage.memory
import pytest
from fastapi import FastAPI
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from pydantic import ValidationError

from api.limits import LIMITED_ROUTES, RateLimits
from registry.auth.scopes import Role
from registry.config import Settings
from tests.checks import assert_problem
from tests.factories import create_client, issued_certificate, ready_issuer
from tests.integration.rate_limit_support import (
    forget_redis_keys,
    from_address,
    limited_app,
    reachable_redis,
    redis_keys,
)

VERIFY_ROUTES = ["GET /v1/verify/{token}", "POST /v1/verify", "GET /v/{token}", "POST /v"]


async def _certificate(app: FastAPI, client: httpx.AsyncClient, issuer: str | None = None) -> dict[str, Any]:
    certificate = await issued_certificate(client, issuer or await ready_issuer(app, client))
    certificate["holder_name"] = "张三"  # tests.factories.certificate_body's holder
    return certificate


async def _verify(http: httpx.AsyncClient, route: str, certificate: dict[str, Any], **overrides: str) -> httpx.Response:
    question = {"number": certificate["number"], "holder_name": certificate["holder_name"], **overrides}
    token = overrides.get("token", certificate["qr_token"])
    if route == "GET /v1/verify/{token}":
        return await http.get(f"/v1/verify/{token}")
    if route == "POST /v1/verify":
        return await http.post("/v1/verify", json=question)
    if route == "GET /v/{token}":
        return await http.get(f"/v/{token}")
    return await http.post("/v", data=question)


def _assert_too_many(response: httpx.Response, *, longest: int) -> int:
    assert_problem(response, 429, slug="too-many-requests")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= longest, retry_after
    return retry_after


async def _token(http: httpx.AsyncClient, client_id: str, secret: str, *, basic: bool = False) -> httpx.Response:
    if basic:
        return await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await http.post("/oauth/token", data=form)


@pytest.mark.parametrize("route", VERIFY_ROUTES)
async def test_an_address_verifying_too_often_meets_429_and_other_addresses_do_not(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, route: str
) -> None:
    certificate = await _certificate(app, client)
    async with (
        limited_app(settings, rate_limit_verify="5/minute") as limited,
        from_address(limited, "1.2.3.4") as scanner,
        from_address(limited, "5.6.7.8") as other,
    ):
        for _ in range(5):
            assert (await _verify(scanner, route, certificate)).status_code == 200
        _assert_too_many(await _verify(scanner, route, certificate), longest=60)
        # Forwarding headers are not believed: the ASGI client address is what counts.
        spoofed = await scanner.get("/v1/verify/x", headers={"X-Forwarded-For": "9.9.9.9"})
        _assert_too_many(spoofed, longest=60)
        assert (await _verify(other, route, certificate)).status_code == 200


async def test_the_verification_routes_share_one_count_per_address(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    certificate = await _certificate(app, client)
    async with limited_app(settings, rate_limit_verify="4/minute") as limited, from_address(limited, "1.2.3.4") as http:
        for route in VERIFY_ROUTES:
            assert (await _verify(http, route, certificate)).status_code == 200, route
        for route in VERIFY_ROUTES:
            _assert_too_many(await _verify(http, route, certificate), longest=60)


@pytest.mark.parametrize("route", ["POST /v1/verify", "POST /v"])
async def test_guessing_names_for_one_number_is_limited_across_addresses(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, route: str
) -> None:
    issuer = await ready_issuer(app, client)
    certificate, other = await _certificate(app, client, issuer), await _certificate(app, client, issuer)
    async with limited_app(settings, rate_limit_verify_number="3/minute;10/hour") as limited:
        for guess in range(3):
            async with from_address(limited, f"10.0.0.{guess}") as http:
                assert (await _verify(http, route, certificate, holder_name=f"李{guess}")).status_code == 404
        async with from_address(limited, "10.0.0.9") as http:
            refused = await _verify(http, route, certificate, holder_name="李九")
            _assert_too_many(refused, longest=60)
            assert "QR" in refused.json()["detail"]
            # The right name is refused too: the count is per number, whoever asks and whatever they say.
            _assert_too_many(await _verify(http, route, certificate), longest=60)
            # Written another way (lower case, no hyphens) it is the same number.
            plain = certificate["number"].replace("-", "").lower()
            _assert_too_many(await _verify(http, "POST /v1/verify", certificate, number=plain), longest=60)
            assert (await _verify(http, route, other)).status_code == 200


async def test_a_chunked_question_is_read_for_its_number_and_still_answered(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    certificate = await _certificate(app, client)
    body = f'{{"number": "{certificate["number"]}", "holder_name": "张三"}}'.encode()

    async def chunks() -> Any:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    async with (
        limited_app(settings, rate_limit_verify_number="2/minute") as limited,
        from_address(limited, "1.2.3.4") as http,
    ):
        headers = {"Content-Type": "application/json"}
        for _ in range(2):
            answer = await http.post("/v1/verify", content=chunks(), headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"] == "valid"
        _assert_too_many(await http.post("/v1/verify", content=chunks(), headers=headers), longest=60)


async def test_wrong_secrets_from_one_address_meet_429_and_other_addresses_do_not(
    app: FastAPI, settings: Settings
) -> None:
    client_id, _ = await create_client(app, role=Role.admin)
    async with (
        limited_app(settings, rate_limit_token="3/minute") as limited,
        from_address(limited, "1.2.3.4") as guesser,
        from_address(limited, "5.6.7.8") as other,
    ):
        for _ in range(3):
            assert_problem(await _token(guesser, client_id, "wrong"), 401, slug="invalid-client")
        _assert_too_many(await _token(guesser, "some-other-client", "wrong"), longest=60)
        assert_problem(await _token(other, client_id, "wrong"), 401, slug="invalid-client")


async def test_wrong_secrets_for_one_client_are_limited_across_addresses(app: FastAPI, settings: Settings) -> None:
    client_id, secret = await create_client(app, role=Role.admin)
    other_id, other_secret = await create_client(app, role=Role.admin)
    async with limited_app(settings, rate_limit_token_client="3/minute") as limited:
        for attempt in range(3):
            async with from_address(limited, f"10.0.1.{attempt}") as http:
                assert_problem(await _token(http, client_id, "wrong", basic=attempt == 1), 401, slug="invalid-client")
        async with from_address(limited, "10.0.1.9") as http:
            _assert_too_many(await _token(http, client_id, "wrong"), longest=60)
            _assert_too_many(await _token(http, client_id, secret), longest=60)  # even the right secret, for now
            _assert_too_many(await _token(http, client_id, secret, basic=True), longest=60)
            # A multipart form names the same client.
            multipart = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
                files={"padding": ("padding.txt", b"x")},
            )
            _assert_too_many(multipart, longest=60)
            assert (await _token(http, other_id, other_secret)).status_code == 200


async def test_holder_sign_in_attempts_from_one_address_meet_429(app: FastAPI, settings: Settings) -> None:
    body = {"id_type": "resident_id", "id_number": "110105198807120011", "claim_code": "AAAA-BBBB-CCCC"}
    async with (
        limited_app(settings, rate_limit_holder_sign_in="3/minute") as limited,
        from_address(limited, "1.2.3.4") as guesser,
        from_address(limited, "5.6.7.8") as other,
    ):
        for _ in range(3):
            assert (await guesser.post("/v1/holder/sessions", json=body)).status_code in (401, 422)
        _assert_too_many(await guesser.post("/v1/holder/sessions", json=body), longest=60)
        assert (await other.post("/v1/holder/sessions", json=body)).status_code in (401, 422)


@pytest.mark.parametrize("route", ["GET /v1/verify/{token}", "POST /v"])
async def test_a_new_ipv6_address_for_every_request_still_meets_429_and_the_next_64_does_not(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, route: str
) -> None:
    """Before, each address of a /64 had its own count: one IPv6 subscriber verified without limit."""
    certificate = await _certificate(app, client)
    async with limited_app(settings, rate_limit_verify="5/minute") as limited:
        for n in range(5):
            async with from_address(limited, f"2001:db8:1:2::{n + 0x101:x}") as scanner:
                assert (await _verify(scanner, route, certificate)).status_code == 200
        for address in ("2001:db8:1:2::1ff", "2001:db8:1:2:ffff:ffff:ffff:ffff"):
            async with from_address(limited, address) as scanner:
                _assert_too_many(await _verify(scanner, route, certificate), longest=60)
        async with from_address(limited, "2001:db8:1:3::101") as next_door:
            assert (await _verify(next_door, route, certificate)).status_code == 200


async def test_an_ipv4_mapped_address_shares_its_ipv4_addresses_count(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    certificate = await _certificate(app, client)
    async with (
        limited_app(settings, rate_limit_verify="5/minute") as limited,
        from_address(limited, "1.2.3.4") as ipv4,
        from_address(limited, "::ffff:1.2.3.4") as mapped,
        from_address(limited, "::ffff:1.2.3.5") as other,
    ):
        for _ in range(5):
            assert (await _verify(ipv4, "GET /v1/verify/{token}", certificate)).status_code == 200
        _assert_too_many(await _verify(mapped, "GET /v1/verify/{token}", certificate), longest=60)
        assert (await _verify(other, "GET /v1/verify/{token}", certificate)).status_code == 200


async def test_sign_ins_and_token_requests_from_one_ipv6_64_share_one_count(app: FastAPI, settings: Settings) -> None:
    body = {"id_type": "resident_id", "id_number": "110105198807120011", "claim_code": "AAAA-BBBB-CCCC"}
    client_id, _ = await create_client(app, role=Role.admin)
    limits = {"rate_limit_holder_sign_in": "3/minute", "rate_limit_token": "3/minute", "rate_limit_token_client": ""}
    async with limited_app(settings, **limits) as limited:
        for n in range(3):
            async with from_address(limited, f"2001:db8:1:2::{n + 1:x}") as guesser:
                assert (await guesser.post("/v1/holder/sessions", json=body)).status_code in (401, 422)
                assert_problem(await _token(guesser, client_id, "wrong"), 401, slug="invalid-client")
        async with from_address(limited, "2001:db8:1:2::99") as guesser:
            _assert_too_many(await guesser.post("/v1/holder/sessions", json=body), longest=60)
            _assert_too_many(await _token(guesser, client_id, "wrong"), longest=60)
        async with from_address(limited, "2001:db8:1:3::1") as other:
            assert (await other.post("/v1/holder/sessions", json=body)).status_code in (401, 422)
            assert_problem(await _token(other, client_id, "wrong"), 401, slug="invalid-client")


async def test_guessing_two_thousand_random_tokens_finds_nothing_and_mostly_meets_429(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    await _certificate(app, client)  # something to find, were guessing possible
    statuses: Counter[int] = Counter()
    started = time.time()
    async with limited_app(settings) as limited, from_address(limited, "203.0.113.7") as http:  # the defaults
        for _ in range(20):
            answers = await asyncio.gather(*(http.get(f"/v1/verify/{secrets.token_urlsafe(18)}") for _ in range(100)))
            statuses.update(answer.status_code for answer in answers)
    ended = time.time()
    assert statuses[200] == 0, statuses
    # REGISTRY_RATE_LIMIT_VERIFY's default, 120/minute, counted by limits' sliding-window counter: fixed one-minute
    # windows, the previous one weighted by how much of it still overlaps the last 60 s (rounded down). Within one
    # window that is exactly 120; past a window's end the previous count fades at 2 a second, and as many more pass.
    assert statuses[404] <= 120 + _faded_since_window_start(started, ended, limit=120, window=60), statuses
    assert statuses[429] == 2_000 - statuses[404], statuses
    assert statuses[404] >= 1, statuses  # a limiter that refused everything would not do either


async def test_the_counter_lets_one_more_through_just_after_a_window_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the limit tests start clear of a window's end (``rate_limit_support.clear_of_a_window_end``) and why the
    guessing test allows for the fading window: limits' sliding-window counter, on a clock set by the test."""
    now = [659.5]  # half a second before a one-minute window ends
    monkeypatch.setattr(limits.aio.storage.memory, "time", SimpleNamespace(time=lambda: now[0]))
    limiter = SlidingWindowCounterRateLimiter(limits.aio.storage.MemoryStorage())
    three = limits.parse("3/minute")
    assert [await limiter.hit(three, "x") for _ in range(4)] == [True, True, True, False]
    now[0] = 660.1  # the next window: the last one's 3 weigh 2.99, rounded down to 2
    assert [await limiter.hit(three, "x") for _ in range(2)] == [True, False]
    now[0] = 690.0  # half way: the last one's 3 weigh 1.5, plus this one's 1: 2.5, rounded down to 2
    assert [await limiter.hit(three, "x") for _ in range(2)] == [True, False]


def _faded_since_window_start(started: float, ended: float, *, limit: int, window: int) -> int:
    """How many more a sliding-window counter lets through between started and ended than one fixed window would."""
    window_start = ended - ended % window
    if started >= window_start:
        return 0
    return math.ceil(limit * (ended - window_start) / window) + 1


async def test_the_fading_allowance_is_nothing_inside_one_window_and_grows_past_its_end() -> None:
    assert _faded_since_window_start(600.5, 659.9, limit=120, window=60) == 0
    assert _faded_since_window_start(659.0, 660.0, limit=120, window=60) == 1
    assert _faded_since_window_start(658.0, 662.0, limit=120, window=60) == 5


async def test_two_processes_share_their_counts_through_redis(settings: Settings) -> None:
    redis_url = await reachable_redis()
    prefix = f"tr-test-{uuid.uuid4().hex}"
    shared = {"redis_url": redis_url, "redis_key_prefix": prefix, "rate_limit_verify": "4/minute"}
    try:
        async with limited_app(settings, **shared) as first, limited_app(settings, **shared) as second:
            async with from_address(first, "1.2.3.4") as one, from_address(second, "1.2.3.4") as two:
                for http in (one, two, one, two):
                    assert (await http.get("/v1/verify/unknown-token")).status_code == 404
                _assert_too_many(await two.get("/v1/verify/unknown-token"), longest=60)
                _assert_too_many(await one.get("/v1/verify/unknown-token"), longest=60)
            async with from_address(second, "5.6.7.8") as other:
                assert (await other.get("/v1/verify/unknown-token")).status_code == 404
        keys = await redis_keys(prefix)
        assert keys, "nothing was counted in Redis"
        assert not any("1.2.3.4" in key or "5.6.7.8" in key for key in keys), keys  # keyed hashes only
    finally:
        await forget_redis_keys(prefix)


async def test_with_redis_down_limits_are_kept_in_the_process_and_a_warning_is_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="registry.limits")
    nothing_listens = "redis://127.0.0.1:1/0"
    async with (
        limited_app(settings, redis_url=nothing_listens, rate_limit_verify="3/minute") as limited,
        from_address(limited, "1.2.3.4") as http,
    ):
        for _ in range(3):
            assert (await http.get("/v1/verify/unknown-token")).status_code == 404
        _assert_too_many(await http.get("/v1/verify/unknown-token"), longest=60)
    warnings = [r for r in caplog.records if r.name == "registry.limits" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # once per retry period, not once per request
    assert "Redis unreachable" in warnings[0].getMessage()


def test_limits_are_written_in_the_limits_notation_and_zero_turns_one_off() -> None:
    assert Settings(rate_limit_verify="0").rate_limit_verify == ""
    assert Settings(rate_limit_verify=" 5/second;100/hour ").rate_limit_verify == "5/second;100/hour"
    with pytest.raises(ValidationError, match="rate limit"):
        Settings(rate_limit_verify="often")
    with pytest.raises(ValidationError, match="REGISTRY_REDIS_URL"):
        Settings(redis_url="http://127.0.0.1:6379")


async def test_a_limit_set_to_zero_is_off(app: FastAPI, client: httpx.AsyncClient, settings: Settings) -> None:
    certificate = await _certificate(app, client)
    async with (
        limited_app(settings, rate_limit_verify="", rate_limit_verify_number="") as limited,
        from_address(limited, "1.2.3.4") as http,
    ):
        for _ in range(15):
            assert (await _verify(http, "POST /v1/verify", certificate)).status_code == 200


async def test_the_routes_documented_as_limited_are_the_routes_the_limits_guard(
    app: FastAPI, settings: Settings
) -> None:
    """api/contract.py lists 429 for LIMITED_ROUTES: each must really meet a policy, and no other route may."""
    limits = RateLimits(settings.model_copy(update={"rate_limits_enabled": True}), box=app.state.context.box)
    try:
        seen = set()
        for path, operations in app.openapi()["paths"].items():
            for method in operations:
                concrete = path.replace("{", "").replace("}", "")
                guarded = limits.policy(method.upper(), concrete) is not None
                assert guarded == ((method, path) in LIMITED_ROUTES), (method, path)
                seen.add((method, path))
        assert seen >= LIMITED_ROUTES
    finally:
        await limits.close()
