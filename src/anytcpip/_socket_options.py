"""TCP keepalive, set portably (``set_socket_options``); a stream's ``raw_socket``.

Where the OS lacks an option it is skipped, never an error: a connection must
not fail because a platform cannot tune keepalive.
"""

from __future__ import annotations

import functools
import logging
import socket
from typing import Any

import anyio.abc
from anyio.abc import SocketAttribute

from ._constants import KEEPALIVE_INTERVAL, KEEPALIVE_PROBES, KEEPALIVE_TIME

__all__ = ["raw_socket", "set_socket_options", "tcp_socket"]

_log = logging.getLogger("anytcpip")


def raw_socket(stream: anyio.abc.AnyByteStream) -> Any:
    """Return the OS socket under ``stream`` (or a TLS stream over one), or None.

    What ``stream.extra(SocketAttribute.raw_socket, None)`` returns, without
    its cost: anyio's ``extra`` builds all of a socket stream's attributes on
    every call, a ``getpeername()`` system call included (11 µs, a tenth of
    opening a connection on a 2-core machine). anyio's socket streams hold
    the socket in their ``_raw_socket`` property on every backend; for any
    other stream, ``extra`` is asked.
    """
    inner = getattr(stream, "transport_stream", stream)
    if isinstance(inner, anyio.abc.SocketStream) and type(inner).__module__.startswith(
        "anyio._backends."
    ):
        try:
            return inner._raw_socket
        except AttributeError:  # pragma: no cover - a changed anyio
            pass
    return stream.extra(SocketAttribute.raw_socket, None)


def tcp_socket(stream: anyio.abc.AnyByteStream) -> socket.socket | None:
    """Return the TCP socket under ``stream`` (see :func:`raw_socket`), or None."""
    sock: socket.socket | None = raw_socket(stream)
    if sock is None or sock.type != socket.SOCK_STREAM:
        return None
    return sock


def set_socket_options(
    stream: anyio.abc.ByteStream | socket.socket,
    *,
    keepalive_time: float = KEEPALIVE_TIME,
    keepalive_interval: float = KEEPALIVE_INTERVAL,
    keepalive_probes: int = KEEPALIVE_PROBES,
) -> None:
    """Enable TCP keepalive on a connected stream (or raw socket).

    Sets ``SO_KEEPALIVE`` and, where the OS has them, the idle time, probe
    interval and probe count. Options the OS lacks are skipped silently; a
    stream with no underlying socket (in-memory, ...) is left alone.

    Parameters
    ----------
    stream
        An anyio socket stream (or a TLS stream over one), or a socket.
    keepalive_time
        Seconds of idleness before the first probe.
    keepalive_interval
        Seconds between probes.
    keepalive_probes
        Unanswered probes before the OS drops the connection.
    """
    sock = (
        (stream if stream.type == socket.SOCK_STREAM else None)
        if isinstance(stream, socket.socket)
        else tcp_socket(stream)
    )
    if sock is None:
        return
    for level, option, name, value in _options(
        keepalive_time, keepalive_interval, keepalive_probes
    ):
        try:
            sock.setsockopt(level, option, value)
        except OSError as exc:
            _log.debug("could not set socket option %s=%s: %r", name, value, exc)


@functools.lru_cache(maxsize=8)
def _options(
    keepalive_time: float, keepalive_interval: float, keepalive_probes: int
) -> tuple[tuple[int, int, str, int], ...]:
    """Return the (level, option, name, value) to set: those the OS has."""
    options = [
        (socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
        # Linux and most BSDs call the idle time TCP_KEEPIDLE; macOS TCP_KEEPALIVE.
        (socket.IPPROTO_TCP, "TCP_KEEPIDLE", int(keepalive_time)),
        (socket.IPPROTO_TCP, "TCP_KEEPINTVL", int(keepalive_interval)),
        (socket.IPPROTO_TCP, "TCP_KEEPCNT", int(keepalive_probes)),
    ]
    if not hasattr(socket, "TCP_KEEPIDLE"):
        options.append((socket.IPPROTO_TCP, "TCP_KEEPALIVE", int(keepalive_time)))
    return tuple(
        (level, option, name, value)
        for level, name, value in options
        if (option := getattr(socket, name, None)) is not None
    )
