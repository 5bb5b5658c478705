"""Why an outgoing HTTP request (httpx) got no usable answer, said as a message in the reader's language: each httpx
exception class has one (``_()``), a refused or unresolved connection says which, and a reason the code raised
itself as a message keeps its words. The one place that turns an httpx failure or an unexpected HTTP status into a
reason a person reads (``registry verify-credential``'s fetches; registry.os_reasons is its twin for files)."""

from __future__ import annotations

import errno
import socket
import ssl

import httpx

from registry.i18n import Message, _

# Most specific first: the first class an error is an instance of gives its reason.
_REASONS: tuple[tuple[type[Exception], Message], ...] = (
    (httpx.ConnectTimeout, _("the connection timed out")),
    (httpx.ReadTimeout, _("no answer came in the time allowed")),
    (httpx.WriteTimeout, _("the request could not be sent in the time allowed")),
    (httpx.PoolTimeout, _("no connection became free in the time allowed")),
    (httpx.TimeoutException, _("the request timed out")),
    (httpx.ConnectError, _("cannot connect to the server")),
    (httpx.ReadError, _("the connection broke while the answer was read")),
    (httpx.WriteError, _("the connection broke while the request was sent")),
    (httpx.CloseError, _("the connection could not be closed")),
    (httpx.NetworkError, _("a network error broke the connection")),
    (httpx.RemoteProtocolError, _("the server did not answer in valid HTTP")),
    (httpx.LocalProtocolError, _("the request could not be sent as valid HTTP")),
    (httpx.ProxyError, _("the proxy did not pass the request on")),
    (httpx.UnsupportedProtocol, _("the address is not an http:// or https:// URL")),
    (httpx.DecodingError, _("the answer's content cannot be decoded")),
    (httpx.TooManyRedirects, _("the server redirected too many times")),
    (httpx.InvalidURL, _("the address is not a valid URL")),
)
_CONNECT_ERRNOS: dict[int, Message] = {
    errno.ECONNREFUSED: _("the server refused the connection"),
    errno.ECONNRESET: _("the server closed the connection"),
    errno.EHOSTUNREACH: _("the server cannot be reached"),
    errno.ENETUNREACH: _("the server cannot be reached"),
}
_NO_SUCH_HOST = _("the server's name cannot be resolved")
_UNTRUSTED = _("the server's TLS certificate cannot be verified")
_FAILED = _("the request failed")


def http_reason(error: Exception) -> str:
    """The reason ``error`` (an httpx exception) gives, as a message: a connection's cause when it is known (refused,
    no such host, a certificate that does not verify), else its class's; a message the code raised keeps its words."""
    if error.args and isinstance(error.args[0], Message):
        return error.args[0]
    if isinstance(error, httpx.HTTPStatusError):
        return status_reason(error.response.status_code)
    if isinstance(error, httpx.ConnectError | httpx.ReadError | httpx.WriteError):
        cause = _connection_cause(error)
        if cause is not None:
            return cause
    return next((reason for kind, reason in _REASONS if isinstance(error, kind)), _FAILED)


def status_reason(status: int) -> str:
    """An answer whose status is not the one asked for (``HTTP 404``), as a message."""
    return _("the server answered HTTP {status}", status=status)


def _connection_cause(error: BaseException) -> Message | None:
    """What the operating system or TLS said beneath httpx's error: its ``__cause__``/``__context__`` chain, and
    each attempt of a group (the async client tries every address of a host: "All connection attempts failed")."""
    seen: set[int] = set()
    waiting: list[BaseException] = [error]
    while waiting:
        cause = waiting.pop(0)
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _UNTRUSTED
        if isinstance(cause, socket.gaierror):
            return _NO_SUCH_HOST
        if isinstance(cause, OSError) and cause.errno in _CONNECT_ERRNOS:
            return _CONNECT_ERRNOS[cause.errno]
        if isinstance(cause, BaseExceptionGroup):
            waiting += cause.exceptions
        waiting += [linked for linked in (cause.__cause__, cause.__context__) if linked is not None]
    return None
