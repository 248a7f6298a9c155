"""The receive side of a connection: the buffer, and reads.

:class:`ReceiveSide` joins the receiving role of
:mod:`anytcpip._receive_role` (who receives: the pump or a reader) with the
sans-IO :class:`~anytcpip._framing.FrameBuffer` and the reads.

Whoever receives feeds the buffer synchronously, so a reader cancelled at
any point loses nothing: either the chunk is still in the stream, or it is
in the buffer.

Buffered messages are parsed synchronously (``try_read*``), without a
scheduler round trip, at most :data:`READS_PER_CHECKPOINT` times in a row.
A second concurrent reader fails at once with
:class:`anyio.BusyResourceError` (a flag checked on entry, as anyio's
``ResourceGuard`` does, but without its context manager on the hot path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.abc
import anyio.lowlevel

from ._constants import RECEIVE_CHUNK_SIZE
from ._exceptions import (
    ConnectionLostError,
    IncompleteReadError,
    NotConnectedError,
    prefixed,
)
from ._framing import NEED_DATA, FrameBuffer, NeedData
from ._receive_role import (
    _RECEIVE_ERRORS,
    HIGH_WATER_MARK,
    LOW_WATER_MARK,
    RECEIVE_LINGER,
    ReceiveRole,
    receives_losslessly,
)

__all__ = [
    "HIGH_WATER_MARK",
    "LOW_WATER_MARK",
    "READS_PER_CHECKPOINT",
    "RECEIVE_LINGER",
    "ReceiveSide",
    "receives_losslessly",
]

READS_PER_CHECKPOINT = 1024
"""Reads satisfied from the buffer in a row before one yields to the scheduler."""

BULK_RECEIVE_SIZE = 4 * RECEIVE_CHUNK_SIZE
"""Most bytes one ``read(n)`` asks of the stream while nothing is buffered.

