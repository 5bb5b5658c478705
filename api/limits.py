"""Abuse limits, as ASGI middleware: per client address on public verification, the token endpoint and holder
sign-in; per certificate number on verification by number + name; per ``client_id`` on the token endpoint.

Counted with the `limits` library's sliding-window counters, in Redis when REGISTRY_REDIS_URL is set (every process
shares them) and in this process otherwise. Middleware, not a dependency: the scan route (api/routes/verify.py) skips
FastAPI's dependency machinery, and a refused request should cost no routing, body parsing or database work.

The client address is the ASGI ``client`` host. Behind a reverse proxy that is the proxy's address unless uvicorn is
told to trust the proxy's ``X-Forwarded-For`` (``registry serve`` turns proxy headers on; ``FORWARDED_ALLOW_IPS``
names the proxies). Forwarding headers are never read here: any client can send them. An address is counted as
``registry.addresses.limit_key`` groups it: an IPv6 address by its /64, which one subscriber owns whole. An IPv6
address is counted by its /56 (one subscriber's allocation) and its /48 as well (``registry.addresses.network_key``),
at IPV6_NETWORK_ALLOWANCE and IPV6_BACKSTOP_ALLOWANCE times each per-address limit: a subscriber given a /56 or a /48
would otherwise have 256 or 65,536 separate counts. A request is counted at a level only when every level admits it
(``Counters.first_refusal``): what one level refuses costs no other level's allowance.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import RateLimiter, SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import language, registry_problem
from api.routes.auth import basic_credentials
from registry.addresses import IPV6_BACKSTOP_PREFIX, IPV6_SITE_PREFIX, limit_key, network_key
from registry.certificates.numbering import normalize_number
from registry.config import Settings
from registry.errors import InvalidCertificateNumber, InvalidClient, TooManyRequests
from registry.i18n import _
from registry.keys.secrets_box import SecretsBox

log = logging.getLogger("registry.limits")

# The routes the limits below guard, as OpenAPI names them (api/contract.py documents their 429); the policy keys the
# same routes by concrete path, before routing. tests/integration/test_rate_limits.py checks the two agree.
LIMITED_ROUTES = frozenset(
    {
        ("get", "/v1/verify/{token}"),
        ("get", "/v/{token}"),
        ("post", "/v1/verify"),
        ("post", "/v"),
        ("post", "/oauth/token"),
        ("post", "/v1/holder/sessions"),
        ("post", "/holder/sign-in"),  # the holder's page: the same sign-in, the same limit
        ("get", "/s/{token}"),  # a holder's share link opens the verification page
    }
)
MAX_PEEK_BYTES = 1 << 20  # the bodies read for a key belong to single requests, capped at 1 MiB anyway
REDIS_TIMEOUT_SECONDS = 0.5  # per Redis call: a hung Redis must not hold every verification up
REDIS_RETRY_SECONDS = 5.0  # after a Redis failure, count in this process for this long before trying Redis again
MAX_REMEMBERED_REFUSALS = 10_000  # subjects refused lately, answered without asking the counters again
# An IPv6 /56 — one subscriber's allocation (RFC 6177 practice) — may send this many times what each per-address limit
# allows one /64 (or one IPv4 address): 16 of its /64s at their limit at once. A /48 — one site's, or 256 /56
# customers' of an ISP — may send IPV6_BACKSTOP_ALLOWANCE times it, 16 times a /56's: one /56 spends at most a
# sixteenth of its /48 and cannot lock its neighbours out; it takes 16 /56s at their limit to spend a /48. Both follow
# the configured limits (a per-address limit turned off has no wider count either).
IPV6_NETWORK_ALLOWANCE = 16
IPV6_BACKSTOP_ALLOWANCE = 256
IPV6_ALLOWANCES = ((IPV6_SITE_PREFIX, IPV6_NETWORK_ALLOWANCE), (IPV6_BACKSTOP_PREFIX, IPV6_BACKSTOP_ALLOWANCE))

# Reads the subject a limit is counted per (a certificate number, a client_id) from a request and its body.
SubjectReader = Callable[[Scope, bytes], Awaitable[str | None]]


def client_address(scope: Scope) -> str:
    """The peer address uvicorn gives (a trusted proxy's X-Forwarded-For when so configured), never a header."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@dataclass(frozen=True, slots=True)
class Rule:
    """One limit: the counters' namespace, the windows (all must have room) and what a refusal says."""

    name: str
    items: tuple[RateLimitItem, ...]
    detail: str


@dataclass(frozen=True, slots=True)
class Policy:
    """The limits of one route: per client address (and an IPv6 address's /56 and /48 as a whole: ``per_network``,
    each rule with its prefix, narrower first), and per a subject read from the request's body."""

    per_address: Rule | None
    per_network: tuple[tuple[int, Rule], ...] = ()
    per_subject: Rule | None = None
    subject: SubjectReader | None = None


class Counters:
    """Sliding-window counters in Redis when configured. While Redis cannot be reached they are counted in this
    process instead (logged once per retry period): a public registry keeps verifying, and guessing stays bounded,
    at worst by each process's own count. A subject once refused is refused from memory until its Retry-After has
    passed, so a flood costs no Redis round trips (a refused request is not counted by the library either)."""

    def __init__(self, *, redis_url: str | None, key_prefix: str) -> None:
        self.local: RateLimiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.shared: RateLimiter | None = None
        self.pool: ConnectionPool | None = None
        self.shared_down_until = 0.0
        self.refused_until: dict[tuple[str, str], float] = {}
        if redis_url:
            self.pool = ConnectionPool.from_url(
                redis_url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
            )
            scheme = "async+redis+unix://" if redis_url.startswith("unix://") else "async+"
            storage = RedisStorage(
                scheme + redis_url.removeprefix("unix://"),
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix=key_prefix,
                connection_pool=self.pool,  # type: ignore[arg-type]  # documented; ours, so close() can close it
            )
            self.shared = SlidingWindowCounterRateLimiter(storage)

    async def refusal(self, rule: Rule, subject: str) -> int | None:
        """Count one request against each of the rule's windows: the seconds to wait when one is spent, else None."""
        refused = await self.first_refusal([(rule, subject)])
        return None if refused is None else refused[1]

    async def first_refusal(self, levels: Sequence[tuple[Rule, str]]) -> tuple[Rule, int] | None:
        """Count one request at each level (a rule and its subject, narrower first: a /64, its /56, its /48) when every
        level admits it; else the level refusing it (the narrowest) and the seconds to wait, with nothing counted
        anywhere (but for a race, ``_hit_all``). So what a wider count refuses costs no narrower allowance, and what a
        narrower one refuses no wider one."""
        now = time.monotonic()
        for rule, subject in levels:
            until = self.refused_until.get((rule.name, subject))
            if until is not None and until > now:
                return rule, math.ceil(until - now)
        refused = await self._count(levels)
        if refused is not None:
            rule, subject, wait = refused
            if len(self.refused_until) >= MAX_REMEMBERED_REFUSALS:
                self.refused_until = {key: t for key, t in self.refused_until.items() if t > now}
                if len(self.refused_until) >= MAX_REMEMBERED_REFUSALS:
                    self.refused_until.clear()  # a flood of distinct subjects: asking the counters again is correct
            self.refused_until[rule.name, subject] = now + wait
            return rule, wait
        return None

    async def _count(self, levels: Sequence[tuple[Rule, str]]) -> tuple[Rule, str, int] | None:
        if self.shared is not None and time.monotonic() >= self.shared_down_until:
            try:
                return await _hit_all(self.shared, levels)
            except StorageError as exc:
                self.shared_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                log.warning(
                    "rate-limit counters: Redis unreachable (%s: %s); counting in this process for %.0f s",
                    type(exc.storage_error).__name__,
                    exc.storage_error,
                    REDIS_RETRY_SECONDS,
                )
        return await _hit_all(self.local, levels)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()


async def _hit_all(limiter: RateLimiter, levels: Sequence[tuple[Rule, str]]) -> tuple[Rule, str, int] | None:
    """Every level but the widest is tested first without counting (the limiter's ``test``: the same sum its ``hit``
    compares, a read); then the widest is hit, then each narrower one. A refused hit counts nothing at its own level
    (the library refuses before adding), so a request refused here is counted nowhere; only one admitted by a test
    and refused by its hit — another request, in any process, took the last place in between — was counted at the
    wider levels hit before it: at most once per request in flight at that moment."""
    for rule, subject in levels[:-1]:
        for item in rule.items:
            if not await limiter.test(item, rule.name, subject):
                return rule, subject, await _wait(limiter, item, rule, subject)
    for rule, subject in reversed(levels):
        for item in rule.items:
            if not await limiter.hit(item, rule.name, subject):
                return rule, subject, await _wait(limiter, item, rule, subject)
    return None


async def _wait(limiter: RateLimiter, item: RateLimitItem, rule: Rule, subject: str) -> int:
    stats = await limiter.get_window_stats(item, rule.name, subject)
    return max(1, math.ceil(stats.reset_time - time.time()))


class RateLimits:
    """Which limits apply to which route, and the counters they are kept in."""

    def __init__(self, settings: Settings, *, box: SecretsBox) -> None:
        self.box = box
        self.counters = Counters(redis_url=settings.redis_url, key_prefix=settings.redis_key_prefix)
        verify = _rule("verify", settings.rate_limit_verify, _("too many verification requests from your network"))
        number = _rule(
            "verify-number",
            settings.rate_limit_verify_number,
            _("too many questions about this certificate number; scan its QR code, or try again later"),
        )
        token = _rule("token", settings.rate_limit_token, _("too many token requests from your network"))
        token_client = _rule("token-client", settings.rate_limit_token_client, _("too many token requests for client"))
        sign_in = _rule("holder-sign-in", settings.rate_limit_holder_sign_in, _("too many sign-in attempts"))
        self.reads = _policy(verify)  # GET /v1/verify/{token}, GET /v/{token}, GET /s/{token}
        self.posts = {
            path: policy
            for path, policy in (
                ("/v1/verify", _policy(verify, number, _json_number)),
                ("/v", _policy(verify, number, _form_number)),
                ("/oauth/token", _policy(token, token_client, _token_client_id)),
                ("/v1/holder/sessions", _policy(sign_in)),
                ("/holder/sign-in", _policy(sign_in)),
            )
            if policy is not None
        }

    def policy(self, method: str, path: str) -> Policy | None:
        if method in ("GET", "HEAD") and path.startswith(("/v1/verify/", "/v/", "/s/")):
            return self.reads
        return self.posts.get(path) if method == "POST" else None

    def addressed(self, policy: Policy, address: str) -> list[tuple[Rule, str]]:
        """The per-address counts a request from ``address`` is held to, narrower first: its own (an IPv6 address's
        /64), then, for an IPv6 address, its /56's and its /48's. Each subject keyed."""
        counts: list[tuple[Rule, str]] = []
        if policy.per_address is not None:
            counts.append((policy.per_address, self.keyed(limit_key(address), kind="client-address")))
        for prefix, rule in policy.per_network:
            if (network := network_key(address, prefix)) is not None:
                counts.append((rule, self.keyed(network, kind="client-network")))
        return counts

    def keyed(self, value: str, *, kind: str) -> str:
        """Counters are keyed by a keyed hash: Redis never holds a client's address, a number or a client_id."""
        return self.box.blind_index(value, kind=kind)[:32]

    async def close(self) -> None:
        await self.counters.close()


def _rule(name: str, notation: str, detail: str) -> Rule | None:
    return Rule(name, tuple(parse_many(notation)), detail) if notation else None


def _policy(
    per_address: Rule | None, per_subject: Rule | None = None, subject: SubjectReader | None = None
) -> Policy | None:
    if per_address is None and per_subject is None:
        return None
    return Policy(
        per_address=per_address,
        per_network=_per_network(per_address),
        per_subject=per_subject,
        subject=subject if per_subject is not None else None,
    )


def _per_network(per_address: Rule | None) -> tuple[tuple[int, Rule], ...]:
    """The per-address rule's counts over an IPv6 address's /56 and /48 (IPV6_ALLOWANCES): each window that many
    times as large, in counters of their own, refused in words that name the network."""
    if per_address is None:
        return ()
    return tuple(
        (
            prefix,
            Rule(
                f"{per_address.name}-ipv6-{prefix}",
                tuple(type(item)(item.amount * allowance, item.multiples) for item in per_address.items),
                _(
                    "{limit}, counted over the whole IPv6 /{prefix} network your address is in",
                    limit=per_address.detail,
                    prefix=prefix,
                ),
            ),
        )
        for prefix, allowance in IPV6_ALLOWANCES
    )


class RateLimitMiddleware:
    """Answers 429 problem+json with ``Retry-After`` once a limit is spent; the request then reaches nothing else."""

    def __init__(self, app: ASGIApp, *, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (policy := self.limits.policy(scope["method"], scope["path"])) is None:
            await self.app(scope, receive, send)
            return
        if policy.per_address is not None:
            addressed = self.limits.addressed(policy, client_address(scope))
            if (refused := await self.limits.counters.first_refusal(addressed)) is not None:
                await _refuse(*refused, scope, receive, send)
                return
        if policy.per_subject is not None and policy.subject is not None:
            messages, body = await _read_body(scope, receive)
            receive = _replaying(messages, receive)  # the app reads the body exactly as it arrived
            subject = await policy.subject(scope, body) if body is not None else None
            if subject is not None:
                keyed = self.limits.keyed(subject, kind=f"rate-limit-{policy.per_subject.name}")
                if (wait := await self.limits.counters.refusal(policy.per_subject, keyed)) is not None:
                    await _refuse(policy.per_subject, wait, scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def _refuse(rule: Rule, wait: int, scope: Scope, receive: Receive, send: Send) -> None:
    refused = TooManyRequests(_("{rule}; try again in {wait} s", rule=rule.detail, wait=wait), retry_after=wait)
    await registry_problem(refused, instance=scope["path"], lang=language(scope))(scope, receive, send)


async def _read_body(scope: Scope, receive: Receive) -> tuple[list[Message], bytes | None]:
    """The body's messages as received, and the body when it is whole and at most MAX_PEEK_BYTES. A larger one is left
    for the body-size cap to refuse; a request that never says what it is about is counted per address only."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_PEEK_BYTES:
            return [], None
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > MAX_PEEK_BYTES:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replaying(messages: Sequence[Message], receive: Receive) -> Receive:
    pending = deque(messages)

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return replay


async def _json_number(scope: Scope, body: bytes) -> str | None:
    """The number as the route reads it: FastAPI parses with ``json.loads`` on the bytes, which also takes UTF-16 and
    UTF-32 bodies and a leading byte order mark. orjson refuses those: a parser of its own left them uncounted."""
    try:
        question = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors: the route refuses
        return None
    number = question.get("number") if isinstance(question, dict) else None
    return _canonical_number(number)


async def _form_number(scope: Scope, body: bytes) -> str | None:
    return _canonical_number(await _form_field(scope, body, "number", max_length=None))


def _canonical_number(number: object) -> str | None:
    """``BJ-T-2026-…``, ``bjt2026…`` and ``B J T 2 0 2 6 …`` padded with spaces are one number: folded as the routes
    fold it (normalize_number), with no length bound before folding, so what a route reads as number N is counted as
    N. A malformed one is refused by the route, asked of no one."""
    if not isinstance(number, str):
        return None
    try:
        return normalize_number(number)
    except InvalidCertificateNumber:
        return None


async def _token_client_id(scope: Scope, body: bytes) -> str | None:
    """The client_id the token endpoint will check: from the Basic header when there is one, as the route reads it."""
    authorization = next((value for name, value in scope["headers"] if name == b"authorization"), None)
    try:
        basic = basic_credentials(authorization.decode("latin-1") if authorization is not None else None)
    except InvalidClient:
        return None  # refused by the route before any secret is compared
    if basic is not None:
        return basic[0]
    return await _form_field(scope, body, "client_id")


async def _form_field(scope: Scope, body: bytes, field: str, *, max_length: int | None = 256) -> str | None:
    """One field of a form body (urlencoded or multipart), parsed by Starlette as the route will parse it; a value over
    ``max_length`` is not read (``None``: any length the body cap let through)."""

    async def whole_body() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request({k: v for k, v in scope.items() if k != "app"}, whole_body)
    try:
        async with request.form() as form:  # Starlette's bounds, the route's: what it accepts is read here too
            value = form.get(field)
    except (HTTPException, MultiPartException, ValueError):
        return None
    if not isinstance(value, str) or (max_length is not None and len(value) > max_length):
        return None
    return value
