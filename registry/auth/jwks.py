"""Other parties' signing keys, fetched from their published JWKS and cached: an identity provider's today, a peer
registry node's for federation. Keys come from the configured URL only, never from a token's own headers.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Callable
from typing import Any, Literal

import httpx
import jwt

from registry.errors import KeySetUnavailable

MAX_AGE_SECONDS = 300.0
# An unknown kid triggers one early re-fetch (the party may have rotated), but not more often than this: a stream of
# tokens with made-up kids must not become a stream of requests to the party.
MIN_REFETCH_SECONDS = 10.0
# The most of a key set read (after decompression): a party's few keys, even each with its certificate chain, are some
# KiB; a party sending more is not read on (it would be held in memory whole, on every re-fetch).
MAX_KEY_SET_BYTES = 1 << 20
# What a party may compress its answer with (``read_at_most`` unpacks it itself, a bounded step at a time): asked for
# explicitly, so an httpx that gained brotli or zstd support does not offer an encoding no bound is kept on.
ACCEPT_ENCODING = "gzip, deflate"
_UNPACKED_STEP = 256 << 10  # the most unpacked at once, so the bound is overshot by this much at most
_ENCODINGS = frozenset({"identity", "gzip", "deflate"})
_GZIP_WBITS = zlib.MAX_WBITS | 32  # either header: a gzip one, or the zlib one some servers send as gzip
# Why a published key does not count (``RemoteKeySet.unusable``): published for encryption, for another use, with
# ``key_ops`` leaving out ``verify``; a ``kty`` or an ``alg`` not written as RFC 7518 does (a list, lower case); or
# members that make no public key of its type (an RSA exponent of 1 or 2, an unknown curve, a missing member).
Unusable = Literal["encryption", "other-use", "no-verify", "kty", "alg", "key"]
_KTYS = frozenset({"RSA", "EC", "OKP", "oct"})
_ALGS = frozenset(jwt.algorithms.get_default_algorithms())


class RemoteKeySet:
    """``await keys.key(kid)``: the party's key with this kid, or None when its current JWKS has no such usable key
    (``accept`` narrows which published keys count, e.g. a peer node's own key but not its evaluation bodies': asked
    when the set is fetched and again each time a key is used; a key published for encryption never counts).

    The set is re-fetched when it is older than ``max_age``, or early for a kid it does not know; when that fetch
    fails, KeySetUnavailable is raised rather than answering from keys that may have been withdrawn. Callers share
    one fetch at a time, and after a failure the party is not asked again for ``MIN_REFETCH_SECONDS``: while it is
    down, requests fail at once instead of each waiting out a timeout. A fetch is bounded as a whole by ``timeout``
    (httpx's own timeout is per read: a party trickling its answer a byte at a time would hold the lock for ever).

    A set fetched and read but with no usable key is a failed fetch like any other when ``empty_fails`` (a peer's: no
    answer of its can be checked). Otherwise it is kept as fetched: every kid answers none, ``unusable(kid)`` says why,
    and it is re-fetched no more often than for any unknown kid — the party answered; it is not out of reach.
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
        empty_fails: bool = True,
    ) -> None:
        self.url = url
        self._accept = accept
        self._empty_fails = empty_fails
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
        self._timeout = timeout
        self._max_age = max_age
        self._clock = clock
        # By kid: each key as published, and as read. RFC 7517 4.5 lets keys of different types share a kid (an RSA
        # and an EC key the party treats as alternatives): each is kept, the last one published answering ``key``.
        self._keys: dict[str, list[tuple[dict[str, Any], jwt.PyJWK]]] = {}
        self._unusable: dict[str, list[Unusable]] = {}  # by kid: why each key published under it does not count
        self._fetched: float | None = None
        self._failed: float | None = None
        self._fetching = asyncio.Lock()
        # Whether the last fetch read a set whole that held no usable key (a failure only where ``empty_fails``): the
        # party answered, so its callers say so rather than that it cannot be reached. Kept through the floor.
        self.none_usable = False

    async def key(self, kid: str) -> jwt.PyJWK | None:
        published = await self.published(kid)
        return published[-1][1] if published else None

    async def published(self, kid: str) -> list[tuple[dict[str, Any], jwt.PyJWK]]:
        """Every usable key of ``kid``, in the order published, each with its JWK as the party published it: whether
        it states ``alg`` (PyJWK's reading cannot tell); none, when the party publishes no such key."""
        if self._wants_fetch(kid):
            async with self._fetching:
                if self._wants_fetch(kid):  # another caller may have fetched while this one waited
                    await self._refresh()
        # ``accept`` is asked again at each use: what it judges may change while the set is kept (a peer's retired
        # node key stops speaking for it a set time after its retirement, not up to ``max_age`` later).
        return [published for published in self._keys.get(kid, ()) if self._accept(published[0])]

    def unusable(self, kid: str) -> list[Unusable]:
        """Why each key the last fetched set publishes under ``kid`` does not count, in the order published (asks
        nothing of the party): empty when it publishes none under ``kid``."""
        return list(self._unusable.get(kid, ()))

    def _wants_fetch(self, kid: str) -> bool:
        now = self._clock()
        age = None if self._fetched is None else now - self._fetched
        return age is None or age > self._max_age or (kid not in self._keys and age > MIN_REFETCH_SECONDS)

    async def _refresh(self) -> None:
        if self._failed is not None and self._clock() - self._failed < MIN_REFETCH_SECONDS:
            raise KeySetUnavailable(f"the key set at {self.url} could not be fetched a moment ago")
        self.none_usable = False
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
            async with asyncio.timeout(self._timeout), self._client.stream("GET", self.url) as response:
                response.raise_for_status()
                content = await read_at_most(response, MAX_KEY_SET_BYTES)
            document: Any = json.loads(content)
        except (httpx.HTTPError, ValueError, TimeoutError) as exc:
            raise KeySetUnavailable(f"the key set at {self.url} cannot be fetched: {type(exc).__name__}") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise KeySetUnavailable(f"{self.url} does not hold a JWK set")
        keys, unusable = _usable_keys(
            [item for item in document["keys"] if isinstance(item, dict) and self._accept(item)]
        )
        self.none_usable = not keys
        if not keys and self._empty_fails:
            raise KeySetUnavailable(f"{self.url} publishes no key this node can use")
        self._keys, self._unusable = keys, unusable
        self._fetched = self._clock()

    async def close(self) -> None:
        await self._client.aclose()


