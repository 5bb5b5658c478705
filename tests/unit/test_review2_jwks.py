"""A second review of ``registry.auth.jwks``: what ``read_at_most`` makes of honest compressed answers (deflate is sent
both zlib-wrapped and raw), of compressed data cut short or followed by more bytes, and of a server that lies about its
length or closes early; and which published keys may check a signature at all (RFC 7517 ``use``, ``key_ops``)."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.auth.jwks import RemoteKeySet, read_at_most
from registry.errors import KeySetUnavailable
from registry.federation.peers import Peer

URL = "https://idp.test/.well-known/jwks.json"
_MIB = 1 << 20


def _jwk(kid: str, **members: Any) -> dict[str, Any]:
    public = Ed25519PrivateKey.generate().public_key()
    jwk: dict[str, Any] = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
    return {**jwk, "kid": kid, "alg": "EdDSA", **members}


def _packed(data: bytes, wbits: int) -> bytes:
    """``data`` compressed: wbits 31 gzip, 15 zlib-wrapped deflate, -15 raw deflate."""
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return packer.compress(data) + packer.flush()


async def _sent(content: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(content), 64 << 10):
        yield content[start : start + (64 << 10)]


def _answering(content: bytes, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers or {}, content=_sent(content))

    return httpx.MockTransport(handler)


async def _read(content: bytes, encoding: str, limit: int = _MIB) -> bytes:
    async with (
        httpx.AsyncClient(transport=_answering(content, {"content-encoding": encoding})) as client,
        client.stream("GET", URL) as response,
    ):
        return await read_at_most(response, limit)


_DOCUMENT = json.dumps({"keys": [_jwk(f"k{index}", use="sig") for index in range(400)]}).encode()


@pytest.mark.parametrize(("encoding", "wbits"), [("gzip", 31), ("deflate", 15), ("deflate", -15), ("DEFLATE ", -15)])
async def test_an_honest_compressed_answer_is_read_whole(encoding: str, wbits: int) -> None:
    """Found: raw deflate (RFC 1951, what IIS and others send as "deflate", and what httpx and browsers read) was
    refused as broken compression, so an honest party's key set, or a peer's answer, could not be read."""
    assert await _read(_packed(_DOCUMENT, wbits), encoding) == _DOCUMENT


async def test_a_highly_compressible_answer_unpacked_in_steps_is_read_whole() -> None:
    document = json.dumps({"keys": [], "pad": "x" * (3 * _MIB)}).encode()
    for wbits, encoding in ((31, "gzip"), (-15, "deflate"), (15, "deflate")):
        assert await _read(_packed(document, wbits), encoding, limit=4 * _MIB) == document


@pytest.mark.parametrize(("encoding", "wbits"), [("gzip", 31), ("deflate", 15), ("deflate", -15)])
async def test_compressed_data_cut_short_is_refused_not_taken_for_the_whole(encoding: str, wbits: int) -> None:
    """Found: a compressed answer whose server closed early (no Content-Length, so the transport cannot tell) was
    returned as whatever prefix had arrived."""
    document = b'{"keys": []}' + b" " * 200_000  # any prefix past the brace is a complete JSON document
    packed = _packed(document, wbits)
    with pytest.raises(ValueError, match="cut short"):
        await _read(packed[: len(packed) // 2], encoding)


async def _peak_mib(call: Callable[[], Awaitable[object]]) -> float:
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="goes on after"):
            await call()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / _MIB


async def test_bytes_after_the_compressed_data_are_refused_and_not_held() -> None:
    """Found: a tiny gzip followed by 32 MiB more was accepted under a 1 MiB bound: zlib keeps whatever follows the
    end of the data (``unused_data``, copied whole at each step), so it was held, uncounted, 64 MiB at the peak."""
    chunk = bytes(_MIB)

    async def tail() -> AsyncIterator[bytes]:
        yield _packed(b'{"keys": []}', 31)
        for _ in range(32):
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "gzip"}, content=tail())

    async def fetch() -> bytes:
        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client,
            client.stream("GET", URL) as response,
        ):
            return await read_at_most(response, _MIB)

    assert await _peak_mib(fetch) < 8
    with pytest.raises(ValueError, match="goes on after"):  # a second gzip member: never silently dropped
        await _read(_packed(b'{"keys": []}', 31) * 2, "gzip")


async def test_an_empty_compressed_body_is_empty_and_one_byte_is_broken() -> None:
    for encoding in ("gzip", "deflate"):
        assert await _read(b"", encoding) == b""
        with pytest.raises(ValueError, match="broken"):
            await _read(b"\x78", encoding)


async def test_an_honest_compressed_peer_answer_is_read_and_parsed() -> None:
    answer = {"statement": "a.b.c", "padding": "x" * 300_000}
    for wbits in (31, 15, -15):
        encoding = "gzip" if wbits == 31 else "deflate"
        transport = _answering(_packed(json.dumps(answer).encode(), wbits), {"content-encoding": encoding})
        peer = Peer("TJ", "https://tj-node.test", 5.0, 1, transport=transport)
        response = await peer._exchange("/v1/federation/verify", {}, {})
        assert (response.status_code, response.json()) == (200, answer)
        await peer.close()


# --- a real server that lies about its length, or closes early ---------------------------------------------------


async def _served(raw: bytes) -> tuple[asyncio.Server, str]:
    """A server answering every request with ``raw`` (status line, headers, body) and then closing."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(raw)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/jwks.json"


