"""One live connection: a byte stream, its receive pump and its framing.

Rationale
---------
A peer that closes or resets must be noticed at once even when the
application is not reading, without polling. So each connection has a
*receive pump*: a task (owned by the client's or server's task group) that
waits in ``stream.receive()`` and feeds what arrives into a sans-IO
:class:`~anytcpip._framing.FrameBuffer`. The pump sees end of stream or a
reset the moment the OS reports it, and an idle connection costs no wake-ups
because the pump just sits in one receive call.

Memory stays bounded: the pump stops receiving once the buffer holds a
high-water mark (or whatever the current read needs, if more) and waits for
the application to consume, so the sender feels TCP backpressure.

Reads parse from the buffer synchronously and only wait (on an event) when
they need more data. A read cancelled while waiting consumed nothing, so it
loses nothing. Reads are guarded by :class:`anyio.ResourceGuard`, so a second
concurrent reader fails at once with :class:`anyio.BusyResourceError`.

Writes append the whole message to a bounded send buffer in one synchronous
step (so concurrent writers never interleave, and a write cancelled while it
waits for room queued nothing), and a *flusher* task sends the buffer with as
few ``send`` calls as possible. Writers wait while the buffer is full, so a
peer that stops reading stalls them: the model of asyncio's
``StreamWriter.write`` + ``drain``, and about ten times faster than one
``send`` (and one scheduler round trip) per message. :meth:`Channel.drain`
waits until everything queued has been handed to the OS.

On a plain TCP stream, two cases skip the flusher and hand data to the OS
synchronously, from the calling task (see :mod:`anytcpip._direct_send`),
when nothing is queued or being sent: a large message (batching gains it
nothing), and the queue itself when a reader is about to wait for data (the
peer may be waiting for what is queued: a request leaves without waiting for
the flusher to be scheduled). Only what the OS does not take at once is
queued. Being synchronous, that step cannot interleave or be cancelled
part-way either. Every :data:`DIRECT_SENDS_PER_CHECKPOINT` large messages, a
write yields to the scheduler once (before sending anything), so a writer
whose direct sends never block still lets other tasks run and can be
cancelled; queued writes yield when the queue is full.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable
from typing import TypeVar, cast

import anyio
import anyio.abc
import anyio.lowlevel

from ._constants import RECEIVE_CHUNK_SIZE
from ._direct_send import direct_sender
from ._exceptions import ConnectionLostError, IncompleteReadError, NotConnectedError
from ._framing import NEED_DATA, FrameBuffer, NeedData
from ._streams import close_stream

__all__ = ["Channel"]

HIGH_WATER_MARK = 2 * RECEIVE_CHUNK_SIZE
"""The pump stops receiving once this much is buffered (unless a read needs more)."""

LOW_WATER_MARK = HIGH_WATER_MARK // 2
"""A stopped pump resumes once reads bring the buffer below this."""

SEND_HIGH_WATER_MARK = 64 * 1024
"""Writers wait while this many bytes are queued and not yet sent."""

CLOSE_FLUSH_TIMEOUT = 2.0
"""Seconds ``aclose`` spends sending what is still queued before closing."""

READS_PER_CHECKPOINT = 1024
"""Reads satisfied from the buffer in a row before one yields to the scheduler."""

DIRECT_SEND_SIZE = 16 * 1024
"""Messages this large skip the queue when it is empty: batching gains them nothing."""

DIRECT_SENDS_PER_CHECKPOINT = 16
"""Large messages sent directly in a row before one yields to the scheduler."""

_T = TypeVar("_T")


class ChannelState(enum.Enum):
    """Life cycle of a :class:`Channel`; it only ever moves forward."""

    OPEN = "open"
    LOST = "lost"  # closed or reset by the peer, or found dead
    CLOSED = "closed"  # closed by this end


_OPEN = ChannelState.OPEN


class Channel:
    """One connection: owns the stream, buffers what arrives, sends messages.

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
        self.frames = FrameBuffer(max_line_length, who)
        self.state = ChannelState.OPEN
        self.reason = ""
        self._on_down = on_down
        self._pump_scope = anyio.CancelScope()
        self._data_waiter: anyio.Event | None = None
        self._space_waiter: anyio.Event | None = None
        self._wanted = 0
        self._reading = False  # a reader is waiting for data
        self._fast_reads = READS_PER_CHECKPOINT
        self._out: list[bytes | memoryview] = []  # queued messages, not yet sent
        self._queued = 0  # bytes in ``_out``
        self._sending = False  # the flusher is in stream.send()
        self._direct = direct_sender(stream)
        # A direct send left bytes in the transport's buffer: the flusher
        # waits for them to drain (so drain() and close() cover them).
        self._backlog = False
        self._direct_sends = DIRECT_SENDS_PER_CHECKPOINT
        self._flush_waiter: anyio.Event | None = None
        self._writers_waiter: anyio.Event | None = None
        self._flushed: anyio.Event | None = None
        self._eof_delivered = False
        self.bytes_received = 0
        self.bytes_sent = 0
        self.messages_received = 0
        self.messages_sent = 0
        self.last_received: float | None = None  # time.monotonic()
        self.counted = False  # added to the owner's totals

    @property
    def is_open(self) -> bool:
        """True until the peer leaves or this end closes."""
        return self.state is ChannelState.OPEN

    # -- life cycle -----------------------------------------------------------

    def _go_down(self, state: ChannelState, reason: str) -> None:
        """Record the end of the connection (first call wins) and wake waiters."""
        if self.state is not ChannelState.OPEN:
            return
        self.state = state
        self.reason = reason
        self._fast_reads = 0  # reads now go through read_slow's checks
        self._pump_scope.cancel()
        self._wake_reader()
        if self._space_waiter is not None:
            self._space_waiter.set()
            self._space_waiter = None
        self._wake_flusher()
        self._wake_writers()
        if self._on_down is not None:
            self._on_down(self)

    async def pump(self, receive_timeout: float | None = None) -> None:
        """Receive into the buffer until the connection ends; then close the stream.

        Run this in a task owned by the client or server. It never raises
        (except cancellation of the task itself).

        Parameters
        ----------
        receive_timeout
            If set, declare the connection lost when no bytes arrive for this
            many seconds (not counting time this end spends not reading
            because its buffer is full).
        """
        stream = self.stream
        frames = self.frames
        reason = ""
        watchdog = anyio.CancelScope()
        try:
            with self._pump_scope, watchdog:
                while True:
                    if len(frames) >= max(HIGH_WATER_MARK, self._wanted):
                        watchdog.deadline = math.inf
                        while len(frames) >= max(HIGH_WATER_MARK, self._wanted):
                            waiter = self._space_waiter = anyio.Event()
                            await waiter.wait()
                    if receive_timeout is not None:
                        watchdog.deadline = anyio.current_time() + receive_timeout
                    data = await stream.receive(RECEIVE_CHUNK_SIZE)
                    self.bytes_received += len(data)
                    self.last_received = time.monotonic()
                    frames.feed(data)
                    self._wake_reader()
            if watchdog.cancelled_caught:
                reason = (
                    f"no data received for {receive_timeout} s "
                    "(heartbeat_timeout); the connection is declared lost"
                )
        except anyio.EndOfStream:
            reason = "the connection was closed by the peer"
        except anyio.ClosedResourceError:
            reason = "the connection was closed by this end"
        except anyio.BrokenResourceError as exc:
            reason = f"the connection was lost: {exc.__cause__ or exc!r}"
        except OSError as exc:
            reason = f"the connection was lost: {exc!r}"
        finally:
            if not frames.eof:
                frames.feed(b"")
            self._wake_reader()
            self._go_down(ChannelState.LOST, reason or "the connection was lost")
            if self.state is ChannelState.LOST:
                with anyio.CancelScope(shield=True):
                    await close_stream(self.stream)

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
            if self._unflushed():
                with anyio.move_on_after(CLOSE_FLUSH_TIMEOUT):
                    while self._unflushed():
                        flushed = self._flushed_event()
                        await flushed.wait()
            await close_stream(self.stream)

    # -- reading --------------------------------------------------------------

    def _wake_reader(self) -> None:
        waiter = self._data_waiter
        if waiter is not None:
            self._data_waiter = None
            waiter.set()

    def _raise_if_unreadable(self) -> None:
        if self.state is ChannelState.CLOSED:
            raise NotConnectedError(f"{self.who}: {self.reason}")
        if self._eof_delivered:
            raise ConnectionLostError(f"{self.who}: {self.reason}")

    async def read(
        self, parse: Callable[[FrameBuffer], _T | NeedData], wanted: int
    ) -> _T:
        """Run ``parse`` on the buffer, waiting for data until it returns a frame.

        When the frame is already buffered this returns without a scheduler
        round trip (at most :data:`READS_PER_CHECKPOINT` times in a row, then
        it yields once, so other tasks run and cancellation is delivered).

        Parameters
        ----------
        parse
            Returns a frame or ``NEED_DATA``; may raise framing errors. It
            consumes the frame only when it returns it (or raises after
            consuming a bad message). At end of stream it must return or
            raise, never ``NEED_DATA``.
        wanted
            How many bytes the frame may need buffered (lets the pump go past
            its high-water mark for big frames).

        Raises
        ------
        NotConnectedError
            This end closed the connection.
        ConnectionLostError
            The peer left and nothing (more) is buffered.
        anyio.BusyResourceError
            Another task is reading.
        """
        result = self.try_read(parse)
        if result is not NEED_DATA:
            return result
        return await self.read_slow(parse, wanted)

    def try_read(self, parse: Callable[[FrameBuffer], _T | NeedData]) -> _T | NeedData:
        """Parse a frame that is already buffered, without waiting.

        Returns ``NEED_DATA`` when the frame is not buffered yet, or when the
        caller must go through :meth:`read_slow` instead (another reader is
        waiting, the connection is not open, or it is time to yield to the
        scheduler). Synchronous: nothing can interleave or be cancelled.
        """
        # ``_fast_reads`` is 0 while a reader waits and once the connection
        # is down, so one comparison guards the fast path.
        if self._fast_reads <= 0:
            return NEED_DATA
        result = parse(self.frames)
        if result is not NEED_DATA:
            self._consumed_fast()
        return result

    def try_read_text(
        self, terminator: bytes, encoding: str, skip: bytes | None
    ) -> str | NeedData:
        """:meth:`try_read` specialised for ``FrameBuffer.next_text`` (hot path)."""
        if self._fast_reads <= 0:
            return NEED_DATA
        result = self.frames.next_text(terminator, encoding, skip)
        if result is not NEED_DATA:
            # _consumed_fast(), inlined: this is the hottest path of all.
            self._fast_reads -= 1
            self.messages_received += 1
            if self._space_waiter is not None:
                self._release_space()
        return result

    def try_read_into(self, obj: object, size: int) -> bool:
        """:meth:`try_read` specialised for ``FrameBuffer.next_into`` (hot path).

        Returns True if ``obj`` was filled from the buffer, False if the
        caller must go through :meth:`read_slow`.
        """
        if self._fast_reads <= 0 or self.frames.next_into(obj, size) is NEED_DATA:
            return False
        self._consumed_fast()
        return True

    def _consumed_fast(self) -> None:
        """Account for a message read from the buffer without waiting."""
        self._fast_reads -= 1
        self.messages_received += 1
        if self._space_waiter is not None:
            self._release_space()

    def _release_space(self) -> None:
        waiter = self._space_waiter
        if waiter is not None and len(self.frames) < LOW_WATER_MARK:
            self._space_waiter = None
            waiter.set()

    async def read_slow(
        self, parse: Callable[[FrameBuffer], _T | NeedData], wanted: int
    ) -> _T:
        if self._reading:
            raise anyio.BusyResourceError("reading from")
        self._reading = True
        yield_first = self._fast_reads <= 0
        self._fast_reads = 0  # no fast reads while this one is in progress
        try:
            self._raise_if_unreadable()
            frames = self.frames
            if yield_first:
                await anyio.lowlevel.checkpoint()
                self._raise_if_unreadable()
            while True:
                if frames.eof and not len(frames):
                    # Nothing left: b"" once for read/readline, and a
                    # ConnectionError for reads that need a whole message.
                    self._eof_delivered = True
                    try:
                        result = parse(frames)
                    except IncompleteReadError as exc:
                        raise ConnectionLostError(f"{self.who}: {self.reason}") from exc
                    assert result is not NEED_DATA
                    return result
                result = parse(frames)
                if result is not NEED_DATA:
                    self.messages_received += 1
                    self._release_space()
                    return result
                if self._out and not self._sending:
                    self._flush_before_waiting()
                waiter = anyio.Event()
                self._data_waiter = waiter
                self._wanted = wanted
                if self._space_waiter is not None:
                    self._space_waiter.set()
                    self._space_waiter = None
                try:
                    await waiter.wait()
                finally:
                    self._data_waiter = None
                    self._wanted = 0
                self._raise_if_unreadable()
        finally:
            self._reading = False
            if self.state is _OPEN:
                self._fast_reads = READS_PER_CHECKPOINT

    # -- writing --------------------------------------------------------------

    def _down_error(self) -> ConnectionError:
        if self.state is ChannelState.CLOSED:
            return NotConnectedError(f"{self.who}: {self.reason}")
        return ConnectionLostError(f"{self.who}: {self.reason}")

    def _raise_if_unwritable(self) -> None:
        if self.state is not ChannelState.OPEN:
            raise self._down_error()

    async def send(
        self, data: bytes | bytearray | memoryview, messages: int = 1
    ) -> None:
        """Send one message; concurrent writers never interleave.

        The message is appended to the send buffer whole, in one synchronous
        step, and the flusher task sends the buffer in as few calls as
        possible; a message of :data:`DIRECT_SEND_SIZE` bytes or more is
        instead handed to the OS at once if nothing is queued (see
        :meth:`_send_direct`). While the buffer holds
        :data:`SEND_HIGH_WATER_MARK` bytes or more, writers wait
        (backpressure, like ``StreamWriter.drain``). A write cancelled while
        waiting queued nothing; a queued message is sent whole unless the
        connection goes down.
        """
        if self.state is not _OPEN:
            raise self._down_error()
        if len(data) >= DIRECT_SEND_SIZE:
            self._direct_sends -= 1
            if self._direct_sends <= 0:
                # A writer whose direct sends never block must still let
                # other tasks run (and be cancellable): nothing is sent yet.
                self._direct_sends = DIRECT_SENDS_PER_CHECKPOINT
                await anyio.lowlevel.checkpoint()
                if self.state is not _OPEN:
                    raise self._down_error()
            if self._send_direct(data):
                self.messages_sent += messages
                return
        while self._queued >= SEND_HIGH_WATER_MARK:
            waiter = self._writers_waiter
            if waiter is None:
                waiter = self._writers_waiter = anyio.Event()
            await waiter.wait()
            if self.state is not _OPEN:
                raise self._down_error()
        self.messages_sent += messages
        if data:
            # Kept as it is, not copied (bytes are immutable); joined when flushed.
            self._out.append(data if type(data) is bytes else bytes(data))
            self._queued += len(data)
            self._wake_flusher()

    def _send_direct(self, data: bytes | bytearray | memoryview) -> bool:
        """Hand ``data`` to the OS now, synchronously; queue what it does not take.

        Possible only on a plain TCP stream with nothing queued or being sent
        (else ``data`` would overtake it). Synchronous, so it cannot
        interleave with another writer or be cancelled part-way. Returns
        False, having done nothing, if it is not possible now.
        """
        direct = self._direct
        if direct is None or self._out or self._sending or self._backlog:
            return False
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
            self._backlog = True
            self._wake_flusher()
        return True

    def _flush_before_waiting(self) -> None:
        """Send the queue now: a reader is about to wait, maybe for a reply to it.

        Without this, a request would leave only once the flusher task is
        scheduled; sending it from the reader saves that round trip.
        """
        out = self._out
        data = out[0] if len(out) == 1 else b"".join(out)
        queued = self._queued
        out.clear()
        self._queued = 0
        if not self._send_direct(data):
            out.append(data)  # as it was: the flusher sends it
            self._queued = queued
            return
        self._wake_writers()
        if not self._unflushed() and self._flushed is not None:
            self._flushed.set()

    def _unflushed(self) -> bool:
        """Whether anything is queued, being sent, or buffered by the transport."""
        return bool(self._out) or self._sending or self._backlog

    async def drain(self) -> None:
        """Wait until every queued message has been handed to the OS.

        Raises
        ------
        ConnectionError
            If the connection goes down first with data still queued.
        """
        while self._unflushed():
            if self.state is ChannelState.LOST:
                raise self._down_error()
            flushed = self._flushed_event()
            await flushed.wait()
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
        return flushed

    def _wake_flusher(self) -> None:
        waiter = self._flush_waiter
        if waiter is not None:
            self._flush_waiter = None
            waiter.set()

    def _wake_writers(self) -> None:
        waiter = self._writers_waiter
        if waiter is not None:
            self._writers_waiter = None
            waiter.set()

    async def flush_loop(self) -> None:
        """Send queued messages until the connection is down and nothing is queued.

        Run this in a task owned by the client or server, beside :meth:`pump`.
        """
        out = self._out
        try:
            while True:
                while not out and not self._backlog:
                    if self.state is not _OPEN:
                        return
                    waiter = self._flush_waiter = anyio.Event()
                    await waiter.wait()
                if self.state is ChannelState.LOST:
                    return
                # With only a backlog, data is b"": send() then just waits
                # for the transport's buffer to drain.
                data = out[0] if len(out) == 1 else b"".join(out)
                out.clear()
                self._queued = 0
                self._backlog = False
                self._wake_writers()
                self._sending = True
                try:
                    # A memoryview (the rest of a partial direct send) is
                    # fine: anyio's streams send any bytes-like object.
                    await self.stream.send(cast(bytes, data))
                finally:
                    self._sending = False
                self.bytes_sent += len(data)
                if not self._unflushed() and self._flushed is not None:
                    self._flushed.set()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
            cause = exc.__cause__ or exc
            self._go_down(ChannelState.LOST, f"the connection was lost: {cause!r}")
        finally:
            out.clear()
            self._queued = 0
            self._sending = False
            self._backlog = False
            if self._flushed is not None:
                self._flushed.set()
