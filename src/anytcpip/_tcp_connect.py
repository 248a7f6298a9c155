"""Connecting a TCP socket stream: ``connect_tcp``, with a fast path for IP literals.

Rationale
---------
:func:`anyio.connect_tcp` runs the Happy Eyeballs algorithm: a task group, a
task per address tried, an event and a cancel scope, and a cancellation of
the group once one attempt wins. For a host name that resolves to several
addresses that is what a user wants. For an IP literal (the common case
for instrument controllers, configured as ``"192.168.1.10"``) there is
one address to try, and the machinery costs more than the connect itself:
on a 2-core machine, ``anyio.connect_tcp`` + ``aclose`` to ``127.0.0.1``
took 570 µs against 320 µs for the backend's own connect (asyncio; 460
against 200 µs on trio), which made connect/close (benchmark E) miss its
target (see ``docs/performance.md``).

So an IP literal is connected with the running backend's ``connect_tcp``,
the very call each Happy Eyeballs attempt makes, and a host name goes
through :func:`anyio.connect_tcp`. The fast path reaches into anyio's
backend interface (``anyio._core._eventloop.get_async_backend``); if that
ever goes away, every connect takes the generic path. The stream is the
same type either way, and a failure raises the OS's own error (anyio's
generic path wraps it as the cause of "All connection attempts failed").
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

__all__ = ["connect_tcp"]

_get_async_backend: Callable[[], Any] | None
try:
    from anyio._core._eventloop import get_async_backend as _get_async_backend
except ImportError:  # pragma: no cover - a changed anyio: generic path only
    _get_async_backend = None

_BackendConnect = Callable[[str, int, Any], Awaitable[anyio.abc.SocketStream]]


def _backend_connect() -> _BackendConnect | None:
    """Return the running backend's own ``connect_tcp``, or None if unavailable."""
    if _get_async_backend is None:  # pragma: no cover - a changed anyio
        return None
    connect: _BackendConnect | None = getattr(_get_async_backend(), "connect_tcp", None)
    return connect


@functools.lru_cache(maxsize=256)
def _ip_literal(host: str) -> str | None:
    """``host`` in the form anyio connects to, if it is an IP literal; else None.

    Cached: parsing an address costs about 10 µs, and a client connects to
    the same few hosts again and again.
    """
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return None


async def connect_tcp(host: str, port: int) -> anyio.abc.SocketStream:
    """Connect to ``host``:``port``; like :func:`anyio.connect_tcp` without TLS.

    Raises
    ------
    OSError
        If the connection fails (for an IP literal, the OS's own error, such
        as ``ConnectionRefusedError``; for a host name, anyio's, with the
        last attempt's error as its cause).
    """
    address = _ip_literal(host)
    if address is not None:
        connect = _backend_connect()
        if connect is not None:
            return await connect(address, port, None)
    return await anyio.connect_tcp(host, port)
