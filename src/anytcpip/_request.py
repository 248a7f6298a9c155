"""Request/response on top of a connection: ``Requester`` and ``Correlator``.

Rationale
---------
Controller protocols come in two shapes.

*One outstanding command at a time* (a dome controller, a prompt-terminated
serial bridge): send a command, read the reply, under a lock so concurrent
callers take turns. Replies carry no id, so after a timeout nobody can tell a
late reply from the reply to the next command. :class:`Requester` therefore
makes the outcome a documented policy: ``"close"`` (the default) drops the
connection, so a late reply can never be taken for another command's;
``"keep"`` keeps it and discards replies that are already waiting when the
next request starts.

*Correlated* (hexapod/rotator command clients, JSON APIs with an ``id``):
several commands may be outstanding and replies carry an id. A
:class:`Correlator` owns the only reader: a task in its own task group that
reads every message, hands a reply to the request waiting for its id, and
sends everything else (telemetry, events) to a bounded queue or a callback.
A reply that arrives after its request timed out is logged and dropped. When
the connection ends, every waiting request fails with a ``ConnectionError``.

Both are built only on the public read/write methods of a client or server.
"""

from __future__ import annotations

import ctypes
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast, overload

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._exceptions import (
    AnyTcpIpError,
    ConnectionLostError,
    IncompleteReadError,
    NotConnectedError,
)

if TYPE_CHECKING:
    from ._connection import BaseClientOrServer

__all__ = ["Correlator", "RequestTimeoutError", "Requester"]

_T = TypeVar("_T")
_M = TypeVar("_M")
_Self = TypeVar("_Self", bound="Correlator[Any]")

_SHOWN = 160  # characters of a message quoted in errors and logs
_LATE_IDS_KEPT = 1024  # ids of timed-out requests remembered to name late replies

ReplyTimeoutPolicy = Literal["close", "keep"]
UnsolicitedOverflow = Literal["drop_oldest", "wait"]


