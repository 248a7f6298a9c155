"""The receive side of a connection: who receives, the buffer, and reads.

Rationale
---------
A peer that closes or resets must be noticed at once even when the
application is not reading, without polling; and a read that waits for data
must cost no more scheduler hops than asyncio's or trio's own streams.

So the *receiving role*, the one task allowed in ``stream.receive()``,
moves between the readers and a *receive pump*:

- A reader that finds the buffer unable to satisfy it, and the role free,
  receives from the stream itself: one hop per message, like asyncio
  streams. The role stays with the readers while reads keep arriving.
- The pump (a task owned by the client's or server's task group) takes the
  role back once no read has received for :data:`RECEIVE_LINGER` seconds.
  It waits for that in a cancel scope whose deadline readers move forward,
  so it never wakes up per message; then it sits in ``stream.receive()``,
  where an idle connection costs no wake-ups and a peer's close or reset is
  seen the moment the OS reports it. A peer leaving is therefore reported
  without the application reading within ``RECEIVE_LINGER`` plus the OS's
  delivery time.
- A reader that arrives while the pump holds the role waits for the pump's
  data (an event), and the role then passes to the readers.

Readers receive themselves only from anyio's own socket streams, whose
``receive()`` loses nothing when cancelled (asyncio and uvloop: the chunk
stays in anyio's queue; trio: a successful ``recv`` is followed by a
cancel-shielded checkpoint). TLS streams may lose a decrypted chunk when
cancelled while flushing a TLS record after a read, and in-memory streams
are not cancel-safe either, so on those the pump always receives, as before.

Whoever receives feeds the sans-IO :class:`~anytcpip._framing.FrameBuffer`
synchronously, so a reader cancelled at any point loses nothing: either the
chunk is still in the stream, or it is in the buffer.

Memory stays bounded: the pump stops receiving once the buffer holds
:data:`HIGH_WATER_MARK` (or what the current read needs, if more), and a
reader receives only while its read cannot be satisfied. While the pump is
stopped with a full buffer, it still watches the socket for a hang-up (a
Linux ``epoll`` set on ``EPOLLRDHUP``/``EPOLLHUP``/``EPOLLERR``, waited for
with :func:`anyio.wait_readable`, see :mod:`anytcpip._tcp_info`): a reset is
reported at once, and a peer that has closed in an orderly way has sent
everything, so the rest is moved into the buffer (at most the socket's
receive buffer) and end of stream reported. ``heartbeat_timeout`` keeps
counting bytes the kernel receives while the buffer is full.

Buffered messages are parsed synchronously (``try_read*``), without a
scheduler round trip, at most :data:`READS_PER_CHECKPOINT` times in a row.
A second concurrent reader fails at once with
:class:`anyio.BusyResourceError` (a flag checked on entry, as anyio's
``ResourceGuard`` does, but without its context manager on the hot path).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.abc
import anyio.lowlevel

from ._constants import RECEIVE_CHUNK_SIZE
from ._direct_receive import direct_receiver
from ._exceptions import (
    ConnectionLostError,
    IncompleteReadError,
    NotConnectedError,
    prefixed,
)
from ._framing import NEED_DATA, FrameBuffer, NeedData
from ._tcp_info import HangupWatch, hangup_watch, kernel_idle_time, peer_reset
from ._workarounds import bound_read_queue

__all__ = [
    "HIGH_WATER_MARK",
    "LOW_WATER_MARK",
    "READS_PER_CHECKPOINT",
    "RECEIVE_LINGER",
    "ReceiveSide",
    "receives_losslessly",
]

HIGH_WATER_MARK = 2 * RECEIVE_CHUNK_SIZE
"""The pump stops receiving once this much is buffered (unless a read needs more)."""

LOW_WATER_MARK = HIGH_WATER_MARK // 2
"""A stopped pump resumes once reads bring the buffer below this."""

READS_PER_CHECKPOINT = 1024
"""Reads satisfied from the buffer in a row before one yields to the scheduler."""

RECEIVE_LINGER = 0.005
"""Seconds the receiving role stays with the readers after a read received."""

BULK_RECEIVE_SIZE = 4 * RECEIVE_CHUNK_SIZE
"""Most bytes one ``read(n)`` asks of the stream while nothing is buffered.

