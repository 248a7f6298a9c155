"""Delivering a correlator's unsolicited messages: :class:`UnsolicitedQueue`.

Rationale
---------
A :class:`~anytcpip.Correlator` reads every message; those that are not
replies (telemetry, events) are handed to an :class:`UnsolicitedQueue`. It
either awaits the ``on_unsolicited`` callback (logging what the callback
raises) or puts the message in a bounded memory object stream that
:meth:`~anytcpip.Correlator.unsolicited` iterates over. When that queue is
full, the ``"drop_oldest"`` policy drops the oldest queued message (counted,
and logged once each time the queue fills up) so replies never wait for a
consumer; ``"wait"`` makes the reader wait for room.

The correlator tells the queue when no more messages will come
(:meth:`~UnsolicitedQueue.end`) and, if its reader failed, why
(:attr:`~UnsolicitedQueue.failure`): iteration then delivers what is queued
and ends, or raises a ``ConnectionLostError`` chained from the failure.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, Literal, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._exceptions import ConnectionLostError
from ._requester import shown

__all__ = ["UnsolicitedOverflow", "UnsolicitedQueue"]

_M = TypeVar("_M")

UnsolicitedOverflow = Literal["drop_oldest", "wait"]


class UnsolicitedQueue(Generic[_M]):
    """Where a correlator's unsolicited messages go: a callback or a queue.

    Parameters
    ----------
    on_unsolicited
        Async callable awaited for each message instead of queueing it; None
        queues the messages.
    max_size
        Size of the queue.
    overflow
        What :meth:`put` does when the queue is full.
    log
        Where the callback's failures and the queue-full warning go.
    describe
        Returns the name of the connection, for the messages.
    """

    def __init__(
        self,
        *,
        on_unsolicited: Callable[[_M], Awaitable[object]] | None,
        max_size: int,
        overflow: UnsolicitedOverflow,
        log: logging.Logger,
        describe: Callable[[], str],
    ) -> None:
        self.callback = on_unsolicited
        """The ``on_unsolicited`` callback, or None if messages are queued."""
        self.dropped = 0
        """Messages dropped because the queue was full."""
        self.failure: BaseException | None = None
        """Why the correlator's reader failed, raised by the iteration."""
        self._max_size = max_size
        self._overflow = overflow
        self._log = log
        self._describe = describe
        self._send: MemoryObjectSendStream[_M] | None = None
        self._receive: MemoryObjectReceiveStream[_M] | None = None
        self._full = False

    def open(self) -> None:
        """Create the queue (unless there is a callback)."""
        if self.callback is None:
            self._send, self._receive = anyio.create_memory_object_stream[Any](
                self._max_size
            )

    async def put(self, message: _M) -> None:
        """Hand ``message`` to the callback, or queue it by the overflow policy."""
        callback = self.callback
        if callback is not None:
            try:
                await callback(message)
            except Exception:
                self._log.exception("on_unsolicited failed for %s", shown(message))
            return
        send = self._send
        assert send is not None and self._receive is not None
        if self._overflow == "wait":
            await send.send(message)
            return
        try:
            send.send_nowait(message)
            self._full = False
            return
        except anyio.WouldBlock:
            pass
        # Full: drop the oldest queued message to make room.
        try:
            self._receive.receive_nowait()
        except anyio.WouldBlock:  # pragma: no cover - emptied meanwhile
            pass
        self.dropped += 1
        if not self._full:
            self._full = True
            self._log.warning(
                "%s: the unsolicited queue is full (%d messages): dropping the "
                "oldest (%d dropped so far)",
                self._describe(),
                self._max_size,
                self.dropped,
            )
        send.send_nowait(message)

    def end(self) -> None:
        """No more messages: iteration ends once the queued ones are taken."""
        if self._send is not None:
            self._send.close()

    def close(self) -> None:
        """Drop the queued messages: iteration ends at once."""
        if self._receive is not None:
            self._receive.close()

    def __aiter__(self) -> AsyncIterator[_M]:
        return _UnsolicitedIterator(self)

    async def _next(self) -> _M:
        receive = self._receive
        if receive is None:
            raise StopAsyncIteration
        try:
            return await receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            failure = self.failure
            if failure is not None:
                raise ConnectionLostError(
                    f"{self._describe()}: the Correlator's reader failed: {failure!r}"
                ) from failure
            raise StopAsyncIteration from None


class _UnsolicitedIterator(Generic[_M]):
    """Async iterator over the messages of an :class:`UnsolicitedQueue`."""

    def __init__(self, queue: UnsolicitedQueue[_M]) -> None:
        self._queue = queue

    def __aiter__(self) -> _UnsolicitedIterator[_M]:
        return self

    async def __anext__(self) -> _M:
        return await self._queue._next()
