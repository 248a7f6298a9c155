"""Workarounds for bugs in dependencies, each with its reason and its limit.

anyio (up to at least 4.16), asyncio backend: a socket returned by
``SocketListener.accept()`` starts with its transport *reading*, and
``SocketStream.receive()`` only pauses reading after a receive that had to
wait. A client that floods the server from the first moment therefore keeps
the transport reading forever, and anyio's internal queue grows without bound
as soon as the application stops receiving: 100 MiB sent without a
terminator ended up in memory. ``connect_tcp`` pauses reading itself; accept
does not. Pausing once after accept restores the invariant (reading is only
resumed while a receive waits), so the receive pump's high-water mark bounds
memory again and the peer feels TCP backpressure.

This touches a private attribute by duck typing and never imports asyncio;
on other backends (trio) it does nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pause_reading_after_accept"]


def pause_reading_after_accept(stream: Any) -> None:
    """Pause an accepted asyncio transport until the first receive (see above)."""
    transport = getattr(stream, "_transport", None)
    pause = getattr(transport, "pause_reading", None)
    is_reading = getattr(transport, "is_reading", None)
    if pause is not None and is_reading is not None and is_reading():
        pause()
