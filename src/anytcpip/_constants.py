"""Constants shared by every part of anytcpip (exported by the package)."""

from __future__ import annotations

from typing import Final

DEFAULT_ENCODING: Final = "utf-8"
"""Text encoding used by ``read_str``/``write_str`` unless told otherwise."""

DEFAULT_TERMINATOR: Final = b"\r\n"
"""Terminator of text and JSON messages unless told otherwise."""

TERMINATOR: Final = DEFAULT_TERMINATOR
"""Alias of :data:`DEFAULT_TERMINATOR` (the lsst.ts.tcpip name)."""

DEFAULT_LOCALHOST: Final = "127.0.0.1"
"""Default host of servers: loopback only, so nothing is exposed by accident."""

LOCALHOST_IPV4: Final = "127.0.0.1"
"""IPv4 loopback address."""

LOCAL_HOST: Final = LOCALHOST_IPV4
"""Alias of :data:`LOCALHOST_IPV4` (the lsst.ts.tcpip name)."""

LOCALHOST_IPV6: Final = "::1"
"""IPv6 loopback address."""

HEARTBEAT: Final = b"heartbeat"
"""Heartbeat message, sent followed by the terminator (lsst.ts.tcpip >= 2.2)."""

DEFAULT_MAX_LINE_LENGTH: Final = 65536
"""The longest terminated message (without its terminator) a read will buffer."""

DEFAULT_MAX_FRAME_SIZE: Final = 1 << 20
"""The largest length-prefixed frame payload (``read_frame``) accepted, 1 MiB."""

KEEPALIVE_TIME: Final = 60
"""Seconds of idleness before TCP keepalive probes start."""

KEEPALIVE_INTERVAL: Final = 15
"""Seconds between TCP keepalive probes."""

KEEPALIVE_PROBES: Final = 4
"""Unanswered TCP keepalive probes before the connection is dropped."""

TLS_HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds a TLS handshake may take, on a server and (by default) a client.

A peer that accepts TCP but never answers the TLS hello cannot hold a
connection attempt, or a server's slot, for longer than this.
"""

RECEIVE_CHUNK_SIZE: Final = 256 * 1024
"""Largest number of bytes asked of the transport by one receive call.

As large as what asyncio's transports read at once (256 KiB): a smaller
request makes anyio split each chunk it received, copying the rest every time.
"""
