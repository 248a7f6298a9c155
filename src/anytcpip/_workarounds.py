"""Workarounds for anyio's asyncio streams, each with its reason and its limit.

Both touch anyio's private ``_transport``/``_protocol`` attributes by duck
typing and never import asyncio; on other backends (trio) and other streams
they do nothing. ``tests/test_anyio_internals.py`` checks on every backend
that they are active, so a change in anyio fails CI instead of silently
losing the memory bound.

1. Accepted streams start reading (anyio up to at least 4.16). A socket
   returned by ``SocketListener.accept()`` starts with its transport
   *reading*, and ``SocketStream.receive()`` only pauses reading after a
   receive that had to wait. A client that floods the server from the first
   moment therefore keeps the transport reading forever, and anyio's queue
   grows without bound as soon as the application stops receiving: 100 MiB
   sent without a terminator ended up in memory. ``connect_tcp`` pauses
   reading itself; accept does not. :func:`pause_reading_after_accept`
   pauses once after accept, restoring the invariant that reading is only
   resumed while a receive waits.

2. One wake-up can queue megabytes (uvloop). While a receive waits, the
   transport reads; anyio pauses it again only when the receiving task
   runs. asyncio's selector loop reads one chunk (at most 256 KiB) per
   readiness event, but libuv reads until the socket is empty, up to 32
   chunks of 256 KiB, before any task runs: 7.5 MiB was seen in anyio's
   queue, on top of the receive buffer's bound. :func:`bound_read_queue`
   makes the protocol pause reading as soon as a chunk arrives, so anyio's
   queue holds at most one chunk (256 KiB) on every loop. It costs nothing
   extra: anyio pauses after every waiting receive anyway. (The direct
   receiver of ``_asyncio_receive``, which replaces anyio's receive on
   asyncio and uvloop, keeps the same bound with its own hook.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["Parts", "bound_read_queue", "pause_reading_after_accept"]

_MISSING = object()


class Parts:
    """A check that an object has the private parts a backend module uses.

    For anyio's streams' transports and protocols (``_direct_send``,
    ``_asyncio_receive``): ``Parts(names)(obj)`` says whether ``obj`` has
    every attribute of ``names`` (callable ones, if ``methods``). Checked
    on the first object of each type, then remembered: a connect/close
    cycle spent 5 % of its Python lines checking each connection's.
    """

    __slots__ = ("_methods", "_names", "_verified")

    def __init__(self, names: tuple[str, ...], *, methods: bool = True) -> None:
        self._names = names
        self._methods = methods
        self._verified: set[type] = set()

    def __call__(self, obj: Any) -> bool:
        """Return whether ``obj`` has every part."""
        if type(obj) in self._verified:
            return True
        for name in self._names:
            value = getattr(obj, name, _MISSING)
            if value is _MISSING or (self._methods and not callable(value)):
                return False
        self._verified.add(type(obj))
        return True


def _transport_of(stream: Any) -> Any:
    # TLS streams wrap the socket stream.
    return getattr(getattr(stream, "transport_stream", stream), "_transport", None)


def pause_reading_after_accept(stream: Any) -> None:
    """Pause an accepted asyncio transport until the first receive (see above)."""
    transport = _transport_of(stream)
    pause = getattr(transport, "pause_reading", None)
    is_reading = getattr(transport, "is_reading", None)
    if pause is not None and is_reading is not None and is_reading():
        pause()


def bound_read_queue(stream: Any) -> bool:
    """Make anyio's asyncio protocol pause reading after each chunk (see above).

    Also pauses a transport that is reading (an accepted one). Returns True
    if the hook is in place (now or before), False if the stream has no
    such transport (trio, in-memory streams, or a changed anyio).
    """
    inner = getattr(stream, "transport_stream", stream)
    transport = getattr(inner, "_transport", None)
    protocol = getattr(inner, "_protocol", None)
    if transport is None or protocol is None:
        return False
    if getattr(protocol, "_anytcpip_bounded", False):
        return True
    data_received = getattr(protocol, "data_received", None)
    pause = getattr(transport, "pause_reading", None)
    set_protocol = getattr(transport, "set_protocol", None)
    if data_received is None or pause is None or set_protocol is None:
        return False

    def bounded_data_received(data: bytes) -> None:
        data_received(data)
        pause()

    protocol.data_received = bounded_data_received
    protocol._anytcpip_bounded = True
    # uvloop caches ``protocol.data_received`` when the protocol is set.
    set_protocol(protocol)
    pause_reading_after_accept(inner)
    return True
