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
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.abc
import anyio.lowlevel

from ._constants import RECEIVE_CHUNK_SIZE
from ._exceptions import ConnectionLostError, IncompleteReadError, NotConnectedError
from ._framing import NEED_DATA, FrameBuffer, NeedData
from ._streams import close_stream

__all__ = ["Channel"]

HIGH_WATER_MARK = 256 * 1024
"""The pump stops receiving once this much is buffered (unless a read needs more)."""

LOW_WATER_MARK = HIGH_WATER_MARK // 2
"""A stopped pump resumes once reads bring the buffer below this."""

SEND_HIGH_WATER_MARK = 64 * 1024
"""Writers wait while this many bytes are queued and not yet sent."""

CLOSE_FLUSH_TIMEOUT = 2.0
"""Seconds ``aclose`` spends sending what is still queued before closing."""

READS_PER_CHECKPOINT = 1024
"""Reads satisfied from the buffer in a row before one yields to the scheduler."""

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
        self._out = bytearray()  # queued, not yet sent
        self._sending = False  # the flusher is in stream.send()
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
            if self._out or self._sending:
                with anyio.move_on_after(CLOSE_FLUSH_TIMEOUT):
                    while self._out or self._sending:
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
            self._fast_reads -= 1
            self.messages_received += 1
            if (
                self._space_waiter is not None
                and len(self.frames._buf) < LOW_WATER_MARK
            ):
                self._release_space()
        return result

    def try_read_text(
        self, terminator: bytes, encoding: str, skip: bytes | None
    ) -> str | NeedData:
        """:meth:`try_read` specialised for ``FrameBuffer.next_text`` (hot path)."""
        if self._fast_reads <= 0:
            return NEED_DATA
        result = self.frames.next_text(terminator, encoding, skip)
        if result is not NEED_DATA:
            self._fast_reads -= 1
            self.messages_received += 1
            if (
                self._space_waiter is not None
                and len(self.frames._buf) < LOW_WATER_MARK
            ):
                self._release_space()
        return result

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
        """Queue one message for sending; concurrent writers never interleave.

        The message is appended to the send buffer whole, in one synchronous
        step, and the flusher task sends the buffer in as few calls as
        possible. While the buffer holds :data:`SEND_HIGH_WATER_MARK` bytes or
        more, writers wait (backpressure, like ``StreamWriter.drain``). A
        write cancelled while waiting queued nothing; a queued message is sent
        whole unless the connection goes down.
        """
        if self.state is not _OPEN:
            raise self._down_error()
        out = self._out
        while len(out) >= SEND_HIGH_WATER_MARK:
            waiter = self._writers_waiter
            if waiter is None:
                waiter = self._writers_waiter = anyio.Event()
            await waiter.wait()
            if self.state is not _OPEN:
                raise self._down_error()
        out += data
        self.messages_sent += messages
        waiter = self._flush_waiter
        if waiter is not None:
            self._flush_waiter = None
            waiter.set()

    async def drain(self) -> None:
        """Wait until every queued message has been handed to the OS.

        Raises
        ------
        ConnectionError
            If the connection goes down first with data still queued.
        """
        while self._out or self._sending:
            if self.state is ChannelState.LOST:
                raise self._down_error()
            flushed = self._flushed_event()
            await flushed.wait()
        await anyio.lowlevel.checkpoint()

    async def wait_flushed(self) -> None:
        """Wait until nothing is queued or being sent (whatever the outcome)."""
        while self._out or self._sending:
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
                while not out:
                    if self.state is not _OPEN:
                        return
                    waiter = self._flush_waiter = anyio.Event()
                    await waiter.wait()
                if self.state is ChannelState.LOST:
                    return
                data = bytes(out)
                out.clear()
                self._wake_writers()
                self._sending = True
                try:
                    await self.stream.send(data)
                finally:
                    self._sending = False
                self.bytes_sent += len(data)
                if not out and self._flushed is not None:
                    self._flushed.set()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
            cause = exc.__cause__ or exc
            self._go_down(ChannelState.LOST, f"the connection was lost: {cause!r}")
        finally:
            out.clear()
            self._sending = False
            if self._flushed is not None:
                self._flushed.set()
