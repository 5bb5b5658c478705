"""A party's key set, and a peer's answer, are read up to a bound only, counted as they unpack: a huge JWKS, a gzip
bomb, and a second Content-Encoding layer (which httpx would unpack a whole chunk at a time) are refused without being
held in memory."""

from __future__ import annotations

import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.auth.jwks import MAX_KEY_SET_BYTES, RemoteKeySet
from registry.errors import KeySetUnavailable, ProtocolError
from registry.federation.peers import MAX_ANSWER_BYTES, Peer

URL = "https://idp.test/.well-known/jwks.json"
_MIB = 1 << 20


def _key_set(**extra: Any) -> dict[str, Any]:
    public = Ed25519PrivateKey.generate().public_key()
    jwk: dict[str, Any] = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
    return {"keys": [{**jwk, "kid": "k1", "alg": "EdDSA", "use": "sig"}], **extra}


def _gzipped(parts: list[bytes], *, zeros_mib: int = 0) -> bytes:
    """gzip of ``parts`` followed by ``zeros_mib`` MiB of zeros, made a MiB at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    out = [packer.compress(part) for part in parts]
    zeros = bytes(_MIB)
    out += [packer.compress(zeros) for _ in range(zeros_mib)]
    out.append(packer.flush())
    return b"".join(out)


def _bomb(zeros_mib: int) -> bytes:
    """A key set document opening, then ``zeros_mib`` MiB of zeros inside a string, gzipped."""
    return _gzipped([b'{"keys": [], "pad": "'], zeros_mib=zeros_mib)


async def _sent(content: bytes) -> AsyncIterator[bytes]:
    """``content`` as the network hands it over: 64 KiB at a time, not yet read (or unpacked) by httpx."""
    for start in range(0, len(content), 64 << 10):
        yield content[start : start + (64 << 10)]


def _answering(content: bytes, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers or {}, content=_sent(content))

    return httpx.MockTransport(handler)


def _keys(content: bytes, headers: dict[str, str] | None = None) -> RemoteKeySet:
    return RemoteKeySet(URL, transport=_answering(content, headers))


async def _peak_mib(call: Callable[[], Awaitable[object]], error: type[Exception]) -> float:
    tracemalloc.start()
    try:
        with pytest.raises(error):
            await call()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / _MIB


async def test_a_key_set_within_the_bound_is_read() -> None:
    keys = _keys(json.dumps(_key_set(pad="x" * (MAX_KEY_SET_BYTES // 2))).encode())
    assert await keys.key("k1") is not None
    packed = _keys(_gzipped([json.dumps(_key_set()).encode()]), {"content-encoding": "gzip"})
    assert await packed.key("k1") is not None


async def test_a_huge_key_set_is_refused() -> None:
    """Found: a 20 MiB JWKS (valid keys and padding) was read whole and its keys used."""
    keys = _keys(json.dumps(_key_set(pad="x" * (20 * _MIB))).encode())
    with pytest.raises(KeySetUnavailable):
        await keys.key("k1")


async def test_a_gzip_bomb_key_set_is_refused_without_unpacking_it() -> None:
    """Found: 64 MiB of zeros gzipped into 64 KiB were unpacked whole into memory."""
    keys = _keys(_bomb(64), {"content-encoding": "gzip"})
    assert await _peak_mib(lambda: keys.key("k1"), KeySetUnavailable) < 8


async def test_a_key_set_gzipped_twice_is_refused_without_unpacking_it() -> None:
    inner = _bomb(64)
    keys = _keys(_gzipped([inner]), {"content-encoding": "gzip, gzip"})
    assert await _peak_mib(lambda: keys.key("k1"), KeySetUnavailable) < 8


async def test_a_peer_answer_gzipped_twice_is_refused_without_unpacking_it() -> None:
    """Found: the peer answer's 16 MiB bound was checked on what httpx had unpacked, a whole chunk at a time: an answer
    gzipped twice unpacked 64 KiB into 64 MiB, and those into up to 64 GiB, before the bound was looked at."""
    transport = _answering(_gzipped([_bomb(64)]), {"content-encoding": "gzip, gzip"})
    peer = Peer("TJ", "https://tj-node.test", 5.0, 1, transport=transport)
    peak = await _peak_mib(lambda: peer._exchange("/v1/federation/verify", {}, {}), ProtocolError)
    assert peak < MAX_ANSWER_BYTES / _MIB + 8


async def test_a_peer_answer_gzip_bomb_stops_at_the_bound() -> None:
    transport = _answering(_bomb(256), {"content-encoding": "gzip"})
    peer = Peer("TJ", "https://tj-node.test", 5.0, 1, transport=transport)
    peak = await _peak_mib(lambda: peer._exchange("/v1/federation/verify", {}, {}), ProtocolError)
    assert peak < MAX_ANSWER_BYTES / _MIB + 8
