"""What ``registry serve`` (api/server.py) asks of a connection's socket: how much of an answer the client has not
taken yet, and a reset that frees it at once."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import termios

_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets, dropping what is unsent
_INT = b"\0\0\0\0"


def unsent_bytes(transport: asyncio.WriteTransport) -> int:
    """The bytes of an answer the client has not taken: the transport's write buffer and the kernel's send queue
    (TIOCOUTQ, Linux's SIOCOUTQ: sent but not acknowledged, or not sent). The kernel takes more from the buffer only
    once about a third of its send buffer is free, and that buffer grows to megabytes: by the write buffer alone, a
    client reading steadily but slowly (a phone on a poor link) looks like one that reads nothing for a minute."""
    queued = 0
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            queued = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, _INT))[0]
    return transport.get_write_buffer_size() + queued


def reset(transport: asyncio.WriteTransport) -> None:
    """End the connection with a reset: close() would wait for a client that reads nothing for good."""
    with contextlib.suppress(OSError, AttributeError):
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    transport.abort()