async def read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed ``response``, decompressed, of at most ``limit`` bytes: ValueError once it would be longer
    (nothing more is read or unpacked), or when it is compressed other than once with gzip or deflate (zlib-wrapped or
    raw: both are sent as ``deflate``), cut short, or followed by more bytes. It is unpacked here, never more than the
    bound at a time: httpx unpacks each chunk whole, and 64 KiB of gzip are 64 MiB (and a second ``Content-Encoding``
    layer a thousand times that) before any bound on what it yields can be checked. The transport's own errors
    (a connection closed early, a Content-Length the body does not keep) are httpx's, as from any read."""
    if response.is_stream_consumed:  # read whole (and unpacked) already: a transport that hands over bytes, no stream
        if len(response.content) > limit:
            raise ValueError(f"the answer is longer than {limit} bytes")
        return response.content
    encoding = response.headers.get("content-encoding", "identity").strip().lower() or "identity"
    if encoding not in _ENCODINGS:
        raise ValueError(f"content encoded as {encoding[:40]!r} is not read")
    content = bytearray()
    if encoding == "identity":
        async for data in response.aiter_raw():
            content += data
            _within(content, limit)
        return bytes(content)
    unpack = _Unpacker(encoding)
    async for data in response.aiter_raw():
        unpack.feed(data, content, limit)
    unpack.finish(content, limit)
    return bytes(content)


def _within(content: bytearray, limit: int) -> None:
    if len(content) > limit:
        raise ValueError(f"the answer is longer than {limit} bytes")


