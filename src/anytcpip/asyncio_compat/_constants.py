"""The constants of lsst.ts.tcpip 2.x, with the same names and values.

Most are anytcpip's own (:mod:`anytcpip._constants`); the two added here,
``DEFAULT_MONITOR_CONNECTION_INTERVAL`` and ``DEFAULT_MAX_HEARTBEAT_INTERVAL``,
only exist for the compatibility layer.
"""

from __future__ import annotations

from typing import Final

from .._constants import (
    DEFAULT_ENCODING,
    DEFAULT_LOCALHOST,
    DEFAULT_TERMINATOR,
    HEARTBEAT,
    KEEPALIVE_INTERVAL,
    KEEPALIVE_PROBES,
    KEEPALIVE_TIME,
    LOCAL_HOST,
    LOCALHOST_IPV4,
    LOCALHOST_IPV6,
    TERMINATOR,
)

__all__ = [
    "DEFAULT_ENCODING",
    "DEFAULT_LOCALHOST",
    "DEFAULT_MAX_HEARTBEAT_INTERVAL",
    "DEFAULT_MONITOR_CONNECTION_INTERVAL",
    "DEFAULT_TERMINATOR",
    "HEARTBEAT",
    "KEEPALIVE_INTERVAL",
    "KEEPALIVE_PROBES",
    "KEEPALIVE_TIME",
    "LOCALHOST_IPV4",
    "LOCALHOST_IPV6",
    "LOCAL_HOST",
    "TERMINATOR",
]

DEFAULT_MONITOR_CONNECTION_INTERVAL: Final = 0.1
"""lsst.ts.tcpip's polling interval (seconds); accepted and ignored here.

anytcpip notices a lost connection as it happens, without polling.
"""

DEFAULT_MAX_HEARTBEAT_INTERVAL: Final = 10.0
"""Default ``max_heartbeat_interval`` of ``OneClientReadLoopServer`` (seconds)."""
