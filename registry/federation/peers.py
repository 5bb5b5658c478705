"""The forwarding client: one pooled ``httpx.AsyncClient`` per peer, bounded retries with backoff (stamina), a circuit
breaker per peer, the peer's keys from its JWKS, and a short cache of answers (``REGISTRY_PEER_CACHE_SECONDS``).

Whatever goes wrong with a peer — down, slow, refusing, or answering with a statement that does not check out — the
caller gets ``PeerFailure`` with a reason; never an answer this node could not check.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import stamina
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry import canonical
from registry.auth.jwks import ACCEPT_ENCODING, RemoteKeySet, read_at_most
from registry.breaker import Breaker
from registry.context import RegistryContext
from registry.db import transaction
from registry.errors import CircuitOpen, KeySetUnavailable, PeerFailure, PeerOverloaded, ProtocolError, Unauthenticated
from registry.federation import answers, protocol
from registry.i18n import _

_CACHE_LIMIT = 50_000
# The most of a peer's answer read: a thousand items' judgements, each with its certificate, conditions and bases, are
# a few MiB; a peer sending more is not read on (it would be held in memory whole).
MAX_ANSWER_BYTES = 16 << 20
# How long a peer's key set is trusted before it is read again: a node key the peer marks compromised (or retires)
# stops counting here within this, not the five minutes registry.auth.jwks keeps a key set by default. The same
# minute as a forwarded answer's default bound (REGISTRY_PEER_CACHE_SECONDS).
KEY_SET_SECONDS = 60.0


class Peer:
    def __init__(self, region: str, base_url: str, settings_timeout: float, attempts: int, **options: Any) -> None:
        self.region = region
        self.base_url = base_url
        transport: httpx.AsyncBaseTransport | None = options.get("transport")
        self.timeout = settings_timeout
        self.attempts = attempts
        self.http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=httpx.Timeout(settings_timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
        self.keys = RemoteKeySet(
            f"{base_url}/.well-known/jwks.json",
            transport=transport,
            timeout=settings_timeout,
            accept=protocol.speaks_for_node,
            max_age=KEY_SET_SECONDS,
            clock=options.get("clock", time.monotonic),
        )
        self.breaker = Breaker(threshold=3, reset_after=options.get("reset_after", 10.0))

    async def post(self, path: str, body: dict[str, Any], token: str) -> httpx.Response:
        """The peer's response, or TimeoutError when an attempt or the whole call outlasts its deadline."""
        headers = {"Authorization": f"Bearer {token}"}
        # Bounded: at most ``attempts`` tries of one timeout each, and never longer in all than two timeouts. The
        # deadlines are the process's own: httpx's timeout is per read, so a peer sending a byte a second would
        # never trip it.
        async with asyncio.timeout(2 * self.timeout):
            async for attempt in stamina.retry_context(
                on=(httpx.TransportError, PeerOverloaded, TimeoutError),
                attempts=self.attempts,
                timeout=2 * self.timeout,
                wait_initial=0.05,
                wait_max=0.5,
                wait_jitter=0.05,
            ):
                with attempt:
                    async with asyncio.timeout(self.timeout):
                        response = await self._exchange(path, body, headers)
        return response

    async def _exchange(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        """One attempt: the peer's status and at most ``MAX_ANSWER_BYTES`` of its answer (ProtocolError beyond)."""
        request = self.http.build_request("POST", path, json=body, headers=headers)
        response = await self.http.send(request, stream=True)
        try:
            if response.status_code in (502, 503, 504):
                raise PeerOverloaded(str(response.status_code))
            content = await read_at_most(response, MAX_ANSWER_BYTES)  # a compressed answer bounded as it unpacks
        except ValueError as exc:
            raise ProtocolError(f"the peer's answer is not read: {exc}") from None
        finally:
            await response.aclose()
        return httpx.Response(response.status_code, content=content, request=request)

    async def checked_answer(self, response: httpx.Response, nonce: str, *, asker: str) -> Any:
        if response.status_code != 200:
            raise ProtocolError(f"peer answered HTTP {response.status_code}")
        document = response.json()
        statement = document.get("statement") if isinstance(document, dict) else None
        if not isinstance(statement, str):
            raise ProtocolError("no statement in the peer's answer")
        kid = protocol.header_of(statement, protocol.PEER_ANSWER_TYPE)
        key = await self.keys.key(kid)
        if key is None:
            raise ProtocolError(f"the peer's key set has no node key {kid}")
        claims = protocol.check_statement(statement, key, region=self.region)
        if claims.get("nonce") != nonce or claims.get("aud") != asker:
            raise ProtocolError("the answer is not to this question from this node")
        answer = claims.get("answer")
        if isinstance(answer, list):
            # A bulk answer is judged item by item: the signature vouches for every item, so one the peer stored
            # before a text rule tightened spoils only itself (None: an item no caller trusts), not its neighbours.
            return [None if answers.unreadable_text(item) is not None else item for item in answer]
        where = answers.unreadable_text(answer)
        if where is not None:  # the path only: the text itself may be anything, a terminal escape included
            raise ProtocolError(f"the answer holds text not fit to show a person at {where}")
        return answer

    async def close(self) -> None:
        await self.http.aclose()
        await self.keys.close()


class Federation:
    """This node's peers, and the one way to ask them: ``await federation.ask(region, path, body)``."""

    def __init__(
        self,
        ctx: RegistryContext,
        sessions: async_sessionmaker[AsyncSession],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = ctx.settings
        self.ctx = ctx
        self.region = settings.region.value
        self.cache_seconds = settings.peer_cache_seconds
        self._sessions = sessions
        self._clock = clock
        self.peers = {
            region.value: Peer(
                region.value,
                url,
                settings.peer_timeout_seconds,
                settings.peer_attempts,
                transport=transport,
                reset_after=settings.peer_reset_seconds,
                clock=clock,
            )
            for region, url in settings.peers.items()
        }
        self._signer: tuple[float, protocol.Signer] | None = None
        self._tokens: dict[str, tuple[float, str]] = {}
        self._cache: dict[str, tuple[float, Any]] = {}

    def peer_for_region(self, region: str) -> Peer | None:
        return self.peers.get(region) if region != self.region else None

    async def sign(self, session: AsyncSession | None = None) -> protocol.Signer:
        """This node's statement signer, re-read from the database at most once a minute (a key rotation shows up).
        A caller inside a transaction passes its session: on SQLite every transaction holds the write lock, so a
        second one opened here would wait for the caller's to end."""
        now = self._clock()
        if self._signer is None or now - self._signer[0] > protocol.SIGNER_SECONDS:
            if session is not None:
                sign = await protocol.signer(self.ctx, session)
            else:
                async with transaction(self._sessions) as own:
                    sign = await protocol.signer(self.ctx, own)
            self._signer = (now, sign)
        return self._signer[1]

    async def _token(self, peer: Peer) -> str:
        now = self._clock()
        cached = self._tokens.get(peer.region)
        if cached is None or now - cached[0] > protocol.SERVICE_TOKEN_TTL.total_seconds() / 2:
            sign = await self.sign()
            cached = (now, protocol.service_token(sign, own_region=self.region, peer_region=peer.region))
            self._tokens[peer.region] = cached
        return cached[1]

    async def ask(self, region: str, path: str, body: dict[str, Any]) -> Any:
        """The checked ``answer`` of the peer of ``region`` to ``body`` at ``path``, or PeerFailure."""
        peer = self.peers[region]
        cache_key = path + "\n" + canonical.canonical_json(body).decode()
        cached = self._cache.get(cache_key)
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        try:
            trial = peer.breaker.before_call()
        except CircuitOpen:
            raise PeerFailure("peer_circuit_open") from None
        nonce = secrets.token_urlsafe(16)
        try:
            token = await self._token(peer)
            # The documented bound holds for the whole question, the peer's key set included.
            async with asyncio.timeout(2 * peer.timeout):
                response = await peer.post(path, {**body, "nonce": nonce}, token)
                answer = await peer.checked_answer(response, nonce, asker=self.region)
        except (httpx.TimeoutException, TimeoutError, PeerOverloaded) as exc:
            peer.breaker.failed()
            raise PeerFailure("peer_unavailable" if isinstance(exc, PeerOverloaded) else "peer_timeout") from None
        except (httpx.HTTPError, KeySetUnavailable, ValueError) as exc:
            peer.breaker.failed()
            reason = "peer_keys_unavailable" if isinstance(exc, KeySetUnavailable) else "peer_unreachable"
            raise PeerFailure(reason) from None
        except ProtocolError:
            peer.breaker.failed()
            raise PeerFailure("peer_answer_not_trusted") from None
        except BaseException:
            # Neither an answer nor a peer's failure (the asker went away, a bug here): the breaker is not left
            # waiting for the outcome of a call that has none, which would keep the peer shut out until a restart.
            peer.breaker.abandoned(trial=trial)
            raise
        peer.breaker.succeeded()
        self._remember(cache_key, answer)
        return answer

    def _remember(self, key: str, answer: Any) -> None:
        if self.cache_seconds == 0:
            return
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (self._clock() + self.cache_seconds, answer)

    async def caller(self, authorization: str | None) -> str:
        """The region of the peer node that sent this service token, or Unauthenticated."""
        token = (authorization or "").removeprefix("Bearer ").strip()
        peer: Peer | None = None
        try:
            region = protocol.unverified_region(token)
            peer = self.peer_for_region(region)
            if peer is None:
                raise ProtocolError(f"{region} is not a configured peer of this node")
            kid = protocol.header_of(token, protocol.SERVICE_TOKEN_TYPE)
            key = await peer.keys.key(kid)
            if key is None:
                raise ProtocolError("the token's key is not a node key in the peer's key set")
            protocol.check_service_token(token, key, own_region=self.region, caller_region=region)
        except KeySetUnavailable:
            # Read whole but with no node key this node can use (all withdrawn, say) is not out of reach: said apart.
            if peer is not None and peer.keys.none_usable:
                raise Unauthenticated(_("the calling node's key set holds no node key this node can use")) from None
            raise Unauthenticated(_("the calling node's key set cannot be fetched")) from None
        except ProtocolError as exc:
            raise Unauthenticated(str(exc)) from None
        return region

    async def answer(
        self, *, caller: str, nonce: str, answer: Any, session: AsyncSession | None = None
    ) -> dict[str, str]:
        """This node's signed answer to a peer's question."""
        sign = await self.sign(session)
        return {"statement": sign(protocol.PEER_ANSWER_TYPE, {"aud": caller, "nonce": nonce, "answer": answer})}

    async def close(self) -> None:
        for peer in self.peers.values():
            await peer.close()