class _Unpacker:
    """One gzip or deflate stream unpacked into a bounded buffer, ``_UNPACKED_STEP`` at most at a time. Deflate is
    told apart by its first two bytes (RFC 1950's header, else RFC 1951 raw data, as httpx and browsers read it)."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding == "gzip"
        self._head = b""  # the first bytes, until there are two (deflate: to tell zlib-wrapped from raw)
        self._unpack: Any = None  # until then: an empty body is empty, as httpx reads it

    def feed(self, data: bytes, content: bytearray, limit: int) -> None:
        if self._unpack is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            wbits = _GZIP_WBITS if self._gzip else zlib.MAX_WBITS if _zlib_header(data) else -zlib.MAX_WBITS
            self._unpack = zlib.decompressobj(wbits)
        while data:
            content += _unpacked(self._unpack, data, room=min(_UNPACKED_STEP, limit + 1 - len(content)))
            if self._unpack.unused_data:  # zlib would keep all that follows, copied whole at each step: unbounded
                raise ValueError("the answer goes on after its compressed data ends")
            _within(content, limit)
            data = self._unpack.unconsumed_tail

    def finish(self, content: bytearray, limit: int) -> None:
        """What zlib still holds once the input is all in, then whether the compressed data ended: else it is cut
        short (a server that closed early without a length), never a prefix taken for the whole."""
        if self._unpack is None:
            if self._head:
                raise ValueError("the answer's compression is broken")
            return  # an empty body: nothing was compressed
        while not self._unpack.eof:
            piece = _unpacked(self._unpack, b"", room=min(_UNPACKED_STEP, limit + 1 - len(content)))
            if not piece:
                raise ValueError("the answer's compressed data is cut short")
            content += piece
            _within(content, limit)


def _zlib_header(head: bytes) -> bool:
    """RFC 1950 2.2: CM 8 (deflate), CINFO at most 7, and the two bytes a multiple of 31."""
    return head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and (head[0] << 8 | head[1]) % 31 == 0


def _unpacked(unpack: Any, data: bytes, *, room: int) -> bytes:
    try:
        piece: bytes = unpack.decompress(data, room)
    except zlib.error:
        raise ValueError("the answer's compression is broken") from None
    return piece


def _usable_keys(
    items: list[Any],
) -> tuple[dict[str, list[tuple[dict[str, Any], jwt.PyJWK]]], dict[str, list[Unusable]]]:
    """Each published key on its own: one that cannot be used (other type, unsupported curve, malformed, or not
    published for verifying signatures) just does not count, and takes none of the others with it; why, by kid."""
    keys: dict[str, list[tuple[dict[str, Any], jwt.PyJWK]]] = {}
    unusable: dict[str, list[Unusable]] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("kid"), str):
            continue
        why = _not_for_signatures(item)
        key = _key_of(item) if why is None else None
        if key is not None:
            keys.setdefault(item["kid"], []).append((item, key))
        else:
            unusable.setdefault(item["kid"], []).append(why or _unreadable(item))
    return keys, unusable


def _not_for_signatures(item: dict[str, Any]) -> Unusable | None:
    """RFC 7517 4.2, 4.3: a key published for encryption (``"use": "enc"``), or whose ``key_ops`` leave out
    ``verify``, is not one a signature is checked with; neither member set: any use."""
    if "use" in item and item["use"] != "sig":
        return "encryption" if item["use"] == "enc" else "other-use"
    ops = item.get("key_ops")
    return None if "key_ops" not in item or (isinstance(ops, list) and "verify" in ops) else "no-verify"


def _unreadable(item: dict[str, Any]) -> Unusable:
    """Why PyJWK could not read a key published for signatures: names are case-sensitive single strings (RFC 7517
    6.1, RFC 7518 3.1), so ``"rsa"`` or ``["RS256"]`` names nothing; else its members make no key of that type."""
    kty, alg = item.get("kty"), item.get("alg")
    if not isinstance(kty, str) or kty not in _KTYS:
        return "kty"
    if "alg" in item and (not isinstance(alg, str) or alg not in _ALGS):
        return "alg"
    return "key"


def _key_of(item: dict[str, Any]) -> jwt.PyJWK | None:
    try:
        return jwt.PyJWK(item)
    except Exception:  # PyJWK raises TypeError too (``"alg": ["EdDSA"]`` is unhashable), not only PyJWTError
        return None
