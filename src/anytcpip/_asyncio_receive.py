"""A private backend module: receive from anyio's asyncio stream directly.

Rationale
---------
anyio's asyncio ``SocketStream.receive()`` resumes the transport's reading
before it waits and pauses it again after every wait. On a selector loop
each resume and pause is an ``epoll_ctl`` system call plus the loop's
reader bookkeeping, so in a command/reply exchange, where nearly every
receive waits, two system calls per message are spent just to keep anyio's
queue from growing while nobody receives. asyncio's own streams keep the
transport reading and pause only when their buffer passes a limit; that is
most of why they beat plain anyio on command/reply latency (scenario C of
``benchmarks/run.py``).

:func:`direct_receiver` returns a :class:`DirectReceiver` whose ``receive``
does the same job as anyio's, on the same transport and protocol, with that
policy:

- the transport keeps reading while a receive waits, and in command/reply
  traffic (:data:`QUIET_RECEIVES` waiting receives in a row with nothing
  arriving in between) a chunk that arrives for a waiting receive does not
  pause it, so such an exchange makes no ``epoll_ctl`` call at all, unless
  the caller said that this chunk may fill its buffer (``read_on``). In a
  stream it pauses as anyio's does, so that the kernel gathers what
  arrives into fewer, larger chunks. Any other chunk pauses it (the
  receiver's ``data_received`` does the job of
  :func:`~anytcpip._workarounds.bound_read_queue` here), so anyio's
  queue holds at most one chunk whenever nobody receives, and none once the
  receive side's buffer is full (:meth:`DirectReceiver.pause`). The one
  exception is a bulk reader (``read(n)`` for more than a chunk), ahead of
  which the transport reads up to :data:`READ_AHEAD` (its next read takes
  it, joined): the bound is then that plus one chunk;
- a receive that finds the queue empty resumes the transport (a no-op
  unless a chunk paused it) and waits on a bare future that the protocol's
  ``data_received`` completes (and its ``eof_received`` and
  ``connection_lost``, after anyio's own). anyio's ``asyncio.Event`` cost
  5 % of a command/reply round trip's instructions (callgrind, benchmark
  C's client: 108,100 against 102,600 with the future): its ``wait``
  creates a future all the same, looks up the running loop (a ``getpid``
  system call per message on Python 3.11) and keeps a list of waiters,
  which its ``set`` walks;
- a reader waiting for a message uses :meth:`DirectReceiver.fill`
  instead (or its steps, :meth:`~DirectReceiver.arm`, the await and
  :meth:`~DirectReceiver.take`, run by ``ReceiveSide.read_slow`` itself):
  the chunk that arrives for it goes from the protocol's
  ``data_received`` straight into the receive side's buffer (``Sink``),
  without passing through anyio's queue, and the reader resumes to parse
  it. With the reader's steps joined into one coroutine
  (``ReceiveSide.read_slow``), a command/reply round trip runs 15 % fewer
  instructions on uvloop (callgrind, benchmark C's client: 61,000 to
  51,900), and 2 % fewer again without the fill's own coroutine;
- end of stream, a broken connection and a closed stream raise what anyio
  raises (``EndOfStream``, ``BrokenResourceError`` from the cause,
  ``ClosedResourceError``), after a checkpoint, as anyio's does;
- cancellation is safe: a chunk is taken off the queue only after the wait,
  with nothing awaited in between, so a cancelled receive loses nothing.

The caller guarantees that one task at a time receives (the receive side's
role), which anyio's ``ResourceGuard`` would otherwise check.

It imports asyncio, which is why it is a backend module, chosen at run
time: only for anyio's asyncio socket streams. It reaches anyio's private
``_transport``, ``_protocol`` and ``_closed`` by duck typing, as
``_direct_send`` does, and takes over the protocol's ``data_received``
(anyio's ``receive`` is not used on the stream again); any missing piece,
and it returns None, and the generic ``stream.receive`` is used.
``tests/test_anyio_internals.py`` checks that it is active on asyncio and
uvloop, so a change in anyio fails CI instead of silently costing the
speed. trio has no transport whose
reading is paused and resumed (its ``receive`` tries ``recv`` and waits only
when nothing is there), so trio, like TLS, in-memory streams and wrappers,
gets None and keeps the generic path.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from ._constants import RECEIVE_CHUNK_SIZE
from ._workarounds import Parts, pause_reading_after_accept

__all__ = [
    "QUIET_RECEIVES",
    "READ_AHEAD",
    "SMALL_READ_SIZE",
    "DirectReceiver",
    "Sink",
    "direct_receiver",
]

QUIET_RECEIVES = 2
"""Waiting receives in a row, with no chunk arriving in between, before the
transport is left reading after a chunk (the connection looks like
command/reply traffic, not a stream)."""

READ_AHEAD = RECEIVE_CHUNK_SIZE
"""Bytes the transport may read into anyio's queue ahead of a bulk reader.

