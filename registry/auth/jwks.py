"""Other parties' signing keys, fetched from their published JWKS and cached: an identity provider's today, a peer
registry node's for federation. Keys come from the configured URL only, never from a token's own headers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from registry.errors import KeySetUnavailable

MAX_AGE_SECONDS = 300.0
# An unknown kid triggers one early re-fetch (the party may have rotated), but not more often than this: a stream of
# tokens with made-up kids must not become a stream of requests to the party.
MIN_REFETCH_SECONDS = 10.0


class RemoteKeySet:
    """``await keys.key(kid)``: the party's key with this kid, or None when its current JWKS has no such usable key
    (``accept`` narrows which published keys count, e.g. a peer node's own key but not its evaluation bodies').

    The set is re-fetched when it is older than ``max_age``, or early for a kid it does not know; when that fetch
    fails, KeySetUnavailable is raised rather than answering from keys that may have been withdrawn. Callers share
    one fetch at a time, and after a failure the party is not asked again for ``MIN_REFETCH_SECONDS``: while it is
    down, requests fail at once instead of each waiting out a timeout. A fetch is bounded as a whole by ``timeout``
    (httpx's own timeout is per read: a party trickling its answer a byte at a time would hold the lock for ever),
    and a set with no usable key is a failed fetch like any other.
    """

    def __init__(
        self,
        url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        accept: Callable[[dict[str, Any]], bool] = lambda jwk: True,
    ) -> None:
        self.url = url
        self._accept = accept
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)
        self._timeout = timeout
        self._max_age = max_age
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched: float | None = None
        self._failed: float | None = None
        self._fetching = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        if self._wants_fetch(kid):
            async with self._fetching:
                if self._wants_fetch(kid):  # another caller may have fetched while this one waited
                    await self._refresh()
        return self._keys.get(kid)

    def _wants_fetch(self, kid: str) -> bool:
        now = self._clock()
        age = None if self._fetched is None else now - self._fetched
        return age is None or age > self._max_age or (kid not in self._keys and age > MIN_REFETCH_SECONDS)

    async def _refresh(self) -> None:
        if self._failed is not None and self._clock() - self._failed < MIN_REFETCH_SECONDS:
            raise KeySetUnavailable(f"the key set at {self.url} could not be fetched a moment ago")
        try:
            await self._fetch()
        except KeySetUnavailable:
            self._failed = self._clock()
            raise
        except Exception as exc:  # whatever else the party's answer provokes, it is a failed fetch: never a 500
            self._failed = self._clock()
            raise KeySetUnavailable(f"the key set at {self.url} cannot be read: {type(exc).__name__}") from None
        self._failed = None

    async def _fetch(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.get(self.url)
                response.raise_for_status()
                document: Any = response.json()
        except (httpx.HTTPError, ValueError, TimeoutError) as exc:
            raise KeySetUnavailable(f"the key set at {self.url} cannot be fetched: {type(exc).__name__}") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise KeySetUnavailable(f"{self.url} does not hold a JWK set")
        keys = _usable_keys([item for item in document["keys"] if isinstance(item, dict) and self._accept(item)])
        if not keys:
            raise KeySetUnavailable(f"{self.url} publishes no key this node can use")
        self._keys = keys
        self._fetched = self._clock()

    async def close(self) -> None:
        await self._client.aclose()


def _usable_keys(items: list[Any]) -> dict[str, jwt.PyJWK]:
    """Each published key on its own: one that cannot be used (other type, unsupported curve, malformed) just does not
    count, and takes none of the others with it."""
    keys: dict[str, jwt.PyJWK] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("kid"), str) and (key := _key_of(item)) is not None:
            keys[item["kid"]] = key
    return keys


def _key_of(item: dict[str, Any]) -> jwt.PyJWK | None:
    try:
        return jwt.PyJWK(item)
    except Exception:  # PyJWK raises TypeError too (``"alg": ["EdDSA"]`` is unhashable), not only PyJWTError
        return None
