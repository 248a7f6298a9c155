"""Heartbeat sender (wire-compatible with lsst.ts.tcpip >= 2.2).

The sender is a plain ``send; sleep(interval)`` loop in a task bound to one
connection. A heartbeat is one message in the connection's send queue, like
every other write, so it never splits another message. The receiving side's
timeout is the receive pump's watchdog (see ``Channel.pump``), a deadline
pushed forward by every received chunk: no polling.
"""

from __future__ import annotations

import anyio

from ._channel import Channel
from ._constants import HEARTBEAT

__all__ = ["send_heartbeats"]


async def send_heartbeats(channel: Channel, interval: float, terminator: bytes) -> None:
    """Send ``HEARTBEAT + terminator`` every ``interval`` seconds while open.

    Returns when the connection ends (a failed send means it has).
    """
    message = HEARTBEAT + terminator
    while channel.is_open:
        await anyio.sleep(interval)
        try:
            await channel.send(message)
        except ConnectionError:
            return