def _repr(value: object) -> str:
    """``repr``, but showing the fields of ctypes structures (and arrays)."""
    if isinstance(value, ctypes.Structure | ctypes.Union):
        fields = ", ".join(
            f"{field[0]}={_repr(getattr(value, field[0]))}"
            for cls in reversed(type(value).__mro__)
            for field in cls.__dict__.get("_fields_", ())
        )
        return f"{type(value).__name__}({fields})"
    if isinstance(value, ctypes.Array):
        return "[" + ", ".join(_repr(item) for item in value) + "]"
    if isinstance(value, tuple):
        items = ", ".join(_repr(item) for item in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return repr(value)


def _shown(message: object) -> str:
    text = _repr(message)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _who(conn: BaseClientOrServer) -> str:
    """Describe ``conn`` for messages from its public attributes."""
    who = type(conn).__name__
    if conn.name:
        who += f" {conn.name!r}"
    host, port = getattr(conn, "host", None), getattr(conn, "port", None)
    if port is not None:
        who += f" ({host}:{port})"
    return who


def _seconds(timeout: float) -> str:
    return f"{timeout:g} s"


async def _drop_connection(conn: BaseClientOrServer) -> None:
    """Close the connection, keeping a server listening."""
    with anyio.CancelScope(shield=True):
        close_client = getattr(conn, "close_client", None)
        if close_client is not None:
            await close_client()
        else:
            await conn.close()


class RequestTimeoutError(AnyTcpIpError, TimeoutError):
    """No reply to a request arrived in time.

    Also a :class:`TimeoutError`.

    Parameters
    ----------
    message
        What timed out, after how long, and what became of the connection.
    request
        The request (the message sent, or its description).
    timeout
        The timeout, in seconds.
    connection_closed
        True if the connection was closed because of the timeout
        (:class:`Requester` with ``reply_timeout_policy="close"``).
    """

    def __init__(
        self, message: str, request: Any, timeout: float, connection_closed: bool
    ) -> None:
        super().__init__(message)
        self.request = request
        self.timeout = timeout
        self.connection_closed = connection_closed

    def __reduce__(
        self,
    ) -> tuple[type[RequestTimeoutError], tuple[str, Any, float, bool]]:
        return (
            type(self),
            (self.args[0], self.request, self.timeout, self.connection_closed),
        )


class Requester:
    """Send a command and wait for its reply, one command at a time.

    For protocols whose replies carry no id: each request holds a lock from
    sending the command until its reply is read, so concurrent callers take
    turns and each gets its own reply.

    Use one ``Requester`` per connection, and do not read from the connection
    elsewhere while requests may run.

    Parameters
    ----------
    conn
        The client or server to talk through.
    timeout
        Default time limit of a request, in seconds (None: no limit).
    reply_timeout_policy
        What to do when a reply does not come in time, or a request is
        cancelled after its command was sent (the reply may still come):

        ``"close"`` (default)
            Close the connection (for a server, drop the client with
            ``close_client()`` and keep listening). A late reply can then
            never be taken for the reply to a later command. A ``Client`` is
            closed for good: make a new one to reconnect.
        ``"keep"``
            Keep the connection. Before the next request is sent, replies
            that are already waiting are discarded (logged), one per timed-out
            request. A reply that arrives only after the next command was
            sent cannot be told apart from that command's reply: use
            ``"keep"`` for devices that reply in time or not at all, and a
            :class:`Correlator` if replies carry an id.

    Raises
    ------
    ValueError
        If ``reply_timeout_policy`` or ``timeout`` is invalid.

    Examples
    --------
    >>> # requester = Requester(client, timeout=2.0)
    >>> # reply = await requester.request("AZ?")
    """

    def __init__(
        self,
        conn: BaseClientOrServer,
        *,
        timeout: float | None = None,
        reply_timeout_policy: ReplyTimeoutPolicy = "close",
    ) -> None:
        if reply_timeout_policy not in ("close", "keep"):
            raise ValueError(
                f"reply_timeout_policy={reply_timeout_policy!r} must be 'close' "
                "or 'keep'"
            )
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout={timeout!r} must be None or > 0")
        self.conn = conn
        """The client or server requests go through."""
        self.timeout = timeout
        """Default time limit of a request, in seconds (None: no limit)."""
        self.reply_timeout_policy: ReplyTimeoutPolicy = reply_timeout_policy
        """``"close"`` or ``"keep"``: see the class description."""
        self._lock = anyio.Lock()
        self._late = 0  # timed-out requests whose reply has not been seen
        self._log = conn.log.getChild("Requester")

    @property
    def late_replies_expected(self) -> int:
        """Timed-out requests (policy ``"keep"``) whose reply was not seen yet."""
        return self._late

    async def request(self, message: str, timeout: float | None = None) -> str:
        """Send ``message`` with ``write_str`` and return the reply's ``read_str``.

        Parameters
        ----------
        message
            The command (the write terminator is appended).
        timeout
            Time limit in seconds for sending and getting the reply; None
            uses the requester's ``timeout``; ``math.inf`` waits for ever.

        Raises
        ------
        RequestTimeoutError
            If no reply came in time (see ``reply_timeout_policy``).
        ConnectionError
            If not connected, or the connection ends before the reply.
        """
        conn = self.conn
        return await self.exchange(
            lambda: conn.write_str(message),
            conn.read_str,
            timeout=timeout,
            description=_shown(message),
            request=message,
        )

    async def request_json(self, obj: Any, timeout: float | None = None) -> Any:
        """Send ``obj`` with ``write_json`` and return the reply's ``read_json``.

        Parameters
        ----------
        obj
            The command, serialised with :func:`json.dumps`.
        timeout
            As for :meth:`request`.

        Raises
        ------
        RequestTimeoutError
            If no reply came in time (see ``reply_timeout_policy``).
        ConnectionError
            If not connected, or the connection ends before the reply.
        json.JSONDecodeError
            If the reply is not JSON (it was consumed; the connection stays
            usable).
        """
        conn = self.conn
        text = json.dumps(obj)
        return await self.exchange(
            lambda: conn.write_str(text),
            conn.read_json,
            timeout=timeout,
            description=_shown(text),
            request=obj,
        )

    async def exchange(
        self,
        send: Callable[[], Awaitable[object]],
        receive: Callable[[], Awaitable[_T]],
        *,
        timeout: float | None = None,
        description: str = "the request",
        request: Any = None,
    ) -> _T:
        """Run ``send()`` then ``receive()`` under the lock, with a time limit.

        The general form of :meth:`request`, for any message type, e.g.
        structs: ``await requester.exchange(lambda: conn.write_from(cmd),
        read_ack)``.

        Parameters
        ----------
        send
            Sends the command (one write call, so it is sent whole or not at
            all).
        receive
            Reads the reply. It must lose no data when cancelled (every read
            method of a connection, and :meth:`StructDispatcher.read`, are
            safe).
        timeout
            As for :meth:`request`.
        description
            Names the request in errors and logs.
        request
            Stored in :attr:`RequestTimeoutError.request` (default:
            ``description``).

        Returns
        -------
        object
            What ``receive()`` returned.

        Raises
        ------
        RequestTimeoutError
            If no reply came in time (see ``reply_timeout_policy``).
        ConnectionError
            If not connected, or the connection ends before the reply
            (``ConnectionLostError`` also if it ends part-way through one).
        """
        if timeout is None:
            timeout = self.timeout
        limit = math.inf if timeout is None else timeout
        conn = self.conn
        async with self._lock:
            if self._late:
                await self._discard_late_replies(receive)
            sent = False
            try:
                with anyio.move_on_after(limit):
                    try:
                        await send()
                        sent = True
                        return await receive()
                    except IncompleteReadError as exc:
                        raise ConnectionLostError(
                            f"{_who(conn)}: the connection ended part-way through "
                            f"the reply to {description}: {exc}"
                        ) from exc
            except anyio.get_cancelled_exc_class():
                # Cancelled from outside after the command went out: its
                # reply may still come.
                if sent:
                    await self._after_lost_reply(description, "was cancelled")
                raise
            assert timeout is not None
            if not sent:
                # Waiting for room in the send buffer: nothing was sent.
                raise RequestTimeoutError(
                    f"{_who(conn)}: could not send {description} within "
                    f"{_seconds(timeout)} (the peer is not reading); nothing "
                    "was sent",
                    description if request is None else request,
                    timeout,
                    False,
                )
            closed = await self._after_lost_reply(
                description, f"got no reply within {_seconds(timeout)}"
            )
            consequence = (
                "the connection was closed (reply_timeout_policy='close')"
                if closed
                else "the connection is kept (reply_timeout_policy='keep'); a "
                "late reply will be discarded before the next request"
            )
            raise RequestTimeoutError(
                f"{_who(conn)}: no reply to {description} within "
                f"{_seconds(timeout)}; {consequence}",
                description if request is None else request,
                timeout,
                closed,
            )

    async def _after_lost_reply(self, description: str, what: str) -> bool:
        """Apply the policy to a request whose reply will not be read.

        Returns True if the connection was closed.
        """
        if self.reply_timeout_policy == "close":
            self._log.warning(
                "%s: request %s %s; closing the connection",
                _who(self.conn),
                description,
                what,
            )
            await _drop_connection(self.conn)
            return True
        self._late += 1
        self._log.warning(
            "%s: request %s %s; keeping the connection",
            _who(self.conn),
            description,
            what,
        )
        return False

    async def _discard_late_replies(
        self, receive: Callable[[], Awaitable[Any]]
    ) -> None:
        """Discard replies to timed-out requests that are already buffered."""
        misses = 0
        # A read may yield to the scheduler once before it looks at what is
        # buffered, so only two empty attempts in a row mean nothing is there.
        while self._late and misses < 2:
            with anyio.move_on_after(0):
                try:
                    stale = await receive()
                except (ConnectionError, EOFError):
                    # The request that follows reports the connection's state.
                    return
                except ValueError as exc:  # a bad message: consumed, so counted
                    stale = exc
                misses = 0
                self._late -= 1
                self._log.warning(
                    "%s: discarding a late reply: %s", _who(self.conn), _shown(stale)
                )
                continue
            misses += 1


class _Pending(Generic[_M]):
    """A request waiting for its reply."""

    __slots__ = ("done", "error", "message", "reply")

    def __init__(self, message: _M) -> None:
        self.message = message
        self.done = anyio.Event()
        self.reply: _M | None = None
        self.error: BaseException | None = None


class _UnsolicitedIterator(Generic[_M]):
    """Async iterator over a correlator's unsolicited messages."""

    def __init__(self, correlator: Correlator[_M]) -> None:
        self._correlator = correlator

    def __aiter__(self) -> _UnsolicitedIterator[_M]:
        return self

    async def __anext__(self) -> _M:
        receive = self._correlator._receive
        if receive is None:
            raise StopAsyncIteration
        try:
            return await receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            correlator = self._correlator
            failure = correlator._reader_failure
            if failure is not None:
                raise ConnectionLostError(
                    f"{_who(correlator.conn)}: the Correlator's reader failed: "
                    f"{failure!r}"
                ) from failure
            raise StopAsyncIteration from None


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
        in :attr:`dropped_unsolicited`, logged), so a consumer that falls
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
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout={timeout!r} must be None or > 0")
        if not isinstance(max_id, int) or max_id < 1:
            raise ValueError(f"max_id={max_id!r} must be an int >= 1")
        self.conn = conn
        """The client or server requests go through."""
        self.timeout = timeout
        """Default time limit of a request, in seconds (None: no limit)."""
        self.dropped_unsolicited = 0
        """Unsolicited messages dropped because the queue was full."""
        self.late_replies = 0
        """Replies that matched no waiting request (logged and dropped)."""
        self._id_of = id_of
        self._request_id_of = request_id_of if request_id_of is not None else id_of
        self._read: Callable[[], Awaitable[_M]] = (
            read if read is not None else conn.read_json
        )
        self._write: Callable[[_M], Awaitable[object]] = (
            write if write is not None else conn.write_json
        )
        self._on_unsolicited = on_unsolicited
        self._max_unsolicited = max_unsolicited
        self._overflow = unsolicited_overflow
        self._max_id = max_id
        self._last_id = 0
        self._pending: dict[Hashable, _Pending[_M]] = {}
        self._late_ids: dict[Hashable, None] = {}  # ordered set, bounded
        self._state: Literal["new", "running", "stopped"] = "new"
        # Why the reader stopped: raised by later requests (a fresh error each).
        self._stop_reason: BaseException | None = None
        # An unexpected reader failure, re-raised by ``unsolicited()``.
        self._reader_failure: BaseException | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._send: MemoryObjectSendStream[_M] | None = None
        self._receive: MemoryObjectReceiveStream[_M] | None = None
        self._queue_full = False
        self._log = conn.log.getChild("Correlator")

    # -- life cycle -----------------------------------------------------------

    async def __aenter__(self: _Self) -> _Self:
        if self._state != "new":
            raise RuntimeError("a Correlator can only be entered once")
        self._state = "running"
        if self._on_unsolicited is None:
            self._send, self._receive = anyio.create_memory_object_stream[Any](
                self._max_unsolicited
            )
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
                NotConnectedError(f"{_who(self.conn)}: the Correlator was closed"),
            )
            if self._receive is not None:
                self._receive.close()

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
        if self._send is not None:
            self._send.close()

    def _no_reply_error(self, reply_id: Hashable, message: Any) -> BaseException:
        reason = self._stop_reason
        assert reason is not None
        # The reason names the connection: "Client (host:port): why".
        text = f"{reason}; no reply to request {reply_id!r} ({_shown(message)})"
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
                    f"the id of request {_shown(message)} is None: a request "
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
                f"{_who(self.conn)}: could not send request {reply_id!r} "
                f"({_shown(message)}) within {_seconds(timeout)} (the peer is not "
                "reading); nothing was sent",
                message,
                timeout,
                False,
            )
        assert timeout is not None
        raise RequestTimeoutError(
            f"{_who(self.conn)}: no reply to request {reply_id!r} "
            f"({_shown(message)}) within {_seconds(timeout)}; the connection is "
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
        if self._on_unsolicited is not None:
            raise RuntimeError(
                "unsolicited messages go to on_unsolicited, not to unsolicited()"
            )
        if self._state == "new":
            raise RuntimeError("the Correlator was not entered (async with)")
        return _UnsolicitedIterator(self)

    async def _deliver_unsolicited(self, message: _M) -> None:
        callback = self._on_unsolicited
        if callback is not None:
            try:
                await callback(message)
            except Exception:
                self._log.exception("on_unsolicited failed for %s", _shown(message))
            return
        send = self._send
        assert send is not None and self._receive is not None
        if self._overflow == "wait":
            await send.send(message)
            return
        try:
            send.send_nowait(message)
            self._queue_full = False
            return
        except anyio.WouldBlock:
            pass
        # Full: drop the oldest queued message to make room.
        try:
            self._receive.receive_nowait()
        except anyio.WouldBlock:  # pragma: no cover - emptied meanwhile
            pass
        self.dropped_unsolicited += 1
        if not self._queue_full:
            self._queue_full = True
            self._log.warning(
                "%s: the unsolicited queue is full (%d messages): dropping the "
                "oldest (%d dropped so far)",
                _who(self.conn),
                self._max_unsolicited,
                self.dropped_unsolicited,
            )
        send.send_nowait(message)

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
                        "%s: skipped a bad message: %s", _who(self.conn), exc
                    )
                    continue
                except ValueError as exc:
                    if getattr(exc, "resynchronised", False):
                        self._log.warning(
                            "%s: skipped a bad message: %s", _who(self.conn), exc
                        )
                        continue
                    raise
                await self._dispatch(message)
        except Exception as exc:
            self._log.error(
                "%s: the Correlator's reader failed", _who(self.conn), exc_info=exc
            )
            self._reader_failure = exc
            self._stop(
                ConnectionLostError(
                    f"{_who(self.conn)}: the Correlator's reader failed: {exc!r}"
                )
            )

    async def _dispatch(self, message: _M) -> None:
        try:
            reply_id = self._id_of(message)
        except Exception:
            self._log.exception(
                "id_of failed for %s; treating it as unsolicited", _shown(message)
            )
            reply_id = None
        if reply_id is None:
            await self._deliver_unsolicited(message)
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
                _who(self.conn),
                reply_id,
                _shown(message),
            )
        else:
            self._log.warning(
                "%s: dropped a reply to no known request (id %r): %s",
                _who(self.conn),
                reply_id,
                _shown(message),
            )
