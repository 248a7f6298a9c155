"""Request/response, one command at a time: :class:`Requester`.

Rationale
---------
Many controllers (a dome controller, a prompt-terminated serial bridge) take
one command at a time: send a command, read the reply, under a lock so
concurrent callers take turns. Replies carry no id, so after a timeout nobody
can tell a late reply from the reply to the next command. :class:`Requester`
therefore makes the outcome a documented policy: ``"close"`` (the default)
drops the connection, so a late reply can never be taken for another
command's; ``"keep"`` keeps it and discards replies that are already waiting
when the next request starts.

This is a layer above the connection: it uses only the public read/write
methods of a client or server, and two hooks of the base class
(``_describe`` to name it, ``_end_connection`` to drop it).
:class:`RequestMixin` gives :class:`~anytcpip.Client`, the servers and the
in-memory connection their ``request``/``request_json`` methods from here, so
that the connection module does not import this one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import anyio

from ._connection import BaseClientOrServer
from ._exceptions import ConnectionLostError, IncompleteReadError, RequestTimeoutError
from ._options import check_timeout
from ._streams import ctypes_repr

__all__ = ["RequestMixin", "Requester", "seconds", "shown"]

_T = TypeVar("_T")

_SHOWN = 160  # characters of a message quoted in errors and logs

ReplyTimeoutPolicy = Literal["close", "keep"]


def shown(message: object) -> str:
    """Describe a message for errors and logs (ctypes fields shown, truncated)."""
    text = ctypes_repr(message)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def seconds(timeout: float) -> str:
    """Format a timeout for messages: ``"1.5 s"``."""
    return f"{timeout:g} s"


async def _drop_connection(conn: BaseClientOrServer) -> None:
    """End the connection (a server keeps listening), even if cancelled."""
    with anyio.CancelScope(shield=True):
        await conn._end_connection()


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
        check_timeout("timeout", timeout)
        self.conn: BaseClientOrServer = conn
        """The client or server requests go through."""
        self.timeout: float | None = timeout
        """Default time limit of a request, in seconds (None: no limit)."""
        self.reply_timeout_policy: ReplyTimeoutPolicy = reply_timeout_policy
        """``"close"`` or ``"keep"``: see the class description."""
        self._lock = anyio.Lock()
        self._late = 0  # timed-out requests whose reply has not been seen
        # The connection (counted by ``stats.connects``) those requests went
        # out on: their replies cannot arrive on a later one.
        self._late_on = 0
        self._log = conn.log.getChild("Requester")

    @property
    def late_replies_expected(self) -> int:
        """Timed-out requests (policy ``"keep"``) whose reply was not seen yet.

        Counts only requests sent on the current connection: the replies to
        those sent on an earlier one cannot arrive any more.
        """
        if self.conn.stats.connects != self._late_on:
            return 0
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
            description=shown(message),
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
            description=shown(text),
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
            Stored in ``RequestTimeoutError.request`` (default:
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
            if self._late and conn.stats.connects != self._late_on:
                self._late = 0  # those replies went with the old connection
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
                            f"{conn._describe()}: the connection ended part-way "
                            f"through the reply to {description}: {exc}"
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
                    f"{conn._describe()}: could not send {description} within "
                    f"{seconds(timeout)} (the peer is not reading); nothing "
                    "was sent",
                    description if request is None else request,
                    timeout,
                    False,
                )
            closed = await self._after_lost_reply(
                description, f"got no reply within {seconds(timeout)}"
            )
            consequence = (
                "the connection was closed (reply_timeout_policy='close')"
                if closed
                else "the connection is kept (reply_timeout_policy='keep'); a "
                "late reply will be discarded before the next request"
            )
            raise RequestTimeoutError(
                f"{conn._describe()}: no reply to {description} within "
                f"{seconds(timeout)}; {consequence}",
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
                self.conn._describe(),
                description,
                what,
            )
            await _drop_connection(self.conn)
            return True
        self._late += 1
        self._late_on = self.conn.stats.connects
        self._log.warning(
            "%s: request %s %s; keeping the connection",
            self.conn._describe(),
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
                    "%s: discarding a late reply: %s",
                    self.conn._describe(),
                    shown(stale),
                )
                continue
            misses += 1


class RequestMixin(BaseClientOrServer):
    """Adds :meth:`request`, :meth:`request_json` and :attr:`requester`.

    Mixed into :class:`~anytcpip.Client`, :class:`~anytcpip.OneClientServer`
    (and so the read-loop server) and the in-memory connection of
    :mod:`anytcpip.testing`. A subclass of the base only to be typed as one:
    it adds no state but the requester, created on first use.
    """

    _requester: Requester | None = None

    @property
    def requester(self) -> Requester:
        """The :class:`Requester` behind :meth:`request` and :meth:`request_json`.

        Created on first use, with no default timeout and
        ``reply_timeout_policy="close"``; set its ``timeout`` and
        ``reply_timeout_policy`` attributes to change them.
        """
        if self._requester is None:
            self._requester = Requester(self)
        return self._requester

    async def request(self, message: str, timeout: float | None = None) -> str:
        """Send ``message`` with :meth:`write_str`; return the reply's :meth:`read_str`.

        For protocols with one outstanding command at a time: concurrent
        callers take turns. See :class:`Requester` (:attr:`requester`) for
        what a timeout does to the connection, and :class:`Correlator` for
        replies matched to commands by id.

        Parameters
        ----------
        message
            The command.
        timeout
            Seconds allowed for sending it and getting the reply; None uses
            ``requester.timeout`` (by default no limit).

        Raises
        ------
        RequestTimeoutError
            If no reply came in time (a :class:`TimeoutError`).
        ConnectionError
            If not connected, or the connection ends before the reply.
        """
        return await self.requester.request(message, timeout)

    async def request_json(self, obj: Any, timeout: float | None = None) -> Any:
        """Send ``obj`` with :meth:`write_json`; return the reply's :meth:`read_json`.

        As :meth:`request`, for JSON messages.

        Raises
        ------
        RequestTimeoutError
            If no reply came in time (a :class:`TimeoutError`).
        ConnectionError
            If not connected, or the connection ends before the reply.
        json.JSONDecodeError
            If the reply is not JSON, however hostile (it was consumed; the
            connection stays usable).
        """
        return await self.requester.request_json(obj, timeout)