A bulk read (``read(n)`` for more than a chunk) hands chunks straight to
the caller. Pausing the transport after each of them makes every read wait
for the loop to read the next chunk (256 KiB at most): while the caller
processes one, the transport reads the next, up to this much, and the next
bulk read takes what is queued (joined, up to its size). Halved the time
per read on uvloop (benchmark A: 590 to 1,000 MB/s). Off again at the first
receive that is not a bulk read, such as the pump's: the queue then holds at
most this plus one chunk, and drains into the receive side's buffer."""

SMALL_READ_SIZE = 64 * 1024
"""Bytes a selector loop's transport asks ``recv`` for in command/reply traffic.

asyncio's selector transport receives with ``sock.recv(max_size)``, 256 KiB
by default, which allocates that much and shrinks it to what arrived.
256 KiB is above glibc's threshold for ``mmap`` (128 KiB): whenever the
heap's free top is smaller than that, as after the heap was trimmed, each
receive costs an ``mmap``, an ``mremap`` and a ``munmap`` system call
(strace of benchmark C's client: asyncio streams in every run, anytcpip
in one run of seven, 5,000 of each per 5,000 round trips). With this
size the buffer always comes from the heap. After a chunk of this size
or more (a stream), the transport reads
:data:`~anytcpip._constants.RECEIVE_CHUNK_SIZE` again, until a smaller
chunk arrives. uvloop reads into a buffer of its own, and is left alone.
"""

_PROTOCOL_PARTS = Parts(
    (
        "read_queue",
        "is_at_eof",
        "exception",
        "data_received",
        "eof_received",
        "connection_lost",
    ),
    methods=False,
)
_TRANSPORT_PARTS = Parts(
    ("is_closing", "resume_reading", "pause_reading", "set_protocol")
)


class Sink(Protocol):
    """What :meth:`DirectReceiver.fill` feeds (the receive side's ``FrameBuffer``)."""

    @property
    def eof(self) -> bool:
        """Whether end of stream was fed (then nothing more may be)."""

    def feed(self, data: bytes | bytearray) -> None:
        """Append received bytes (never empty)."""


