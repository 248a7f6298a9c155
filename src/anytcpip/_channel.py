"""One live connection: a byte stream, its receive side and its send queue.

Rationale
---------
A connection has two independent halves, each in its own module:

- :class:`~anytcpip._receive.ReceiveSide` receives (from the reading task
  itself while reads keep coming, from a receive pump otherwise), buffers
  and parses messages, and notices a peer that leaves without the
  application reading;
- :class:`~anytcpip._send.SendQueue` sends whole messages, never
  interleaved, directly or through a flusher task started on demand.

This module joins them and owns what they share: the connection's state,
which only moves forward (open, then lost or closed), the first reason it
went down, and closing the stream. The only coupling between the halves is
explicit: the receive side calls the send queue's ``flush_before_waiting``
when a reader is about to wait for data (the peer may be waiting for what is
queued), and either half reports a lost connection through
:meth:`Channel._go_down`.

Concurrent readers are refused with :class:`anyio.BusyResourceError` by a
flag the receive side checks on entry (no ``ResourceGuard``: its context
manager would cost more than the read of a buffered message).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import anyio
import anyio.abc

from ._exceptions import ConnectionLostError, NotConnectedError, prefixed
from ._framing import FrameBuffer, NeedData
from ._receive import HIGH_WATER_MARK, LOW_WATER_MARK, READS_PER_CHECKPOINT, ReceiveSide
from ._send import (
    DIRECT_SEND_SIZE,
    DIRECT_SENDS_PER_CHECKPOINT,
    SEND_HIGH_WATER_MARK,
    SendQueue,
    Spawner,
)
from ._streams import close_stream

__all__ = [
    "CLOSE_FLUSH_TIMEOUT",
    "DIRECT_SENDS_PER_CHECKPOINT",
    "DIRECT_SEND_SIZE",
    "HIGH_WATER_MARK",
    "LOW_WATER_MARK",
    "READS_PER_CHECKPOINT",
    "SEND_HIGH_WATER_MARK",
    "Channel",
    "ChannelState",
]

CLOSE_FLUSH_TIMEOUT = 2.0
"""Seconds ``aclose`` spends sending what is still queued before closing."""


class ChannelState(enum.Enum):
    """Life cycle of a :class:`Channel`; it only ever moves forward."""

    OPEN = "open"
    LOST = "lost"  # closed or reset by the peer, or found dead
    CLOSED = "closed"  # closed by this end


_T = TypeVar("_T")


class _Read(Protocol):
    """Type of the bound ``ReceiveSide.read``."""

    def __call__(
        self, parse: Callable[[FrameBuffer], _T | NeedData], wanted: int
    ) -> Awaitable[_T]: ...


class _ReadSlow(Protocol):
    """Type of the bound ``ReceiveSide.read_slow``."""

    def __call__(
        self,
        parse: Callable[[FrameBuffer], _T | NeedData],
        wanted: int,
        *,
        bulk: int = 0,
    ) -> Awaitable[_T]: ...


class _TryRead(Protocol):
    """Type of the bound ``ReceiveSide.try_read``."""

    def __call__(
        self, parse: Callable[[FrameBuffer], _T | NeedData]
    ) -> _T | NeedData: ...


class _Send(Protocol):
    """Type of the bound ``SendQueue.send`` and ``SendQueue.send_slow``."""

    def __call__(
        self, data: bytes | bytearray | memoryview, messages: int = 1
    ) -> Awaitable[None]: ...


class _TrySend(Protocol):
    """Type of the bound ``SendQueue.try_send``."""

    def __call__(
        self, data: bytes | bytearray | memoryview, messages: int = 1
    ) -> bool: ...


class Channel:
    """One connection: owns the stream, its receive side and its send queue.

    Parameters
    ----------
    stream
        The connected byte stream (socket, TLS or in-memory).
    who
        Describes the connection in log and error messages.
    max_line_length
        Bound for terminated reads.
    log
        Where to log.
    on_down
        Synchronous hook called exactly once, when the channel stops being open.
    """

    # Declared for type checkers (set in ``__init__``): the two halves, and
    # their hot paths bound once, so a message costs no extra call.
    sender: SendQueue
    receiver: ReceiveSide
    read: _Read
    read_slow: _ReadSlow
    read_some: Callable[[int], Awaitable[bytes]]
    try_read: _TryRead
    try_read_text: Callable[[bytes, str, bytes | None], str | NeedData]
    try_read_into: Callable[[memoryview, int], bool]
    send: _Send
    try_send: _TrySend
    send_slow: _Send
    drain: Callable[[], Awaitable[None]]
    wait_flushed: Callable[[], Awaitable[None]]

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        who: str,
        max_line_length: int,
        log: logging.Logger,
        on_down: Callable[[Channel], None] | None = None,
    ) -> None:
        self.stream = stream
        self.who = who
        self.log = log
        self.state: ChannelState = ChannelState.OPEN
        self.reason: str = ""
        self._on_down = on_down
        sender = self.sender = SendQueue(
            stream, down_error=self._down_error, on_lost=self._lost
        )
        receiver = self.receiver = ReceiveSide(
            stream,
            who=who,
            max_line_length=max_line_length,
            on_lost=self._lost,
            before_wait=sender.flush_before_waiting,
        )
        self.frames: FrameBuffer = receiver.frames
        # The hot paths, bound once: no extra call per message.
        self.read = receiver.read
        self.read_slow = receiver.read_slow
        self.read_some = receiver.read_some
        self.try_read = receiver.try_read
        self.try_read_text = receiver.try_read_text
        self.try_read_into = receiver.try_read_into
        self.send = sender.send
        self.try_send = sender.try_send
        self.send_slow = sender.send_slow
        self.drain = sender.drain
        self.wait_flushed = sender.wait_flushed

    @property
    def is_open(self) -> bool:
        """True until the peer leaves or this end closes."""
        return self.state is ChannelState.OPEN

    # -- counters (read by the owner's ``stats``) ------------------------------

    @property
    def bytes_received(self) -> int:
        """Bytes received on this connection."""
        return self.receiver.bytes_received

    @property
    def messages_received(self) -> int:
        """Messages (reads) delivered on this connection."""
        return self.receiver.messages_received

    @property
    def last_received(self) -> float | None:
        """``time.monotonic()`` when bytes last arrived, or None."""
        return self.receiver.last_received

    @property
    def bytes_sent(self) -> int:
        """Bytes handed to the OS on this connection."""
        return self.sender.bytes_sent

    @property
    def messages_sent(self) -> int:
        """Messages written on this connection."""
        return self.sender.messages_sent

    # -- life cycle -------------------------------------------------------------

    def _down_error(self) -> ConnectionError:
        if self.state is ChannelState.CLOSED:
            return NotConnectedError(prefixed(self.who, self.reason))
        return ConnectionLostError(prefixed(self.who, self.reason))

    def _lost(self, reason: str) -> None:
        self._go_down(ChannelState.LOST, reason)

    def _go_down(self, state: ChannelState, reason: str) -> None:
        """Record the end of the connection (first call wins) and wake waiters."""
        if self.state is not ChannelState.OPEN:
            return
        self.state = state
        self.reason = reason
        self.receiver.shut(reason, by_this_end=state is ChannelState.CLOSED)
        self.sender.shut(lost=state is ChannelState.LOST)
        if self._on_down is not None:
            self._on_down(self)

    def attach(self, task_group: Spawner) -> None:
        """Give the channel the task group of its connection (for the flusher).

        The flusher task is started there only once something is queued
        that could not be sent directly.
        """
        self.sender.attach(task_group)

    async def pump(self, receive_timeout: float | None = None) -> None:
        """Watch the connection while nobody reads, until it ends.

        Run this in a task owned by the client or server. It never raises
        (except cancellation of the task itself). When the peer left, it
        closes the stream before returning.

        Parameters
        ----------
        receive_timeout
            If set, declare the connection lost when no bytes arrive for this
            many seconds.
        """
        try:
            await self.receiver.pump(receive_timeout)
        finally:
            self._go_down(ChannelState.LOST, "the connection was lost")
            if self.state is ChannelState.LOST:
                with anyio.CancelScope(shield=True):
                    await close_stream(self.stream)

    async def flush_loop(self) -> None:
        """Run the flusher now (normally it is started on demand; see attach)."""
        await self.sender.flush_loop()

    async def aclose(
        self, reason: str = "the connection was closed by this end"
    ) -> None:
        """Close the connection from this end; idempotent.

        Messages already queued are sent first, for at most
        :data:`CLOSE_FLUSH_TIMEOUT` seconds (a peer that does not read cannot
        hold up the close).
        """
        self._go_down(ChannelState.CLOSED, reason)
        with anyio.CancelScope(shield=True):
            if self.sender.unflushed:
                with anyio.move_on_after(CLOSE_FLUSH_TIMEOUT):
                    await self.sender.wait_flushed()
            await close_stream(self.stream)