The chunk goes straight to the caller, so it is never held by the
connection: receiving what the caller asked for (up to this) takes fewer
system calls and wake-ups than 256 KiB at a time, where the stream can
deliver more at once (trio). Larger requests would only allocate larger
buffers per receive.
"""

_T = TypeVar("_T")


def receives_losslessly(stream: anyio.abc.ByteStream) -> bool:
    """Whether a cancelled ``stream.receive()`` is known to lose nothing.

    True for anyio's own socket streams (asyncio, uvloop and trio backends),
    whose receive is cancel-safe; False for TLS, in-memory streams and
    wrappers, which only the receive pump reads.
    """
    return isinstance(stream, anyio.abc.SocketStream) and type(
        stream
    ).__module__.startswith("anyio._backends.")


def _nothing() -> None:
    pass


def _deadline(monotonic: float) -> float:
    """Convert a ``time.monotonic()`` time to the event loop's clock."""
    return anyio.current_time() + (monotonic - time.monotonic())


class ReceiveSide:
    """Receive bytes for one connection and cut them into messages.

    Parameters
    ----------
    stream
        The connected byte stream.
    who
        Describes the connection in error messages.
    max_line_length
        Bound of terminated reads.
    on_lost
        Called (synchronously) with the reason when receiving finds the
        connection gone; the owner records it and calls :meth:`shut`.
    before_wait
        Called (synchronously) when a reader is about to wait for data: the
        send side's chance to send what it has queued, since the peer may be
        waiting for it. The only coupling between the two sides.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        who: str,
        max_line_length: int,
        on_lost: Callable[[str], None],
        before_wait: Callable[[], None],
    ) -> None:
        self.stream = stream
        self.who = who
        self.frames: FrameBuffer = FrameBuffer(max_line_length, who)
        self._on_lost = on_lost
        self._before_wait = before_wait
        self._direct = receives_losslessly(stream)
        # asyncio and uvloop: a receive that keeps the transport reading;
        # elsewhere anyio's own, with its queue bounded to one chunk.
        receiver = self._receiver = direct_receiver(stream)
        self._receive: Callable[[int], Awaitable[bytes]] = (
            stream.receive if receiver is None else receiver.receive
        )
        self._pause_reading: Callable[[], None] = (
            _nothing if receiver is None else receiver.pause
        )
        if receiver is None:
            bound_read_queue(stream)
        self._open = True
        self._closed_here = False  # shut because this end closed
        self._reason = ""
        self._reset = False  # the peer reset the connection
        self._pump_scope = anyio.CancelScope()
        self._park_waiter: anyio.Event | None = None  # the pump is parked
        self._park: anyio.CancelScope | None = None  # its linger deadline
        self._space_waiter: anyio.Event | None = None  # the buffer is full
        self._data_waiter: anyio.Event | None = None  # a reader awaits the pump
        self._receiving = False  # some task is in stream.receive()
        self._reading = False  # a reader is in read_slow
        # Times are time.monotonic() (cheap, unlike anyio.current_time()),
        # converted by _deadline() for the pump's cancel scopes.
        self._readers_until = 0.0  # the role stays with readers until then
        self._wanted = 0
        self._draining = False  # the peer has closed: receive the rest
        self._watch: HangupWatch | None = None
        self._watchable = True  # until hangup_watch() says it cannot
        self._fast_reads = READS_PER_CHECKPOINT
        self._reads_after_end = 0  # read_slow calls since the connection went down
        self._eof_delivered = False
        self._received_at = 0.0  # time.monotonic() of the last bytes
        self.pump_receives: int = 0  # chunks received by the pump (for tests)
        self.bytes_received: int = 0
        self.messages_received: int = 0
        self.last_received: float | None = None  # time.monotonic()

    # -- life cycle -------------------------------------------------------------

    def shut(self, reason: str, *, by_this_end: bool) -> None:
        """Record that the connection is down; stop the pump, wake a reader."""
        if not self._open:
            return
        self._open = False
        self._closed_here = by_this_end
        self._reason = reason
        self._fast_reads = 0  # reads now go through read_slow's checks
        self._pump_scope.cancel()
        self._wake_reader()

    def _lost(self, exc: BaseException | None) -> str:
        """Record why receiving failed; feed end of stream; return the reason."""
        if isinstance(exc, anyio.EndOfStream):
            reason = "the connection was closed by the peer"
        elif isinstance(exc, anyio.ClosedResourceError):
            reason = "the connection was closed by this end"
        elif exc is None:
            reason = "the connection was lost"
        else:
            cause = exc.__cause__ or exc
            self._reset = isinstance(cause, ConnectionResetError)
            if self._reset:
                reason = f"the connection was lost: reset by the peer ({cause!r})"
            else:
                reason = f"the connection was lost: {cause!r}"
        if not self.frames.eof:
            self.frames.feed(b"")
        self._wake_reader()
        self._on_lost(reason)
        return reason

    def _received(self, data: bytes) -> None:
        if self.frames.eof:
            return  # arrived after the connection was declared lost
        self.bytes_received += len(data)
        self.last_received = time.monotonic()
        self.frames.feed(data)

    # -- the receive pump -------------------------------------------------------

    async def pump(self, receive_timeout: float | None = None) -> None:
        """Receive while nobody reads, until the connection ends.

        Run this in a task owned by the client or server. It never raises
        (except cancellation of the task itself). It returns once the
        connection is down; the owner then closes the stream.

        Parameters
        ----------
        receive_timeout
            If set, declare the connection lost when no bytes arrive for this
            many seconds (counting bytes the kernel received while the
            buffer was full, where the OS reports them).
        """
        self._received_at = time.monotonic()
        try:
            with self._pump_scope:
                if receive_timeout is None:
                    while True:
                        await self._pump_once()
                while True:
                    deadline = _deadline(self._received_at + receive_timeout)
                    with anyio.CancelScope(deadline=deadline) as watchdog:
                        while True:
                            await self._pump_once()
                    if watchdog.cancelled_caught and self._silent(receive_timeout):
                        self._lost_silence(receive_timeout)
                        return
        except (
            anyio.EndOfStream,
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
            OSError,
        ) as exc:
            self._lost(exc)
        finally:
            watch, self._watch, self._watchable = self._watch, None, False
            if watch is not None:
                watch.close()
            if not self.frames.eof:
                self.frames.feed(b"")
            self._wake_reader()
            if self._open:
                self._on_lost("the connection was lost")

    def _silent(self, timeout: float) -> bool:
        """Whether nothing arrived for ``timeout`` s (the watchdog fired)."""
        now = time.monotonic()
        if now - self._received_at < timeout:
            return False  # a reader received meanwhile
        if len(self.frames) >= HIGH_WATER_MARK:
            # Not receiving: ask the kernel when it last received data.
            idle = kernel_idle_time(self.stream)
            if idle is None or idle < timeout:
                self._received_at = now - (idle or 0.0)
                return False
        return True

    def _lost_silence(self, timeout: float) -> None:
        unread = len(self.frames)
        note = (
            f"; {unread} bytes received were left unread, so the peer may "
            "have been unable to send"
            if unread >= HIGH_WATER_MARK
            else ""
        )
        self.frames.feed(b"")
        self._wake_reader()
        self._on_lost(
            f"no data received for {timeout} s (heartbeat_timeout){note}; "
            "the connection is declared lost"
        )

    async def _pump_once(self) -> None:
        """Wait until the pump may receive, then receive one chunk."""
        frames = self.frames
        while True:
            if self._receiving:  # a reader receives: wait until it is done
                await self._park_pump(math.inf)
            elif self._draining:
                break
            elif time.monotonic() < self._readers_until:
                await self._park_pump(_deadline(self._readers_until))
            elif len(frames) >= max(HIGH_WATER_MARK, self._wanted):
                await self._park_pump(math.inf, full=True)
            else:
                break
        self._receiving = True
        self._before_receive()
        try:
            data = await self._receive(RECEIVE_CHUNK_SIZE)
        finally:
            self._receiving = False
        self.pump_receives += 1
        self._received_at = time.monotonic()
        self._received(data)
        if self._data_waiter is not None:
            # A reader was waiting: it will likely read again, and receive
            # itself, so the role passes to the readers.
            if self._direct:
                self._readers_until = self._received_at + RECEIVE_LINGER
            self._wake_reader()

    async def _park_pump(self, deadline: float, *, full: bool = False) -> None:
        """Wait while readers hold the role, or while the buffer is full.

        Readers move ``deadline`` forward (see :meth:`_keep_role`); reads
        that make room wake a full pump. Meanwhile the socket is watched
        for a hang-up (Linux), so a peer that leaves is still noticed; the
        watch is set up once per park, however often the deadline moves.
        """
        waiter = anyio.Event()
        if full:
            self._space_waiter = waiter
            self._pause_reading()  # leave the rest in the kernel (backpressure)
        else:
            self._park_waiter = waiter
        watch = None if self._draining else self._hangup_watch()
        try:
            if watch is None:
                await self._park_until(waiter, deadline, full)
            else:
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(self._watch_hangup, watch, task_group)
                    await self._park_until(waiter, deadline, full)
                    task_group.cancel_scope.cancel()
        finally:
            if full:
                self._space_waiter = None
            else:
                self._park_waiter = None

    async def _park_until(
        self, waiter: anyio.Event, deadline: float, full: bool
    ) -> None:
        """Wait for ``waiter``, or for the deadline while readers hold the role."""
        while True:
            with anyio.CancelScope(deadline=deadline) as park:
                if not full:
                    self._park = park
                try:
                    await waiter.wait()
                finally:
                    self._park = None
            if waiter.is_set() or full:
                return
            # The deadline passed: park on if readers kept the role meanwhile.
            if self._receiving:
                deadline = math.inf
            elif time.monotonic() < self._readers_until:
                deadline = _deadline(self._readers_until)
            else:
                return

    def _hangup_watch(self) -> HangupWatch | None:
        """Return the hang-up watch, created on first use (None: unavailable)."""
        watch = self._watch
        if watch is None and self._watchable:
            watch = self._watch = hangup_watch(self.stream)
            self._watchable = watch is not None
        return watch

    async def _watch_hangup(
        self, watch: HangupWatch, task_group: anyio.abc.TaskGroup
    ) -> None:
        try:
            await watch.wait()
        except OSError:  # pragma: no cover - the socket went away meanwhile
            self._watchable = False
            return
        if peer_reset(self.stream):
            # Nothing more can be received; what is buffered stays readable.
            self._reset = True
            if not self.frames.eof:
                self.frames.feed(b"")
            self._wake_reader()
            self._on_lost(
                f"the connection was lost: reset by the peer ({len(self.frames)} "
                "bytes received were not read yet)"
            )
        else:
            # An orderly close: everything the peer sent is in the kernel's
            # buffer. Move it into ours (so it stays readable, whatever the
            # high-water mark) until end of stream, which reports the close.
            self._draining = True
        task_group.cancel_scope.cancel()

    def _wake_pump(self) -> None:
        """Make a parked or stopped pump re-evaluate at once."""
        for waiter in (self._park_waiter, self._space_waiter):
            if waiter is not None:
                waiter.set()
        self._park_waiter = self._space_waiter = None

    # -- reading ----------------------------------------------------------------

    def _wake_reader(self) -> None:
        waiter = self._data_waiter
        if waiter is not None:
            self._data_waiter = None
            waiter.set()

    def _raise_if_unreadable(self) -> None:
        if self._closed_here:
            raise NotConnectedError(prefixed(self.who, self._reason))
        if self._eof_delivered:
            raise ConnectionLostError(prefixed(self.who, self._reason))

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
        frames = self.frames
        lines = frames.lines
        if lines and skip is None and frames.lines_term == terminator:
            # FrameBuffer.next_text's own fast path, inlined: a message
            # already split off, the commonest read of all.
            line = lines.popleft()
            frames.lines_size -= len(line) + len(terminator)
            text = line.decode(encoding)  # consumed even if this raises
            # _consumed_fast_text(), inlined.
            self._fast_reads -= 1
            self.messages_received += 1
            if self._space_waiter is not None and frames.lines_size < LOW_WATER_MARK:
                self._release_space()
            return text
        result = frames.next_text(terminator, encoding, skip)
        if result is not NEED_DATA:
            self._consumed_fast_text(frames)
        return result

    def _consumed_fast_text(self, frames: FrameBuffer) -> None:
        """:meth:`_consumed_fast`, with a cheap test for a waiting pump first."""
        self._fast_reads -= 1
        self.messages_received += 1
        # The split-off messages alone keep the buffer above the low-water
        # mark most of the time: only then is the whole size worth summing.
        if self._space_waiter is not None and frames.lines_size < LOW_WATER_MARK:
            self._release_space()

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

    async def read(
        self, parse: Callable[[FrameBuffer], _T | NeedData], wanted: int
    ) -> _T:
        """Run ``parse`` on the buffer, receiving until it returns a frame.

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

    async def read_some(self, n: int) -> bytes:
        """Read up to ``n`` bytes; a received chunk is handed out as it is."""
        if n < 0:
            raise ValueError(f"n={n} must be >= 0")
        if self._fast_reads > 0 and (len(self.frames) or not n):
            data = self.frames.next_some(n)
            assert data is not NEED_DATA
            self._consumed_fast()
            return data
        return await self.read_slow(lambda frames: frames.next_some(n), 1, bulk=n)

    async def read_slow(
        self,
        parse: Callable[[FrameBuffer], _T | NeedData],
        wanted: int,
        *,
        bulk: int = 0,
    ) -> _T:
        """:meth:`read` for a frame that is not buffered yet (see there).

        With ``bulk`` (a ``read(n)``), a chunk received while nothing is
        buffered is returned as it is, without passing through the buffer.

        Call it only after :meth:`try_read` (or one of its specialisations)
        found nothing: when that one parsed, so did the fast path, and the
        first parse here is skipped.
        """
        if self._reading:
            raise anyio.BusyResourceError("reading from")
        self._reading = True
        tried = False  # the fast path parsed just now (and found nothing)
        if self._open:
            # 0: READS_PER_CHECKPOINT fast reads in a row, or a reader waited.
            tried = self._fast_reads > 0
            yield_first = not tried
            self._fast_reads = 0  # no fast reads while this one is in progress
        else:
            # Down: every read comes here (what is still buffered after the
            # peer's close is read out), so count them here instead.
            self._reads_after_end += 1
            yield_first = self._reads_after_end % READS_PER_CHECKPOINT == 0
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
                        raise ConnectionLostError(
                            prefixed(self.who, self._reason)
                        ) from exc
                    assert result is not NEED_DATA
                    return result
                if tried:  # nothing changed since the fast path's parse
                    tried = False
                    result = NEED_DATA
                else:
                    try:
                        result = parse(frames)
                    except IncompleteReadError as exc:
                        if self._reset:
                            self._say_reset(exc)
                        raise
                if result is not NEED_DATA:
                    self.messages_received += 1
                    if self._space_waiter is not None:
                        self._release_space()
                    return result
                self._before_wait()
                if (
                    self._direct
                    and self._open
                    and not self._receiving
                    and not frames.eof
                ):
                    data = await self._receive_as_reader(
                        min(bulk, BULK_RECEIVE_SIZE)
                        if bulk > RECEIVE_CHUNK_SIZE
                        else RECEIVE_CHUNK_SIZE
                    )
                    if bulk and 0 < len(data) <= bulk and not len(frames):
                        if not frames.eof:  # else: arrived after the end
                            self.bytes_received += len(data)
                            self.last_received = time.monotonic()
                            self.messages_received += 1
                            return data  # type: ignore[return-value]
                        data = b""
                    if data:
                        self._received(data)
                else:
                    await self._wait_for_pump(wanted)
                self._raise_if_unreadable()
        finally:
            self._reading = False
            if self._open:
                self._fast_reads = READS_PER_CHECKPOINT

    def _say_reset(self, exc: IncompleteReadError) -> None:
        """Make an incomplete message's error say that the peer reset."""
        wanted = "a terminator" if exc.expected is None else f"{exc.expected} bytes"
        exc.args = (
            prefixed(
                self.who,
                f"connection reset by the peer after {len(exc.partial)} "
                f"bytes of a message; expected {wanted}",
            ),
        )

    def _before_receive(self) -> None:
        """Tell a direct receiver whether the transport may read ahead.

        Not if the chunk may fill the buffer: then the pump stops, and what
        the transport read meanwhile would sit in anyio's queue on top of
        the bound.
        """
        receiver = self._receiver
        if receiver is not None:
            receiver.read_on = len(self.frames) + RECEIVE_CHUNK_SIZE < HIGH_WATER_MARK

    async def _receive_as_reader(self, max_bytes: int) -> bytes:
        """Receive one chunk from the calling reader (the role is free).

        Cancel-safe: a cancelled receive returns nothing and loses nothing.
        Returns ``b""`` when the connection has ended (already recorded).
        """
        self._receiving = True
        self._before_receive()
        try:
            data = await self._receive(max_bytes)
        except (
            anyio.EndOfStream,
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
            OSError,
        ) as exc:
            self._lost(exc)
            return b""
        finally:
            self._receiving = False
            self._keep_role()
        self._received_at = self._readers_until - RECEIVE_LINGER
        return data

    def _keep_role(self) -> None:
        """Keep the role with the readers for the linger; move the pump's deadline."""
        self._readers_until = time.monotonic() + RECEIVE_LINGER
        park = self._park
        if park is not None and park.deadline == math.inf:
            # Parked while a reader received: wake it at the end of the
            # linger. A finite deadline (the linger's) is left alone (a timer
            # per read would cost more); the pump re-parks if it is early.
            park.deadline = anyio.current_time() + RECEIVE_LINGER

    async def _wait_for_pump(self, wanted: int) -> None:
        """Wait for the pump to receive (it holds the role, or must take it)."""
        waiter = anyio.Event()
        self._data_waiter = waiter
        self._wanted = wanted
        self._readers_until = 0.0
        self._wake_pump()  # parked or full: it must receive for this read
        try:
            await waiter.wait()
        finally:
            self._data_waiter = None
            self._wanted = 0