class DirectReceiver:
    """Receive from anyio's asyncio stream, keeping the transport reading."""

    __slots__ = (
        "_bulk",
        "_feed_to",
        "_keep",
        "_large",
        "_loop",
        "_protocol",
        "_queue",
        "_quiet",
        "_sized",
        "_stream",
        "_transport",
        "_waiter",
        "fed",
        "read_on",
    )

    def __init__(
        self,
        stream: Any,
        transport: Any,
        protocol: Any,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._stream = stream
        self._transport = transport
        self._protocol = protocol
        self._loop = loop
        self._queue: deque[bytes] = protocol.read_queue
        # The future a waiting receive or fill awaits (None: nobody waits);
        # its result says whether data_received fed the fill's buffer.
        self._waiter: asyncio.Future[bool] | None = None
        # The buffer of a waiting fill (None: a receive waits, or nobody).
        self._feed_to: Sink | None = None
        self.fed = 0  # bytes fed to the buffer since the last arm
        self._keep = False  # the transport may read on after the next chunk
        # Set by the caller before each receive: False when the chunk may
        # fill its buffer, so that nothing more is read into anyio's queue.
        self.read_on: bool = True
        # Receives in a row that found nothing queued (command/reply
        # traffic), up to QUIET_RECEIVES; reset when a chunk arrives while
        # nobody waits (a stream).
        self._quiet = 0
        # The last receive was a bulk read: the transport may read ahead.
        self._bulk = False
        # A selector loop's transport, whose recv size is set here (see
        # SMALL_READ_SIZE), and whether it is RECEIVE_CHUNK_SIZE now.
        self._sized = isinstance(getattr(type(transport), "max_size", None), int)
        self._large = False
        if self._sized:
            transport.max_size = SMALL_READ_SIZE

    def data_received(self, data: bytes | bytearray) -> None:
        """Hand a chunk to a waiting receive or fill, or queue it and pause.

        The protocol's hook. A waiting :meth:`fill` gets the chunk in its
        buffer; a waiting :meth:`receive` (and nobody) finds it queued.
        """
        if self._sized:  # see SMALL_READ_SIZE
            large = len(data) >= SMALL_READ_SIZE
            if large is not self._large:
                self._large = large
                self._transport.max_size = (
                    RECEIVE_CHUNK_SIZE if large else SMALL_READ_SIZE
                )
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            # Somebody waits. (A cancelled one does not: its future is done,
            # and the chunk is queued for the next receive, as below.)
            self._waiter = None
            frames = self._feed_to
            self._feed_to = None
            if frames is None:
                # Proactor loops pass a bytearray (anyio's protocol converted
                # it too).
                self._queue.append(data if type(data) is bytes else bytes(data))
            elif not frames.eof:  # else: arrived after the end was recorded
                frames.feed(data)
                self.fed = len(data)  # the one chunk since arm
            waiter.set_result(True)
            if self._keep or (self._bulk and self.read_on):
                return
        else:
            queue = self._queue
            queue.append(data if type(data) is bytes else bytes(data))
            self._quiet = 0  # data streams in while the caller is busy
            if self._bulk and self.read_on and sum(map(len, queue)) < READ_AHEAD:
                return
        self._transport.pause_reading()

    def wake(self) -> bool:
        """Wake a waiting receive; return whether one was waiting.

        The protocol's hook at end of stream and when the connection is
        lost, and :meth:`data_received`'s. A receive that was cancelled is
        not waiting any more.
        """
        waiter = self._waiter
        if waiter is None or waiter.done():
            return False
        self._waiter = self._feed_to = None
        waiter.set_result(False)  # nothing fed: a fill looks at the queue
        return True

    def pause(self) -> None:
        """Stop reading now: nobody will receive for a while (the buffer is full)."""
        self._transport.pause_reading()

    async def fill(self, frames: Sink | None, bulk: bool = False) -> None:
        """Wait for a chunk and feed it to ``frames`` (a reader's wait).

        :meth:`receive` without the detour through anyio's queue: the chunk
        that arrives for the waiting fill goes straight into ``frames``,
        from the protocol's hook, and a chunk queued before the call is fed
        after a checkpoint. With ``frames`` None (:meth:`receive`'s wait) the
        chunk is left queued. ``bulk``: the caller is a bulk read, ahead of
        which the transport may read (see :data:`READ_AHEAD`). At the end of
        the stream it raises what :meth:`receive` raises. Cancel-safe: a
        cancelled fill fed nothing, or what it fed is in ``frames``. Nothing
        is fed once ``frames`` has its end of stream (the chunk arrived after
        the end was recorded).

        Its steps (:meth:`arm`, await, :meth:`take`, :meth:`disarm`) are
        public for ``ReceiveSide.read_slow``, which runs them itself, in its
        own coroutine.
        """
        waiter = self.arm(frames, bulk)
        if waiter is None:
            # Queued, or ended: a checkpoint all the same (as anyio's
            # receive), which also lets a connection_lost the loop has
            # scheduled (a reset found by a write) record its cause before
            # this raises.
            await anyio.lowlevel.checkpoint()
        else:
            try:
                if await waiter:
                    return  # data_received fed it (or queued it)
            except BaseException:
                self.disarm()
                raise
        self.take(frames)

    def arm(
        self, frames: Sink | None, bulk: bool = False
    ) -> asyncio.Future[bool] | None:
        """Start :meth:`fill`'s wait; return the future to await, or None.

        None: something is queued, or the stream ended; :meth:`fill` does
        the job then. Else the future's result is True once
        :meth:`data_received` has handled the chunk: fed it to ``frames``
        (or dropped it, arriving after ``frames`` recorded its end), or
        queued it when ``frames`` is None. It is False when :meth:`wake`
        woke the wait instead (end of stream, connection lost): then call
        :meth:`take`, which raises what :meth:`receive` would. A caller
        whose await is interrupted must call :meth:`disarm`.
        """
        self._bulk = bulk
        self.fed = 0
        if self._queue:
            return None
        transport = self._transport
        if transport.is_closing() or self._protocol.is_at_eof:
            return None
        transport.resume_reading()  # a no-op unless a chunk paused it
        # Read on after the chunk only in command/reply traffic: in a
        # stream, pausing lets the kernel gather data into fewer, larger
        # chunks (as anyio's receive does).
        quiet = self._quiet
        if quiet < QUIET_RECEIVES:  # counted no further (no int to allocate)
            quiet = self._quiet = quiet + 1
        self._keep = quiet >= QUIET_RECEIVES and self.read_on
        waiter = self._waiter = self._loop.create_future()
        self._feed_to = frames
        return waiter

    def disarm(self) -> None:
        """Forget the wait :meth:`arm` started (its await was interrupted)."""
        self._waiter = self._feed_to = None

    def take(self, frames: Sink | None) -> None:
        """End :meth:`fill` after its wait: feed what is queued, or raise at the end.

        Nothing is awaited here: a cancelled fill fed nothing. With
        ``frames`` None the chunks stay queued (for :meth:`receive`).
        """
        queue = self._queue
        if not queue:
            raise self._ended()
        if frames is None:
            return  # receive takes it
        if not frames.eof:
            for chunk in queue:
                frames.feed(chunk)
                self.fed += len(chunk)
        queue.clear()

    def _ended(self) -> Exception:
        """Return what a receive raises when nothing more will arrive (as anyio's)."""
        if self._stream._closed:
            return anyio.ClosedResourceError()
        exception = self._protocol.exception
        if exception:
            error = anyio.BrokenResourceError()
            error.__cause__ = exception
            return error
        return anyio.EndOfStream()

    async def receive(self, max_bytes: int) -> bytes:
        """Like ``anyio.abc.ByteReceiveStream.receive`` (see above)."""
        await self.fill(None, max_bytes > RECEIVE_CHUNK_SIZE)
        # Something is queued (or fill raised), and nothing is awaited from
        # here on: a cancelled receive took nothing.
        queue = self._queue
        chunk: bytes = queue.popleft()
        if len(chunk) > max_bytes:
            chunk, leftover = chunk[:max_bytes], chunk[max_bytes:]
            queue.appendleft(leftover)
        elif queue and len(chunk) + len(queue[0]) <= max_bytes:
            # Read ahead for a bulk read: hand out what is queued, joined.
            parts = [chunk]
            size = len(chunk)
            while queue and size + len(queue[0]) <= max_bytes:
                part = queue.popleft()
                parts.append(part)
                size += len(part)
            chunk = b"".join(parts)
        return chunk


def direct_receiver(stream: anyio.abc.ByteStream) -> DirectReceiver | None:
    """Return a direct receiver for ``stream``, or None (see above).

    On success the transport's pausing is set up for it: call this before
    anything else receives from ``stream``.
    """
    if not isinstance(stream, anyio.abc.SocketStream):
        return None  # TLS, in-memory, or a wrapper
    transport: Any = getattr(stream, "_transport", None)
    protocol: Any = getattr(stream, "_protocol", None)
    if transport is None or protocol is None or not hasattr(stream, "_closed"):
        return None  # trio, or a changed anyio
    if not (_PROTOCOL_PARTS(protocol) and _TRANSPORT_PARTS(transport)):
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # pragma: no cover - called outside the event loop
        return None
    receiver = DirectReceiver(stream, transport, protocol, loop)
    _install(protocol, transport, receiver)
    pause_reading_after_accept(stream)
    return receiver


def _install(protocol: Any, transport: Any, receiver: DirectReceiver) -> None:
    """Route anyio's protocol's callbacks to ``receiver``.

    The receiver takes the chunks (anyio's ``read_event`` is left alone: its
    ``receive`` is not called on this stream again) and is woken at end of
    stream and when the connection is lost, after anyio's protocol noted why.
    A receiver installed later on the same stream (a new receive side for
    it) takes over from the one before, wrapping anyio's own callbacks, as
    does one installed after ``bound_read_queue``, which wrapped only
    ``data_received``.
    """
    originals = getattr(protocol, "_anytcpip_originals", None)
    if originals is None:
        originals = (protocol.eof_received, protocol.connection_lost)
        protocol._anytcpip_originals = originals
    eof_received, connection_lost = originals

    def on_eof() -> bool | None:
        keep_open: bool | None = eof_received()
        receiver.wake()
        return keep_open

    def on_lost(exc: Exception | None) -> None:
        connection_lost(exc)
        receiver.wake()

    protocol.data_received = receiver.data_received
    protocol.eof_received = on_eof
    protocol.connection_lost = on_lost
    protocol._anytcpip_bounded = True
    # uvloop caches ``protocol.data_received`` when the protocol is set.
    transport.set_protocol(protocol)
