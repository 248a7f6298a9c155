"""The receiving role of a connection: the receive pump, and readers receiving.

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
are not cancel-safe either, so on those the pump always receives.

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

:class:`ReceiveRole` is the half of :class:`~anytcpip._receive.ReceiveSide`
that decides who receives; the other half (``_receive``) parses and reads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import anyio.lowlevel

from ._asyncio_receive import DirectReceiver, direct_receiver
from ._constants import RECEIVE_CHUNK_SIZE
from ._framing import FrameBuffer
from ._tcp_info import HangupWatch, hangup_watch, kernel_idle_time, peer_reset
from ._workarounds import bound_read_queue

__all__ = [
    "HIGH_WATER_MARK",
    "LOW_WATER_MARK",
    "RECEIVE_LINGER",
    "SMALL_RECEIVE_SIZE",
    "ReceiveRole",
    "receives_losslessly",
]

HIGH_WATER_MARK = 2 * RECEIVE_CHUNK_SIZE
"""The pump stops receiving once this much is buffered (unless a read needs more)."""

LOW_WATER_MARK = HIGH_WATER_MARK // 2
"""A stopped pump resumes once reads bring the buffer below this."""

SMALL_RECEIVE_SIZE = 64 * 1024
"""Bytes asked of the stream after a receive that brought less than this.

Command/reply traffic brings a few bytes per receive. On trio a receive
allocates what it asks for, then shrinks it to what arrived: 256 KiB is
above glibc's threshold for ``mmap``, so such receives cost an ``mmap``,
an ``mremap`` and a ``munmap`` system call each (strace of benchmark C's
client on trio: 4,000 more system calls per 5,000 round trips than plain
anyio, whose receives ask for 64 KiB; none with this). After a receive
that brought this much or more (a stream), the next asks for
:data:`~anytcpip._constants.RECEIVE_CHUNK_SIZE` again.
"""


def _size_after(received: int) -> int:
    """Return what the next receive asks for after one that brought ``received``."""
    return RECEIVE_CHUNK_SIZE if received >= SMALL_RECEIVE_SIZE else SMALL_RECEIVE_SIZE


RECEIVE_LINGER = 0.005
"""Seconds the receiving role stays with the readers after a read received."""

MAX_PARK_EXTENSION = 0.1
"""Most seconds a watched pump parks past the linger while readers stay busy.

Each time the pump wakes at the end of a linger and finds that the readers
kept the role, it parks that much longer than the linger (doubling from
:data:`RECEIVE_LINGER` up to this), so a connection read without pause wakes
it about ten times a second instead of two hundred. Only where the socket's
hang-up watch runs meanwhile, which reports a peer leaving at once: a busy
reader's role then costs nothing in disconnect latency.
"""


def receives_losslessly(stream: anyio.abc.ByteStream) -> bool:
    """Whether a cancelled ``stream.receive()`` is known to lose nothing.

    True for anyio's own socket streams (asyncio, uvloop and trio backends),
    whose receive is cancel-safe; False for TLS, in-memory streams and
    wrappers, which only the receive pump reads.
    """
    return isinstance(stream, anyio.abc.SocketStream) and type(
        stream
    ).__module__.startswith("anyio._backends.")


_RECEIVE_ERRORS = (
    anyio.EndOfStream,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    OSError,
)
"""What a receive raises when the connection has ended (recorded by ``_lost``)."""


def _nothing() -> None:
    pass


def _deadline(monotonic: float) -> float:
    """Convert a ``time.monotonic()`` time to the event loop's clock."""
    return anyio.current_time() + (monotonic - time.monotonic())