_KEYS = json.dumps({"keys": [_jwk("k1", use="sig")]}).encode()
_GZ = _packed(_KEYS, 31)
_LIES = {
    "Content-Length longer than the body": b"Content-Length: %d\r\n\r\n" % (len(_KEYS) + 50) + _KEYS,
    "gzip, closing before its Content-Length": b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(_GZ)
    + _GZ[:-4],
    "chunked, cut in a chunk": b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(_KEYS) + _KEYS[:20],
    "chunked, a bad chunk size": b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + _KEYS,
    "gzip, no length, closing early": b"Content-Encoding: gzip\r\nConnection: close\r\n\r\n" + _GZ[:-12],
    "deflate that is not": b"Content-Encoding: deflate\r\nContent-Length: 8\r\n\r\nnotzlib!",
}


@pytest.mark.parametrize("raw", _LIES.values(), ids=_LIES.keys())
async def test_a_server_lying_about_its_body_is_a_failed_fetch_never_another_error(raw: bytes) -> None:
    server, url = await _served(b"HTTP/1.1 200 OK\r\n" + raw)
    keys = RemoteKeySet(url, timeout=2.0)
    try:
        with pytest.raises(KeySetUnavailable):
            await keys.key("k1")
    finally:
        await keys.close()
        server.close()


async def test_an_honest_chunked_gzip_key_set_from_a_real_server_is_read() -> None:
    chunks = b"".join(b"%x\r\n" % len(_GZ[i : i + 7]) + _GZ[i : i + 7] + b"\r\n" for i in range(0, len(_GZ), 7))
    raw = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    server, url = await _served(raw)
    keys = RemoteKeySet(url, timeout=2.0)
    try:
        assert await keys.key("k1") is not None
    finally:
        await keys.close()
        server.close()


# --- only keys published for signatures check signatures -------------------------------------------------------------

_NOT_FOR_SIGNATURES = {
    "use enc": {"use": "enc"},
    "key_ops encrypt": {"key_ops": ["encrypt", "wrapKey"]},
    "key_ops sign only": {"key_ops": ["sign"]},
    "key_ops not a list": {"key_ops": "verify"},
    "use not a string": {"use": ["sig"]},
}


@pytest.mark.parametrize("members", _NOT_FOR_SIGNATURES.values(), ids=_NOT_FOR_SIGNATURES.keys())
async def test_a_key_published_for_other_than_verifying_signatures_is_not_used(members: dict[str, Any]) -> None:
    """Found: a key marked ``"use": "enc"`` (or whose ``key_ops`` leave out ``verify``) was handed out for checking
    signatures, beside the party's signing key; alone, it made a usable key set."""
    document = {"keys": [_jwk("sig", use="sig"), _jwk("other", **members)]}
    keys = RemoteKeySet(URL, transport=_answering(json.dumps(document).encode()))
    assert await keys.key("sig") is not None
    assert await keys.key("other") is None
    only = RemoteKeySet(URL, transport=_answering(json.dumps({"keys": [_jwk("other", **members)]}).encode()))
    with pytest.raises(KeySetUnavailable, match="no key"):
        await only.key("other")


async def test_keys_for_signatures_or_for_any_use_are_used() -> None:
    document = {
        "keys": [_jwk("a", use="sig"), _jwk("b"), _jwk("c", key_ops=["verify"]), _jwk("d", use="sig", key_ops=[])]
    }
    keys = RemoteKeySet(URL, transport=_answering(json.dumps(document).encode()))
    assert [kid for kid in "abcd" if await keys.key(kid) is not None] == ["a", "b", "c"]
