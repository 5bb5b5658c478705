"""Why an outgoing fetch failed is said from one place, registry/http_reasons.py, in the reader's language: each httpx
exception has its own words, a refused connection, an unknown host and an untrusted certificate say which, and
httpx's English ("[Errno 111] Connection refused", "Invalid port: ':1'") never reaches a person."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from registry.http_reasons import http_reason, status_reason
from registry.i18n import Message, _, translate
from tests.integration.server_support import free_port

FALLBACK = "the request failed"


def _concrete(kind: type[Exception]) -> list[type[Exception]]:
    found = [kind]
    for sub in kind.__subclasses__():
        found += _concrete(sub)
    return found


# The classes httpx raises: the leaves of its tree (HTTPError, TransportError and the like are only bases).
HTTPX_ERRORS = sorted(
    {kind for kind in [*_concrete(httpx.HTTPError), httpx.InvalidURL] if not kind.__subclasses__()},
    key=lambda kind: kind.__name__,
)


def _error(kind: type[Exception]) -> Exception:
    request = httpx.Request("GET", "https://registry.test/x")
    if kind is httpx.HTTPStatusError:
        return kind("Client error '404 Not Found'", request=request, response=httpx.Response(404, request=request))
    if kind is httpx.InvalidURL:
        return kind("Invalid port: ':1'")
    return kind("[Errno 111] Connection refused", request=request)  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", HTTPX_ERRORS, ids=lambda k: k.__name__)
async def test_every_httpx_error_has_its_own_words_in_both_languages(kind: type[Exception]) -> None:
    """Found: `registry verify-credential` said "JWKS … 无法获取：[Errno 111] Connection refused" — httpx's English."""
    reason = http_reason(_error(kind))

    assert isinstance(reason, Message), reason
    assert reason != FALLBACK, kind
    assert "Errno" not in reason
    assert "Invalid port" not in reason
    zh = translate(reason, "zh")
    assert zh != str(reason), (kind, zh)
    assert any("\u4e00" <= char <= "\u9fff" for char in zh), zh


async def test_a_refused_connection_says_it_was_refused() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError) as refused:
            await http.get(f"http://127.0.0.1:{free_port()}/")  # nothing listens there

    # httpx's own words ("All connection attempts failed"; "[Errno 111] Connection refused" from the sync client) say
    # what happened only in English, and not always which: the refusal is found beneath them.
    assert str(refused.value) == "All connection attempts failed"
    assert http_reason(refused.value) == "the server refused the connection"
    assert translate(http_reason(refused.value), "zh") == "服务器拒绝连接"


@pytest.mark.parametrize(
    ("cause", "english", "chinese"),
    [
        (
            socket.gaierror(-2, "Name or service not known"),
            "the server's name cannot be resolved",
            "无法解析服务器的域名",
        ),
        (
            ssl.SSLCertVerificationError(1, "certificate verify failed"),
            "the server's TLS certificate cannot be verified",
            "无法验证服务器的 TLS 证书",
        ),
        (OSError(101, "Network is unreachable"), "the server cannot be reached", "无法访问服务器"),
        (OSError(999, "something else"), "cannot connect to the server", "无法连接到服务器"),
    ],
)
async def test_a_connection_says_what_the_system_said_beneath_it(cause: OSError, english: str, chinese: str) -> None:
    def connect(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(str(cause), request=request) from cause

    async with httpx.AsyncClient(transport=httpx.MockTransport(connect)) as http:
        with pytest.raises(httpx.ConnectError) as failed:
            await http.get("https://registry.test/")

    assert http_reason(failed.value) == english
    assert translate(http_reason(failed.value), "zh") == chinese


async def test_a_reason_the_code_gave_keeps_its_words_and_a_status_is_the_servers_answer() -> None:
    request = httpx.Request("GET", "https://registry.test/x")
    ours = http_reason(httpx.ConnectError(_("not fetched: --offline"), request=request))
    assert ours == "not fetched: --offline"
    assert translate(ours, "zh") == "未获取：--offline"
    assert translate(status_reason(503), "zh") == "服务器应答 HTTP 503"
    assert str(status_reason(503)) == "the server answered HTTP 503"
    assert http_reason(_error(httpx.HTTPStatusError)) == "the server answered HTTP 404"
