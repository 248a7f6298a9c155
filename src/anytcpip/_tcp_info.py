"""What the kernel knows about a TCP connection, read without reading data.

Rationale
---------
Heartbeats in the lsst.ts.tcpip protocol are one-way (``b"heartbeat"`` and a
terminator, never answered), so they cannot time a round trip without
breaking wire compatibility. The kernel already does: TCP times every
acknowledged segment and keeps a smoothed round-trip time, which Linux
reports through the ``TCP_INFO`` socket option. Reading it costs one
``getsockopt`` when asked, nothing otherwise. On an idle link the estimate
ages; heartbeats keep it fresh, since each one is a segment the peer
acknowledges.

The same option tells, without reading the data, whether the peer reset the
connection (the state is ``TCP_CLOSE``) and how long ago the kernel last
received data. The receive side uses both while its buffer is full and it
has stopped receiving: a hang-up is waited for, without polling, on an
``epoll`` set watching only ``EPOLLRDHUP | EPOLLHUP | EPOLLERR`` (not
``EPOLLIN``: unread data must not wake it), itself waited for with
:func:`anyio.wait_readable`. All of this is Linux-only; elsewhere these
functions return None (or False) and the limits in ``docs/guarantees.md``
apply.
"""

from __future__ import annotations

import select
import socket
import struct
from typing import Any

import anyio
import anyio.abc

from ._socket_options import tcp_socket

__all__ = [
    "HangupWatch",
    "hangup_watch",
    "kernel_idle_time",
    "peer_reset",
    "round_trip_time",
]

# struct tcp_info (linux/tcp.h): eight one-byte fields (tcpi_state first),
# then 32-bit fields: tcpi_last_data_recv (milliseconds) at byte offset 52,
# tcpi_rtt (microseconds) at 68.
_INFO = struct.Struct("=B51xI12xI")
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCP_CLOSE = 7  # linux/tcp_states.h: what a reset leaves
_EPOLL = getattr(select, "epoll", None)
_HANGUP = (
    getattr(select, "EPOLLRDHUP", 0)
    | getattr(select, "EPOLLHUP", 0)
    | getattr(select, "EPOLLERR", 0)
)


def _tcp_info(stream: anyio.abc.AnyByteStream) -> tuple[int, int, int] | None:
    """Return (state, ms since data was last received, rtt in us), or None."""
    if _TCP_INFO is None:
        return None
    sock = tcp_socket(stream)
    if sock is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _INFO.size)
    except (OSError, ValueError):
        # ValueError: uvloop's stand-in socket once the transport has closed
        # the descriptor (it noticed the reset first).
        return None
    if len(info) < _INFO.size:
        return None
    state, last_data_recv, rtt = _INFO.unpack_from(info)
    return state, last_data_recv, rtt


def round_trip_time(stream: anyio.abc.AnyByteStream) -> float | None:
    """Return the kernel's smoothed round-trip time of ``stream``, in seconds.

    Parameters
    ----------
    stream
        An anyio socket stream, or a stream wrapping one (TLS).

    Returns
    -------
    float or None
        None where the OS does not report it (not Linux), or where there is
        no TCP socket under the stream (in-memory streams).
    """
    info = _tcp_info(stream)
    return None if info is None else info[2] / 1e6


def kernel_idle_time(stream: anyio.abc.AnyByteStream) -> float | None:
    """Seconds since the kernel last received data on ``stream`` (None: unknown)."""
    info = _tcp_info(stream)
    return None if info is None else info[1] / 1e3


def peer_reset(stream: anyio.abc.AnyByteStream) -> bool:
    """Whether the kernel has seen the connection reset (Linux; else False)."""
    info = _tcp_info(stream)
    return info is not None and info[0] == _TCP_CLOSE


class HangupWatch:
    """Wait for the peer to close or reset, without waking up for data."""

    def __init__(self, epoll: Any) -> None:
        self._epoll = epoll

    async def wait(self) -> None:
        """Return once the peer has closed its end, reset, or the socket failed."""
        await anyio.wait_readable(self._epoll.fileno())

    def close(self) -> None:
        """Release the ``epoll`` set (after :meth:`wait` has ended)."""
        self._epoll.close()


def hangup_watch(stream: anyio.abc.AnyByteStream) -> HangupWatch | None:
    """Return a :class:`HangupWatch` for ``stream``'s socket, or None (not Linux)."""
    if _EPOLL is None or not _HANGUP:
        return None
    sock = tcp_socket(stream)
    if sock is None:
        return None
    try:
        epoll = _EPOLL()
    except OSError:
        return None
    try:
        epoll.register(sock.fileno(), _HANGUP)
    except (OSError, ValueError):
        epoll.close()
        return None
    return HangupWatch(epoll)