The chunk goes straight to the caller, so it is never held by the
connection: receiving what the caller asked for (up to this) takes fewer
system calls and wake-ups than 256 KiB at a time, where the stream can
deliver more at once (trio). Larger requests would only allocate larger
buffers per receive.
"""

_T = TypeVar("_T")


class ReceiveSide(ReceiveRole):
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
        self._init_role(stream)
        self._open = True
        self._closed_here = False  # shut because this end closed
        self._reason = ""
        self._reset = False  # the peer reset the connection
        self._reading = False  # a reader is in read_slow
        # Fast reads left before one goes through read_slow (see try_read).
        # Each fast read is counted only here, by counting this down (a
        # counter less per message): ``messages_received`` is ``_messages``
        # plus how far it has come down from ``_fast_budget``, what it was
        # last set to. 0 while a reader waits in read_slow, and once this
        # end closed; after the peer left, fast reads go on for what is
        # still buffered (see try_read).
        self._fast_reads = self._fast_budget = READS_PER_CHECKPOINT
        self._messages = 0  # messages read, but for those counted as above
        self._eof_delivered = False
        self.bytes_received: int = 0
        self.last_received: float | None = None  # time.monotonic()

    @property
    def messages_received(self) -> int:
        """Messages (reads) delivered so far."""
        return self._messages + self._fast_budget - self._fast_reads

    def _set_fast_reads(self, reads: int) -> None:
        """Allow ``reads`` fast reads from now, keeping the count of those made."""
        self._messages += self._fast_budget - self._fast_reads
        self._fast_budget = self._fast_reads = reads

    # -- life cycle -------------------------------------------------------------

    def shut(self, reason: str, *, by_this_end: bool) -> None:
        """Record that the connection is down; stop the pump, wake a reader."""
        if not self._open:
            return
        self._open = False
        self._closed_here = by_this_end
        self._reason = reason
        if by_this_end:
            self._set_fast_reads(0)  # reads now raise, from read_slow
        if by_this_end and self._direct:
            # The stream is closed next, which ends a receive in progress
            # (anyio's socket streams); a parked pump is woken and returns.
            # Cheaper than a cancellation (anyio formats the task's repr).
            self._wake_pump()
        elif self._pump_scope is not None:  # else: the pump has not started
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
        """Feed ``data`` just received (at ``_received_at``) to the buffer."""
        if self.frames.eof:
            return  # arrived after the connection was declared lost
        self.bytes_received += len(data)
        self.last_received = self._received_at
        self.frames.feed(data)

    # -- reading ----------------------------------------------------------------

    def _raise_if_unreadable(self) -> None:
        if self._closed_here:
            raise NotConnectedError(prefixed(self.who, self._reason))
        if self._eof_delivered:
            raise ConnectionLostError(prefixed(self.who, self._reason))

    def try_read(self, parse: Callable[[FrameBuffer], _T | NeedData]) -> _T | NeedData:
        """Parse a frame that is already buffered, without waiting.

        Returns ``NEED_DATA`` when the frame is not buffered yet, or when the
        caller must go through :meth:`read_slow` instead (another reader is
        waiting, this end closed the connection, the peer left and the
        buffer has reached the end of the stream, or it is time to yield to
        the scheduler). Synchronous: nothing can interleave or be cancelled.

        After the peer left, what is buffered is still read here, as fast
        as before, unless the parse could meet the end of the stream: that
        is left to :meth:`read_slow` and its rules (``b""`` once, then
        ``ConnectionLostError``; the reset wording of an incomplete
        message). A message already split off (``try_read_text``) and a
        whole struct (``try_read_into``) cannot meet it.
        """
        # ``_fast_reads`` is 0 while a reader waits and once this end
        # closed, so one comparison guards the fast path.
        if self._fast_reads <= 0 or self.frames.eof:
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
        # ``is``: the terminator the lines were split on is the caller's own
        # object; an equal one from elsewhere takes next_text's path below.
        if lines and skip is None and frames.lines_term is terminator:
            # FrameBuffer.next_text's own fast path, inlined: a message
            # already split off, the commonest read of all.
            line = lines.popleft()
            size = len(line) + len(terminator)
            frames.lines_size -= size
            text = line.decode(encoding)  # consumed even if this raises
            # _consumed_fast(), inlined: the size read is known.
            self._fast_reads -= 1  # which counts this message too
            if self._space_waiter is not None:
                # The pump waits for room: count this read off what is due
                # (inlined, like the rest: a call per read is 5 % of it).
                due = self._space_due = self._space_due - size
                if due <= 0:
                    self._release_space()
            return text
        if not (frames.buf or frames.chunked or lines) or frames.eof:
            # Nothing buffered (a reply not yet received, the commonest
            # case in command/reply traffic): next_text would only say so.
            # At the end of the stream, read_slow applies its rules.
            return NEED_DATA
        result = frames.next_text(terminator, encoding, skip)
        if result is not NEED_DATA:
            self._consumed_fast()
        return result

    def try_read_into(self, view: memoryview, size: int) -> bool:
        """:meth:`try_read` specialised for ``FrameBuffer.next_into_view`` (hot path).

        Returns True if ``view`` (a byte view of a ctypes object, ``size``
        bytes long) was filled from the buffer, False if the caller must go
        through :meth:`read_slow`.
        """
        # A whole struct is read here, also after the peer left.
        if self._fast_reads <= 0 or not self.frames.fill_view(view, size):
            return False
        # _consumed_fast(), inlined: the size read is known.
        self._fast_reads -= 1  # which counts this message too
        if self._space_waiter is not None:
            due = self._space_due = self._space_due - size  # as in try_read_text
            if due <= 0:
                self._release_space()
        return True

    def _consumed_fast(self) -> None:
        """Account for a message read from the buffer without waiting."""
        self._fast_reads -= 1  # which counts this message too
        if self._space_waiter is not None:
            self._release_space()  # the size read is not known here

    def _release_space(self) -> None:
        """Wake a pump waiting for room once the buffer is below the low-water mark."""
        waiter = self._space_waiter
        if waiter is None:
            return
        # Reads that know their size count ``_space_due`` down and call this
        # only once it runs out; it is set again to what is still due.
        due = len(self.frames) - LOW_WATER_MARK + 1
        if due <= 0:
            self._space_waiter = None
            waiter.set()
        else:
            self._space_due = due

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
        if self._fast_reads > 0 and (len(self.frames) or (not n and self._open)):
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
        receiver = self._fed_by
        if (
            receiver is None
            or bulk
            or self._fast_reads <= 0
            or not self._open
            or self._receiving
        ):
            return await self._read_waiting(parse, wanted, bulk, tried=True)
        # The commonest wait (command/reply on asyncio and uvloop): the
        # steps of the loop's first turn (_read_waiting: let the send side
        # send, take the role, receive, keep the role for the linger,
        # parse), with the chunk fed to the buffer by the stream's protocol
        # (DirectReceiver.fill), in one coroutine.
        self._reading = True
        # _set_fast_reads and _before_receive are inlined below: calling
        # them made C's round trip 5 % dearer on uvloop (callgrind: 54,900
        # against 52,000 instructions).
        # No fast reads while this one runs (_set_fast_reads(0)).
        made = self._fast_budget - self._fast_reads
        if made:  # (0 in command/reply traffic: no new int for the sum)
            self._messages += made
        self._fast_budget = self._fast_reads = 0
        frames = self.frames
        try:
            self._before_wait()
            # _before_receive(), with len(frames) inlined too.
            receiver.read_on = (
                len(frames.buf) + frames.chunked + frames.lines_size
                < HIGH_WATER_MARK - RECEIVE_CHUNK_SIZE
            )
            self._receiving = True
            try:
                # receiver.fill(frames), without a coroutine of its own.
                waiter = receiver.arm(frames)
                if waiter is None:  # queued, or ended
                    await receiver.fill(frames)
                else:
                    try:
                        if not await waiter:  # woken, nothing fed
                            receiver.take(frames)
                    except BaseException:
                        receiver.disarm()
                        raise
            except _RECEIVE_ERRORS as exc:
                self._lost(exc)
            finally:
                self._receiving = False
                received_at = self._keep_role()
                fed = receiver.fed  # counted even if cancelled
                if fed:
                    self.bytes_received += fed
                    self.last_received = self._received_at = received_at
            if fed and self._open:
                # Open: no end of stream is buffered, so the parse cannot
                # meet it (no IncompleteReadError to reword, as below).
                result = parse(frames)
                if result is not NEED_DATA:
                    self._messages += 1
                    if self._space_waiter is not None:
                        self._release_space()
                    return result
        finally:
            self._reading = False
            if self._open or not self._closed_here:
                # Nothing was read fast meanwhile (_set_fast_reads).
                self._fast_budget = self._fast_reads = READS_PER_CHECKPOINT
        # A partial message (parsed: nothing changed since), nothing fed (the
        # fast path's parse stands), or down (parsed again): the loop.
        return await self._read_waiting(parse, wanted, 0, tried=self._open)

    async def _read_waiting(
        self,
        parse: Callable[[FrameBuffer], _T | NeedData],
        wanted: int,
        bulk: int,
        *,
        tried: bool,
    ) -> _T:
        """:meth:`read_slow`'s loop: receive, or wait for the pump, until parsed.

        ``tried``: the last parse found nothing, and nothing changed since
        (unless it is time to yield, or the connection is down).
        """
        self._reading = True
        try:
            # While the connection is open, nothing is unreadable: this end
            # closing, and the end of stream, shut it (synchronously).
            # READS_PER_CHECKPOINT fast reads in a row: yield first.
            yield_first = self._fast_reads <= 0
            refill = READS_PER_CHECKPOINT  # the fast reads allowed afterwards
            if self._open:
                # The fast path parsed just now and found nothing, unless it
                # was skipped.
                tried = tried and not yield_first
            else:
                # Down: reads that may meet the end of the stream come here
                # with fast reads left (see try_read), and need not wait or
                # yield: each counts against the budget, so that they yield
                # every READS_PER_CHECKPOINT-th read too, mixed or not.
                tried = False
                self._raise_if_unreadable()
                if not yield_first:
                    refill = self._fast_reads - 1
            self._set_fast_reads(0)  # no fast reads while this one runs
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
                else:
                    try:
                        result = parse(frames)
                    except IncompleteReadError as exc:
                        if self._reset:
                            self._say_reset(exc)
                        raise
                    if result is not NEED_DATA:
                        self._messages += 1
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
                        else self._receive_size
                    )
                    if bulk and 0 < len(data) <= bulk and not len(frames):
                        if not frames.eof:  # else: arrived after the end
                            self.bytes_received += len(data)
                            self.last_received = self._received_at
                            self._messages += 1
                            return data  # type: ignore[return-value]
                        data = b""
                    if data:
                        self._received(data)
                else:
                    await self._wait_for_pump(wanted)
                if not self._open:  # it went down meanwhile
                    self._raise_if_unreadable()
        finally:
            self._reading = False
            if self._open or not self._closed_here:
                # Down, a read that did not yield leaves the budget as it was,
                # less this read (an open one always waited or yielded).
                self._set_fast_reads(refill)

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
