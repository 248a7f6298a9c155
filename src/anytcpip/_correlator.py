"""Request/response with ids: :class:`Correlator`.

Rationale
---------
Correlated protocols (hexapod/rotator command clients, JSON APIs with an
``id``) may have several commands outstanding, and replies carry an id. A
:class:`Correlator` owns the only reader: a task in its own task group that
reads every message, hands a reply to the request waiting for its id, and
sends everything else (telemetry, events) to a bounded queue or a callback.
A reply that arrives after its request timed out is logged and dropped. When
the connection ends, every waiting request fails with a ``ConnectionError``.

A message that could not be understood is skipped when the reader can go on:
``json.JSONDecodeError`` and ``UnicodeDecodeError`` (the message was
consumed), and a :class:`~anytcpip.BadMessageError` whose ``resynchronised``
is True. Anything else stops the reader.

Like :mod:`anytcpip._requester`, this is a layer above the connection: it
uses only the public read/write methods of a client or server and its
``_describe`` hook. Delivering the unsolicited messages (the queue, its
overflow policy, the callback) is :mod:`anytcpip._correlator_unsolicited`'s
job.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, cast, overload

import anyio
import anyio.abc

from ._connection import BaseClientOrServer
from ._correlator_unsolicited import UnsolicitedOverflow, UnsolicitedQueue
from ._exceptions import (
    BadMessageError,
    ConnectionLostError,
    NotConnectedError,
    RequestTimeoutError,
)
from ._options import check_timeout
from ._requester import seconds, shown

__all__ = ["Correlator"]

_M = TypeVar("_M")
_Self = TypeVar("_Self", bound="Correlator[Any]")

_LATE_IDS_KEPT = 1024  # ids of timed-out requests remembered to name late replies


class _Pending(Generic[_M]):
    """A request waiting for its reply."""

    __slots__ = ("done", "error", "message", "reply")

    def __init__(self, message: _M) -> None:
        self.message = message
        self.done = anyio.Event()
        self.reply: _M | None = None
        self.error: BaseException | None = None


class Correlator(Generic[_M]):
    """Match replies to requests by id; route other messages elsewhere.

    An async context manager. While it is entered, a reader task (in the
    correlator's own task group) reads every message from the connection with
    ``read`` and calls ``id_of`` on it:

    - an id of a waiting request: the message is that request's reply;
    - another id: a late reply (its request timed out or was cancelled) or a
      stray one; it is logged and dropped;
    - None: the message is unsolicited (telemetry, an event). It goes to
      ``on_unsolicited`` if given, otherwise to a bounded queue read with
      :meth:`unsolicited`.

    A message that cannot be decoded (``json.JSONDecodeError``,
    ``UnicodeDecodeError``, or an :class:`UnknownMessageError` /
    :class:`MessageLengthError` that was skipped) is logged and skipped. When
    the connection ends, every waiting request and every later one raises a
    ``ConnectionError`` (``ConnectionLostError`` if the peer left,
    ``NotConnectedError`` if this end closed), and :meth:`unsolicited`
    iteration ends. Leaving the context stops the reader; the connection
    stays open (it is not the correlator's). The correlator is the
    connection's only reader: do not read from it elsewhere meanwhile.

    Parameters
    ----------
    conn
        The client or server to talk through (already connected).
    id_of
        Returns the id of a reply, or None for a message that is not a reply.
    request_id_of
        Returns the id the reply to a request will carry. Default: ``id_of``
        (for protocols whose commands and replies carry the id the same way,
        such as JSON with an ``"id"`` member).
    read
        Reads one message; default ``conn.read_json``. Any cancel-safe async
        callable works, e.g. ``lambda: dispatcher.read(conn)``.
    write
        Sends one message; default ``conn.write_json``.
    on_unsolicited
        Async callable run (in the reader task, so keep it short) for each
        unsolicited message instead of queueing it; exceptions it raises are
        logged.
    max_unsolicited
        Size of the unsolicited queue.
    unsolicited_overflow
        What to do with an unsolicited message when the queue is full:
        ``"drop_oldest"`` (default) drops the oldest queued message (counted
        in ``dropped_unsolicited``, logged), so a consumer that falls
        behind, or none at all, never holds up replies; ``"wait"`` makes the
        reader wait until the consumer catches up, which also holds up
        replies (requests may time out) and, through TCP, the peer.
    timeout
        Default time limit of a request, in seconds (None: no limit).
    max_id
        :meth:`next_id` counts from 1 to this, then wraps to 1.

    Raises
    ------
    ValueError
        If a number is out of range or ``unsolicited_overflow`` is unknown.

    Examples
    --------
    >>> # async with Correlator(client, id_of=lambda m: m.get("id")) as c:
    >>> #     reply = await c.request({"id": c.next_id(), "cmd": "park"}, timeout=1)
    >>> #     async for event in c.unsolicited(): ...
    """

    @overload
    def __init__(
        self: Correlator[Any],
        conn: BaseClientOrServer,
        *,
        id_of: Callable[[Any], Hashable | None],
        request_id_of: Callable[[Any], Hashable | None] | None = None,
        read: None = None,
        write: None = None,
        on_unsolicited: Callable[[Any], Awaitable[object]] | None = None,
        max_unsolicited: int = 100,
        unsolicited_overflow: UnsolicitedOverflow = "drop_oldest",
        timeout: float | None = None,
        max_id: int = 2**31 - 1,
    ) -> None: ...

    @overload
    def __init__(
        self,
        conn: BaseClientOrServer,
        *,
        id_of: Callable[[_M], Hashable | None],
        request_id_of: Callable[[_M], Hashable | None] | None = None,
        read: Callable[[], Awaitable[_M]],
        write: Callable[[_M], Awaitable[object]],
        on_unsolicited: Callable[[_M], Awaitable[object]] | None = None,
        max_unsolicited: int = 100,
        unsolicited_overflow: UnsolicitedOverflow = "drop_oldest",
        timeout: float | None = None,
        max_id: int = 2**31 - 1,
    ) -> None: ...

    def __init__(
        self,
        conn: BaseClientOrServer,
        *,
        id_of: Callable[[_M], Hashable | None],
        request_id_of: Callable[[_M], Hashable | None] | None = None,
        read: Callable[[], Awaitable[_M]] | None = None,
        write: Callable[[_M], Awaitable[object]] | None = None,
        on_unsolicited: Callable[[_M], Awaitable[object]] | None = None,
        max_unsolicited: int = 100,
        unsolicited_overflow: UnsolicitedOverflow = "drop_oldest",
        timeout: float | None = None,
        max_id: int = 2**31 - 1,
    ) -> None:
        if not isinstance(max_unsolicited, int) or max_unsolicited < 1:
            raise ValueError(f"max_unsolicited={max_unsolicited!r} must be an int >= 1")
        if unsolicited_overflow not in ("drop_oldest", "wait"):
            raise ValueError(
                f"unsolicited_overflow={unsolicited_overflow!r} must be "
                "'drop_oldest' or 'wait'"
            )
        check_timeout("timeout", timeout)
        if not isinstance(max_id, int) or max_id < 1:
            raise ValueError(f"max_id={max_id!r} must be an int >= 1")
        self.conn: BaseClientOrServer = conn
        """The client or server requests go through."""
        self.timeout: float | None = timeout
        """Default time limit of a request, in seconds (None: no limit)."""
        self.late_replies: int = 0
        """Replies that matched no waiting request (logged and dropped)."""
        self._id_of = id_of
        self._request_id_of = request_id_of if request_id_of is not None else id_of
        self._read: Callable[[], Awaitable[_M]] = (
            read if read is not None else conn.read_json
        )
        self._write: Callable[[_M], Awaitable[object]] = (
            write if write is not None else conn.write_json
        )
        self._max_id = max_id
        self._last_id = 0
        self._pending: dict[Hashable, _Pending[_M]] = {}
        self._late_ids: dict[Hashable, None] = {}  # ordered set, bounded
        self._state: Literal["new", "running", "stopped"] = "new"
        # Why the reader stopped: raised by later requests (a fresh error each).
        self._stop_reason: BaseException | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._log = conn.log.getChild("Correlator")
        self._unsolicited: UnsolicitedQueue[_M] = UnsolicitedQueue(
            on_unsolicited=on_unsolicited,
            max_size=max_unsolicited,
            overflow=unsolicited_overflow,
            log=self._log,
            describe=lambda: self.conn._describe(),
        )

    # -- life cycle -----------------------------------------------------------

    async def __aenter__(self: _Self) -> _Self:
        if self._state != "new":
            raise RuntimeError("a Correlator can only be entered once")
        self._state = "running"
        self._unsolicited.open()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._reader)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        try:
            if task_group is not None:
                task_group.cancel_scope.cancel()
                # The body's own exception is not passed in: it propagates
                # unchanged instead of being wrapped in an ExceptionGroup.
                await task_group.__aexit__(None, None, None)
        finally:
            self._stop(
                NotConnectedError(
                    f"{self.conn._describe()}: the Correlator was closed"
                ),
            )
            self._unsolicited.close()

    def _stop(self, reason: BaseException) -> None:
        """Stop taking requests; fail the waiting ones; end the queue."""
        if self._state == "stopped":
            return
        self._state = "stopped"
        self._stop_reason = reason
        pending, self._pending = self._pending, {}
        for reply_id, request in pending.items():
            request.error = self._no_reply_error(reply_id, request.message)
            request.done.set()
        self._unsolicited.end()

    def _no_reply_error(self, reply_id: Hashable, message: Any) -> BaseException:
        reason = self._stop_reason
        assert reason is not None
        # The reason names the connection: "Client (host:port): why".
        text = f"{reason}; no reply to request {reply_id!r} ({shown(message)})"
        error: BaseException
        if isinstance(reason, NotConnectedError):
            error = NotConnectedError(text)
        else:
            error = ConnectionLostError(text)
        error.__cause__ = reason
        return error

    # -- requests -------------------------------------------------------------

    def next_id(self) -> int:
        """Return the next request id: 1, 2, ... ``max_id``, then 1 again.

        Ids of requests still waiting are skipped.
        """
        for _ in range(len(self._pending) + 1):
            self._last_id = self._last_id % self._max_id + 1
            if self._last_id not in self._pending:
                break
        return self._last_id

    @property
    def pending(self) -> int:
        """Number of requests waiting for their reply."""
        return len(self._pending)

    async def request(
        self,
        message: _M,
        *,
        timeout: float | None = None,
        reply_id: Hashable | None = None,
    ) -> _M:
        """Send ``message`` and return the reply with the same id.

        Any number of requests may wait at once, from any tasks.

        Parameters
        ----------
        message
            The request; sent with ``write``.
        timeout
            Time limit in seconds for sending and getting the reply; None
            uses the correlator's ``timeout``; ``math.inf`` waits for ever.
        reply_id
            The id the reply will carry; default ``request_id_of(message)``.

        Returns
        -------
        object
            The reply (the message whose ``id_of`` is the request's id).

        Raises
        ------
        RequestTimeoutError
            If no reply came in time. The connection is kept; if the reply
            comes later it is logged and dropped.
        ConnectionError
            If the connection ends (or the correlator is left) before the
            reply, or already has.
        ValueError
            If the request has no id, or a request with the same id is
            already waiting.
        RuntimeError
            If the correlator was not entered.
        """
        if self._state == "new":
            raise RuntimeError("the Correlator was not entered (async with)")
        if reply_id is None:
            reply_id = self._request_id_of(message)
            if reply_id is None:
                raise ValueError(
                    f"the id of request {shown(message)} is None: a request "
                    "needs an id (or pass reply_id)"
                )
        if self._state == "stopped":
            raise self._no_reply_error(reply_id, message)
        if reply_id in self._pending:
            raise ValueError(f"a request with id {reply_id!r} is already waiting")
        if timeout is None:
            timeout = self.timeout
        limit = math.inf if timeout is None else timeout
        request = _Pending(message)
        self._pending[reply_id] = request
        sent = False
        try:
            with anyio.move_on_after(limit):
                await self._write(message)
                sent = True
                await request.done.wait()
        finally:
            if self._pending.get(reply_id) is request:
                del self._pending[reply_id]
                if sent and not request.done.is_set():
                    self._remember_late(reply_id)
        if request.done.is_set():
            if request.error is not None:
                raise request.error
            return cast(_M, request.reply)
        if not sent:
            assert timeout is not None
            raise RequestTimeoutError(
                f"{self.conn._describe()}: could not send request {reply_id!r} "
                f"({shown(message)}) within {seconds(timeout)} (the peer is not "
                "reading); nothing was sent",
                message,
                timeout,
                False,
            )
        assert timeout is not None
        raise RequestTimeoutError(
            f"{self.conn._describe()}: no reply to request {reply_id!r} "
            f"({shown(message)}) within {seconds(timeout)}; the connection is "
            "kept and a late reply will be logged and dropped",
            message,
            timeout,
            False,
        )

    def _remember_late(self, reply_id: Hashable) -> None:
        late = self._late_ids
        late[reply_id] = None
        if len(late) > _LATE_IDS_KEPT:
            del late[next(iter(late))]

    # -- unsolicited messages -------------------------------------------------

    def unsolicited(self) -> AsyncIterator[_M]:
        """Iterate over unsolicited messages (those whose ``id_of`` is None).

        Iteration ends when the connection ends or the correlator is left
        (messages already queued are delivered first); if the reader stopped
        on an unexpected error, iteration raises it. Several tasks may
        iterate at once: each message goes to one of them.

        Raises
        ------
        RuntimeError
            If the correlator has an ``on_unsolicited`` callback, or was not
            entered.
        """
        if self._unsolicited.callback is not None:
            raise RuntimeError(
                "unsolicited messages go to on_unsolicited, not to unsolicited()"
            )
        if self._state == "new":
            raise RuntimeError("the Correlator was not entered (async with)")
        return aiter(self._unsolicited)

    @property
    def dropped_unsolicited(self) -> int:
        """Unsolicited messages dropped because the queue was full."""
        return self._unsolicited.dropped

    # -- the reader -----------------------------------------------------------

    async def _reader(self) -> None:
        try:
            while True:
                try:
                    message = await self._read()
                except (ConnectionError, EOFError) as exc:
                    # EOFError: the peer closed part-way through a message.
                    self._log.info("reader stopped: %s", exc)
                    self._stop(exc)
                    return
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    self._log.warning(
                        "%s: skipped a bad message: %s", self.conn._describe(), exc
                    )
                    continue
                except BadMessageError as exc:
                    if not exc.resynchronised:
                        raise
                    self._log.warning(
                        "%s: skipped a bad message: %s", self.conn._describe(), exc
                    )
                    continue
                await self._dispatch(message)
        except Exception as exc:
            self._log.error(
                "%s: the Correlator's reader failed",
                self.conn._describe(),
                exc_info=exc,
            )
            self._unsolicited.failure = exc
            self._stop(
                ConnectionLostError(
                    f"{self.conn._describe()}: the Correlator's reader failed: {exc!r}"
                )
            )

    async def _dispatch(self, message: _M) -> None:
        try:
            reply_id = self._id_of(message)
        except Exception:
            self._log.exception(
                "id_of failed for %s; treating it as unsolicited", shown(message)
            )
            reply_id = None
        if reply_id is None:
            await self._unsolicited.put(message)
            return
        request = self._pending.pop(reply_id, None)
        if request is not None:
            request.reply = message
            request.done.set()
            return
        self.late_replies += 1
        if reply_id in self._late_ids:
            del self._late_ids[reply_id]
            self._log.warning(
                "%s: dropped a late reply to request %r (it timed out or was "
                "cancelled): %s",
                self.conn._describe(),
                reply_id,
                shown(message),
            )
        else:
            self._log.warning(
                "%s: dropped a reply to no known request (id %r): %s",
                self.conn._describe(),
                reply_id,
                shown(message),
            )