class ReceiveRole:
    """Who receives: the pump or a reader (the base of ``ReceiveSide``).

    :meth:`_init_role` sets up the role's state; the subclass provides the
    buffer and the hooks declared below.
    """

    # Provided by ReceiveSide.
    stream: anyio.abc.ByteStream
    frames: FrameBuffer
    _on_lost: Callable[[str], None]
    _open: bool
    _reset: bool

    def _lost(self, exc: BaseException | None) -> str:
        """Record why receiving failed; feed end of stream (hook)."""
        raise NotImplementedError

    def _received(self, data: bytes) -> None:
        """Feed bytes just received (at ``_received_at``) to the buffer (hook)."""
        raise NotImplementedError

    def _init_role(self, stream: anyio.abc.ByteStream) -> None:
        """Set up the receiving role for ``stream`` (from ``__init__``)."""
        self._direct = receives_losslessly(stream)
        # asyncio and uvloop: a receive that keeps the transport reading;
        # elsewhere anyio's own, with its queue bounded to one chunk.
        receiver = direct_receiver(stream)
        self._receiver: DirectReceiver | None = receiver
        # The receiver through which readers may receive themselves (see
        # ReceiveSide.read_slow): only from anyio's own streams.
        self._fed_by: DirectReceiver | None = receiver if self._direct else None
        self._receive: Callable[[int], Awaitable[bytes]] = (
            stream.receive if receiver is None else receiver.receive
        )
        self._pause_reading: Callable[[], None] = (
            _nothing if receiver is None else receiver.pause
        )
        if receiver is None:
            bound_read_queue(stream)
        # Created when the pump starts: a connection closed before that (a
        # connect/close) never needs it.
        self._pump_scope: anyio.CancelScope | None = None
        self._park_waiter: anyio.Event | None = None  # the pump is parked
        # The pump's park while it has no deadline (a reader receives).
        self._park: anyio.CancelScope | None = None
        self._space_waiter: anyio.Event | None = None  # the buffer is full
        # While the pump waits for room: bytes reads must still take before
        # the buffer can be below LOW_WATER_MARK (counted down by fast
        # reads, so that they need not size the buffer each time).
        self._space_due = 0
        self._data_waiter: anyio.Event | None = None  # a reader awaits the pump
        self._receiving = False  # some task is in stream.receive()
        # Times are time.monotonic() (cheap, unlike anyio.current_time()),
        # converted by _deadline() for the pump's cancel scopes.
        self._readers_until = 0.0  # the role stays with readers until then
        self._received_at = 0.0  # time.monotonic() of the last bytes
        self._park_extension = 0.0  # see MAX_PARK_EXTENSION
        self._wanted = 0
        self._receive_size = SMALL_RECEIVE_SIZE  # see SMALL_RECEIVE_SIZE
        self._draining = False  # the peer has closed: receive the rest
        self._watch: HangupWatch | None = None
        self._watchable = True  # until hangup_watch() says it cannot
        self.pump_receives: int = 0  # chunks received by the pump (for tests)

    def _wake_reader(self) -> None:
        waiter = self._data_waiter
        if waiter is not None:
            self._data_waiter = None
            waiter.set()

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
        scope = self._pump_scope = anyio.CancelScope()
        try:
            with scope:
                if receive_timeout is None:
                    while self._open:
                        await self._pump_once()
                    return
                while self._open:
                    deadline = _deadline(self._received_at + receive_timeout)
                    with anyio.CancelScope(deadline=deadline) as watchdog:
                        while self._open:
                            await self._pump_once()
                    if watchdog.cancelled_caught and self._silent(receive_timeout):
                        self._lost_silence(receive_timeout)
                        return
        except _RECEIVE_ERRORS as exc:
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
            if not self._open:  # this end closed the connection (see shut)
                return
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
            data = await self._receive(self._receive_size)
        finally:
            self._receiving = False
        self._receive_size = _size_after(len(data))
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
            self._space_due = 0  # the first read sizes the buffer
            self._pause_reading()  # leave the rest in the kernel (backpressure)
        else:
            self._park_waiter = waiter
        watch = None if self._draining else self._hangup_watch()
        try:
            if watch is None:
                await self._park_until(waiter, deadline, full, watched=False)
            else:
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(self._watch_hangup, watch, task_group)
                    await self._park_until(waiter, deadline, full, watched=True)
                    task_group.cancel_scope.cancel()
        finally:
            if full:
                self._space_waiter = None
            else:
                self._park_waiter = None

    async def _park_until(
        self, waiter: anyio.Event, deadline: float, full: bool, *, watched: bool
    ) -> None:
        """Wait for ``waiter``, or for the deadline while readers hold the role.

        ``watched``: the hang-up watch runs meanwhile, so the park may be
        extended while the readers stay busy (:data:`MAX_PARK_EXTENSION`).
        """
        self._park_extension = 0.0
        while True:
            with anyio.CancelScope(deadline=deadline) as park:
                if not full and deadline == math.inf:
                    self._park = park  # for _keep_role to set its deadline
                try:
                    await waiter.wait()
                finally:
                    self._park = None
            if waiter.is_set() or full:
                return
            # The deadline passed: park on if readers kept the role meanwhile
            # (longer each time, if watched: they are busy).
            if self._receiving or time.monotonic() < self._readers_until:
                if watched:
                    self._park_extension = min(
                        max(2 * self._park_extension, RECEIVE_LINGER),
                        MAX_PARK_EXTENSION,
                    )
                deadline = (
                    math.inf
                    if self._receiving
                    else _deadline(self._readers_until + self._park_extension)
                )
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

    # -- readers receiving themselves ----------------------------------------

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
            if self._receiver is None:
                # trio (or an asyncio stream the direct receiver declined):
                # pass through the scheduler before receiving, as trio's own
                # send does after sending (the direct send does not).
                # Receiving at once, right after a request was sent, made a
                # command/reply round trip take 1.4 times as long (benchmark
                # C, both ends anytcpip on trio, 7 paired runs: 234-266
                # against 162 µs; plain anyio 207-226 µs). The direct
                # receiver of asyncio and uvloop receives only once the loop
                # saw the socket readable, and gained nothing from it.
                await anyio.lowlevel.checkpoint()
                if not self._open:  # closed meanwhile: receive no more
                    return b""
            data = await self._receive(max_bytes)
        except _RECEIVE_ERRORS as exc:
            self._lost(exc)
            return b""
        finally:
            self._receiving = False
            received_at = self._keep_role()
        self._receive_size = _size_after(len(data))
        self._received_at = received_at
        return data

    def _keep_role(self) -> float:
        """Keep the role with the readers for the linger; move the pump's deadline.

        Returns the ``time.monotonic()`` it took: when the reader received.
        """
        now = time.monotonic()
        self._readers_until = now + RECEIVE_LINGER
        park = self._park
        if park is not None:
            # Parked while a reader received: wake it at the end of the
            # linger (plus the extension of a busy, watched connection). A
            # finite deadline is left alone (``_park`` is None then: a timer
            # per read would cost more); the pump re-parks if it is early.
            park.deadline = anyio.current_time() + RECEIVE_LINGER + self._park_extension
            self._park = None
        return now

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
