"""The send side of a connection: a bounded queue of whole messages.

Rationale
---------
Writes append the whole message to a bounded queue in one synchronous step
(so concurrent writers never interleave, and a write cancelled while it
waits for room queued nothing), and a *flusher* task sends the queue with as
few ``send`` calls as possible. Writers wait while the queue is full, so a
peer that stops reading stalls them: the model of asyncio's
``StreamWriter.write`` + ``drain``, and about ten times faster than one
``send`` (and one scheduler round trip) per message. :meth:`SendQueue.drain`
waits until everything queued has been handed to the OS.

On a plain TCP stream, three cases skip the flusher and hand data to the OS
synchronously, from the calling task (see :mod:`anytcpip._direct_send`),
when nothing is queued or being sent: a large message (batching gains it
nothing); the queue itself when a reader is about to wait for data
(:meth:`SendQueue.flush_before_waiting`, called by the receive side: the
peer may be waiting for what is queued, so a request leaves without waiting
for the flusher to be scheduled); and the first message written after a
reader waited (a reply, or the next request: request/response traffic, where
waking the flusher would cost a task switch and batch nothing). Writes in a
burst, with no read waiting in between, are still queued and batched. Only
what the OS does not take at once is queued (on trio; on asyncio and uvloop
the transport keeps it, and what is queued behind it is handed to the
transport once it has sent it, from the transport's ``resume_writing``,
without the flusher: one task switch per large message, the writer's, as
anyio's own send). Being synchronous, that step cannot interleave or be
cancelled part-way either. Every :data:`DIRECT_SENDS_PER_CHECKPOINT` large
messages, a write yields to the scheduler once (before sending anything), so
a writer whose direct sends never block still lets other tasks run and can
be cancelled; queued writes yield when the queue is full.

The flusher task is started only when something is queued that could not be
sent directly, so a connection that only reads, or whose messages all leave
directly, costs no task for it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol, cast

import anyio
import anyio.abc
import anyio.lowlevel

from ._direct_send import direct_sender

__all__ = [
    "DIRECT_SENDS_PER_CHECKPOINT",
    "DIRECT_SEND_SIZE",
    "SEND_HIGH_WATER_MARK",
    "SendQueue",
    "Spawner",
]

SEND_HIGH_WATER_MARK = 64 * 1024
"""Writers wait while this many bytes are queued and not yet sent."""

DIRECT_SEND_SIZE = 16 * 1024
"""Messages this large skip the queue when it is empty: batching gains them nothing."""

DIRECT_SENDS_PER_CHECKPOINT = 16
"""Large messages sent directly in a row before one yields to the scheduler."""


class Spawner(Protocol):
    """What background tasks start in: an anyio task group, or a ``TaskSet``.

    (:class:`~anytcpip._asyncio_task.TaskSet`: a plain client's bare tasks,
    on asyncio.)
    """

    def start_soon(
        self,
        func: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
        name: object = None,
    ) -> object:
        """Start ``func(*args)`` in a new task."""
        ...


class SendQueue:
    """Send whole messages over one stream, in order, never interleaved.

    Parameters
    ----------
    stream
        The connected byte stream.
    down_error
        Returns the error to raise once the connection is down.
    on_lost
        Called (synchronously) with the reason when sending finds the
        connection gone; the owner records it and calls :meth:`shut`.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        down_error: Callable[[], ConnectionError],
        on_lost: Callable[[str], None],
    ) -> None:
        self.stream = stream
        self._down_error = down_error
        self._on_lost = on_lost
        self._open = True
        self._lost = False  # down because the connection was lost
        self._out: list[bytes | memoryview] = []  # queued messages, not yet sent
        self._queued = 0  # bytes in ``_out``
        self._sending = False  # the flusher is in stream.send()
        self._direct = direct_sender(stream)
        # The transport says when a direct send's backlog has drained (hooked
        # at the first backlog: 3 % of a connect/close cycle otherwise).
        self._drains = False
        # A direct send left bytes in the transport's buffer: the flusher
        # waits for them to drain (so drain() and close() cover them).
        self._backlog = False
        # Queued or buffered bytes were dropped, unsent, when the connection
        # went down: drain() then raises instead of returning.
        self._dropped = False
        self._direct_sends = DIRECT_SENDS_PER_CHECKPOINT
        # A reader waited for data since the last write: the next message is
        # probably a reply or a request the peer waits for, so it is sent
        # directly instead of waking the flusher (a task switch for nothing).
        self._after_wait = False
        self._task_group: Spawner | None = None
        self._flusher_started = False
        self._flusher_done = False
        self._flush_waiter: anyio.Event | None = None
        self._writers_waiter: anyio.Event | None = None
        self._flushed: anyio.Event | None = None
        self.bytes_sent: int = 0
        self.messages_sent: int = 0

    # -- life cycle -------------------------------------------------------------

    def attach(self, task_group: Spawner) -> None:
        """Give the queue the task group its flusher will run in, when needed."""
        self._task_group = task_group
        if self._needs_flusher():
            self._wake_flusher()

    def shut(self, *, lost: bool) -> None:
        """Record that the connection is down; wake writers and the flusher.

        If ``lost`` is False (this end closed), the flusher still sends what
        is queued (the owner bounds how long it waits for that).
        """
        if not self._open:
            return
        self._open = False
        self._lost = lost
        self._wake_flusher()
        self._wake_writers()

    # -- writing ----------------------------------------------------------------

    async def send(
        self, data: bytes | bytearray | memoryview, messages: int = 1
    ) -> None:
        """Send one message; concurrent writers never interleave.

        The message is appended to the queue whole, in one synchronous step,
        and the flusher task sends the queue in as few calls as possible; a
        message of :data:`DIRECT_SEND_SIZE` bytes or more is instead handed
        to the OS at once if nothing is queued (see :meth:`_send_direct`).
        While the queue holds :data:`SEND_HIGH_WATER_MARK` bytes or more,
        writers wait (backpressure, like ``StreamWriter.drain``). A write
        cancelled while waiting queued nothing; a queued message is sent
        whole unless the connection goes down.
        """
        if not self.try_send(data, messages):
            await self.send_slow(data, messages)

    def try_send(self, data: bytes | bytearray | memoryview, messages: int = 1) -> bool:
        """Send or queue one message now, unless that needs a wait; see :meth:`send`.

        The synchronous part of :meth:`send`, for the hot paths: returns
        True when the message was handed to the OS or queued, False when
        it was neither (a message of :data:`DIRECT_SEND_SIZE` bytes or
        more, or a full queue) and the caller must ``await``
        :meth:`send_slow` with it. A coroutine per message cost more than
        the rest of a direct send (benchmark C on uvloop).

        Raises
        ------
        ConnectionError
            If the connection is down (nothing is queued).
        """
        if not self._open:
            raise self._down_error()
        if self._after_wait:
            # The first write since a reader waited: request/response, not
            # a burst, so batching gains nothing. (A read that waited was a
            # checkpoint, so this cannot starve other tasks.)
            self._after_wait = False
            if self._send_direct(data):
                self.messages_sent += messages
                return True
        if len(data) >= DIRECT_SEND_SIZE or self._queued >= SEND_HIGH_WATER_MARK:
            return False
        self._enqueue(data, messages)
        return True

    async def send_slow(
        self, data: bytes | bytearray | memoryview, messages: int = 1
    ) -> None:
        """:meth:`send` for a message that :meth:`try_send` did not take."""
        if len(data) >= DIRECT_SEND_SIZE:
            self._direct_sends -= 1
            if self._direct_sends <= 0:
                # A writer whose direct sends never block must still let
                # other tasks run (and be cancellable): nothing is sent yet.
                self._direct_sends = DIRECT_SENDS_PER_CHECKPOINT
                await anyio.lowlevel.checkpoint()
                if not self._open:
                    raise self._down_error()
            if self._send_direct(data):
                self.messages_sent += messages
                return
        if self._queued >= SEND_HIGH_WATER_MARK:
            while self._queued >= SEND_HIGH_WATER_MARK:
                waiter = self._writers_waiter
                if waiter is None:
                    waiter = self._writers_waiter = anyio.Event()
                await waiter.wait()
                if not self._open:
                    raise self._down_error()
            # The queue may have been handed over whole meanwhile (by the
            # transport, see _transport_drained): then this one can follow
            # it directly, instead of waiting in the queue for a flusher.
            if self._send_direct(data):
                self.messages_sent += messages
                return
        self._enqueue(data, messages)

    def _enqueue(self, data: bytes | bytearray | memoryview, messages: int) -> None:
        """Append a message to the queue, and see that it will be sent."""
        self.messages_sent += messages
        if data:
            # Kept as it is, not copied (bytes are immutable); joined when flushed.
            self._out.append(data if type(data) is bytes else bytes(data))
            self._queued += len(data)
            if self._needs_flusher():
                self._wake_flusher()

    def _send_direct(self, data: bytes | bytearray | memoryview) -> bool:
        """Hand ``data`` to the OS now, synchronously; queue what it does not take.

        Possible only on a plain TCP stream with nothing queued or being sent
        (else ``data`` would overtake it). Synchronous, so it cannot
        interleave with another writer or be cancelled part-way. Returns
        False, having done nothing, if it is not possible now.
        """
        direct = self._direct
        if direct is None or self._out or self._sending:
            return False
        if self._backlog:
            if direct.backlog():
                return False
            self._transport_drained()  # it drained, and nothing is queued
        try:
            sent = direct.send(data)
        except OSError:
            return False  # left to the flusher, whose send reports the error
        if not sent:
            return False
        self.bytes_sent += sent
        if sent < len(data):
            rest = memoryview(data)[sent:]
            self._out.append(rest if type(data) is bytes else bytes(rest))
            self._queued = len(rest)
            self._wake_flusher()
        elif direct.backlog():
            # The transport sends the rest on its own, and says when it has
            # (_transport_drained); the flusher waits for it only when asked
            # to (drain, close), or where the transport cannot say.
            self._backlog = True
            if not self._drains:
                self._drains = direct.on_drained(self._transport_drained)
                if not self._drains:
                    self._wake_flusher()
        return True

    def _needs_flusher(self) -> bool:
        """Whether anything queued or buffered needs the flusher to be sent.

        Not what is behind a direct send's backlog, nor the backlog itself,
        where the transport says when it has drained: it is then handed
        over without waking a task (:meth:`_transport_drained`).
        """
        if self._backlog and self._drains:
            direct = self._direct
            if direct is not None and direct.backlog():
                return False
        return self._unflushed()

    def _transport_drained(self) -> None:
        """Hand the transport what is queued: its buffer is empty again.

        Called from the event loop (asyncio and uvloop): the transport has
        sent the rest of a direct send. What was queued behind it is handed
        to the transport now, as the flusher would, but without a task, so
        that a writer waiting for room is the only task woken: one task
        switch per large message, as anyio's own send, where waking the
        flusher cost two (benchmark A).
        """
        if not self._backlog:
            return  # the flusher's own send, which anyio waits for
        self._backlog = False
        # If the transport is closing, the queue stays: the connection is
        # going down, and its end (from a task, not from this callback)
        # drops or sends it.
        self._send_queue_now()

    def _send_queue_now(self) -> None:
        """Hand the whole queue to the OS now, unless the flusher is sending.

        What cannot be sent directly stays queued, as it was.
        """
        out = self._out
        if out and not self._sending:
            data = out[0] if len(out) == 1 else b"".join(out)
            queued = self._queued
            out.clear()
            self._queued = 0
            if not self._send_direct(data):
                out.append(data)  # as it was
                self._queued = queued
                return
            self._wake_writers()
        if self._flushed is not None and not self._unflushed():
            self._flushed.set()

    def flush_before_waiting(self) -> None:
        """Send the queue now: a reader is about to wait, maybe for a reply to it.

        Called by the receive side. Without this, a request would leave only
        once the flusher task is scheduled; sending it from the reader saves
        that round trip.
        """
        self._after_wait = True
        if self._out and not self._sending:
            self._send_queue_now()  # what it cannot send, the flusher sends

    def _unflushed(self) -> bool:
        """Whether anything is queued, being sent, or buffered by the transport."""
        return bool(self._out) or self._sending or self._backlog

    @property
    def unflushed(self) -> bool:
        """Whether anything is queued, being sent, or buffered by the transport."""
        return self._unflushed()

    async def drain(self) -> None:
        """Wait until every queued message has been handed to the OS.

        Raises
        ------
        ConnectionError
            If the connection goes down first with data still queued.
        """
        while self._unflushed():
            if self._lost:
                raise self._down_error()
            flushed = self._flushed_event()
            await flushed.wait()
        if self._dropped:  # the connection went down with data unsent
            raise self._down_error()
        await anyio.lowlevel.checkpoint()

    async def wait_flushed(self) -> None:
        """Wait until nothing is queued or being sent (whatever the outcome)."""
        while self._unflushed():
            flushed = self._flushed_event()
            await flushed.wait()

    def _flushed_event(self) -> anyio.Event:
        """Return the event set when the queue empties, shared by all waiters."""
        flushed = self._flushed
        if flushed is None or flushed.is_set():
            flushed = self._flushed = anyio.Event()
        # Someone must send it, or wait for the transport's buffer to drain
        # (a direct send's backlog does not wake the flusher), or give up.
        self._wake_flusher()
        return flushed

    def _wake_flusher(self) -> None:
        if not self._flusher_started:
            task_group = self._task_group
            if task_group is None:
                return  # started by attach()
            if self._lost or not self._unflushed():
                self._abandon()  # nothing to send, or nowhere to send it
                return
            self._flusher_started = True
            try:
                task_group.start_soon(self._flush)
            except RuntimeError:  # the task group is closing: nothing will send
                self._flusher_started = False
                self._abandon()
            return
        if self._flusher_done:
            self._abandon()
            return
        waiter = self._flush_waiter
        if waiter is not None:
            self._flush_waiter = None
            waiter.set()

    def _wake_writers(self) -> None:
        waiter = self._writers_waiter
        if waiter is not None:
            self._writers_waiter = None
            waiter.set()

    def _abandon(self) -> None:
        """Nothing will send the queue any more: drop it and release waiters."""
        if self._open:
            return  # still open: a flusher will be started when attached
        if self._out or self._backlog:
            self._dropped = True
        self._out.clear()
        self._queued = 0
        self._backlog = False
        if self._flushed is not None:
            self._flushed.set()

    async def flush_loop(self) -> None:
        """Run the flusher in the calling task (unless it already runs).

        Normally the flusher is started on demand, in the task group given
        to :meth:`attach`; this runs it eagerly instead.
        """
        if self._flusher_started:
            return
        self._flusher_started = True
        await self._flush()

    async def _flush(self) -> None:
        """Send queued messages until the connection is down and nothing is queued."""
        out = self._out
        in_flight = False  # stream.send() has not returned yet
        try:
            while True:
                while not out and not self._backlog:
                    if not self._open:
                        return
                    waiter = self._flush_waiter = anyio.Event()
                    await waiter.wait()
                if self._lost:
                    return
                # With only a backlog, data is b"": send() then just waits
                # for the transport's buffer to drain.
                data = out[0] if len(out) == 1 else b"".join(out)
                out.clear()
                self._queued = 0
                self._backlog = False
                self._wake_writers()
                self._sending = in_flight = True
                try:
                    # A memoryview (the rest of a partial direct send) is
                    # fine: anyio's streams send any bytes-like object.
                    await self.stream.send(cast(bytes, data))
                finally:
                    self._sending = False
                in_flight = False
                self.bytes_sent += len(data)
                if not self._unflushed() and self._flushed is not None:
                    self._flushed.set()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
            cause = exc.__cause__ or exc
            self._on_lost(f"the connection was lost: {cause!r}")
        finally:
            self._flusher_done = True
            if out or self._backlog or in_flight:
                self._dropped = True
            out.clear()
            self._queued = 0
            self._sending = False
            self._backlog = False
            self._flush_waiter = None
            if self._flushed is not None:
                self._flushed.set()
