"""The round-trip time of a TCP connection, as the kernel measures it.

Heartbeats in the lsst.ts.tcpip protocol are one-way (``b"heartbeat"`` and a
terminator, never answered), so they cannot time a round trip without
breaking wire compatibility. The kernel already does: TCP times every
acknowledged segment and keeps a smoothed round-trip time, which Linux
reports through the ``TCP_INFO`` socket option. Reading it costs one
``getsockopt`` when asked, nothing otherwise. On an idle link the estimate
ages; heartbeats keep it fresh, since each one is a segment the peer
acknowledges.
"""

from __future__ import annotations

import socket
import struct

import anyio.abc
from anyio.abc import SocketAttribute

__all__ = ["round_trip_time"]

# struct tcp_info (linux/tcp.h): eight one-byte fields, then 32-bit fields;
# tcpi_rtt (microseconds) is the 16th of those, at byte offset 68.
_RTT = struct.Struct("=68xI")
_TCP_INFO = getattr(socket, "TCP_INFO", None)


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
    if _TCP_INFO is None:
        return None
    sock = stream.extra(SocketAttribute.raw_socket, None)
    if sock is None or sock.type != socket.SOCK_STREAM:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _RTT.size)
    except OSError:
        return None
    if len(info) < _RTT.size:
        return None
    micros: int = _RTT.unpack_from(info)[0]
    return micros / 1e6
