"""``BaseClientOrServer``: the connection API shared by clients and servers.

Options and properties, the connection state and its reporting to
``connect_callback``, ``close``, ``wait_connected``, ``stats``, and the
connection that reads and writes go to. The read and write methods come from
:class:`~anytcpip._io_api.ReadWriteMixin`, the ``async with`` and the tasks
of each connection from :class:`~anytcpip._lifecycle.LifecycleMixin`.

Rationale
---------
State is recorded, not inferred: the current :class:`~anytcpip._channel.Channel`
says whether the connection is open, and it changes state the moment its
receive pump sees the peer leave. Every change of state is queued
synchronously, in the order it happens, and ``connect_callback`` is run for
each queued change by whichever task drains the queue first, under a lock,
skipping a change that would repeat the last reported state. So callbacks run
once per change and in order, even when a disconnect and the next connect
happen back to back. That bookkeeping lives in
:class:`~anytcpip._reporting.StateReporter`, which each instance composes.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio
import anyio.abc

from ._binding import Bindings, Connection, bind, bound_channel
from ._channel import Channel, ChannelState
from ._constants import (
    DEFAULT_ENCODING,
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_TERMINATOR,
)
from ._exceptions import NotConnectedError, prefixed
from ._io_api import ReadWriteMixin
from ._lifecycle import LifecycleMixin
from ._options import ConnectionOptions, check_async_callable
from ._reporting import StateReporter
from ._stats import ConnectionStats, Totals
from ._tcp_info import round_trip_time

__all__ = ["BaseClientOrServer", "ConnectCallback"]

ConnectCallback = Callable[[Any], Awaitable[None]]
"""An async callable taking the client or server whose state changed."""

_PACKAGE_LOGGER = logging.getLogger("anytcpip")


@functools.lru_cache(maxsize=256)
def _child_logger(log: logging.Logger, name: str) -> logging.Logger:
    """``log.getChild(name)``, remembered: it takes logging's global lock."""
    return log.getChild(name)


class BaseClientOrServer(LifecycleMixin, ReadWriteMixin):
    """The connection API shared by :class:`Client` and the servers.

    Not instantiated directly. Use ``async with`` to start (connect, or bind
    and listen) and to close.

    Parameters
    ----------
    log
        Parent logger; the instance logs to a child named after the class and
        ``name``. Default: the ``anytcpip`` logger.
    connect_callback
        Async callable ``callback(self)`` run once per change of connection
        state, in order. Exceptions it raises are logged, not propagated.
    name
        Name used in log and error messages.
    encoding
        Text encoding for ``read_str``/``write_str`` (strict).
    terminator
        Bytes that end a text or JSON message, read and written.
    read_terminator, write_terminator
        Override ``terminator`` for reading or for writing only, for
        protocols that read lines ending in CR but write CR LF.
    frame_prefix
        Size in bytes (1, 2 or 4) of the length prefix of ``read_frame`` /
        ``write_frame``.
    frame_byteorder
        Byte order of that prefix, ``"big"`` (network order) or ``"little"``.
    max_frame_size
        Largest frame payload ``read_frame`` accepts and ``write_frame`` sends.
        Default: ``DEFAULT_MAX_FRAME_SIZE`` (1 MiB), or the largest the prefix
        can express if smaller.
    max_line_length
        Longest terminated message, without terminator, that reads buffer.
    heartbeat_interval
        If set, send ``HEARTBEAT + terminator`` this often while connected.
    heartbeat_timeout
        If set, declare the connection lost when no bytes at all arrive for
        this many seconds.
    keepalive
        Enable TCP keepalive on every connection.
    ssl_context
        Use TLS with this context.

    Raises
    ------
    TypeError
        If ``connect_callback`` is not an async callable.
    ValueError
        If ``terminator`` is not non-empty bytes, ``encoding`` is unknown, or a
        number is out of range.
    """

    def __init__(
        self,
        *,
        log: logging.Logger | None = None,
        connect_callback: ConnectCallback | None = None,
        name: str = "",
        encoding: str = DEFAULT_ENCODING,
        terminator: bytes = DEFAULT_TERMINATOR,
        read_terminator: bytes | None = None,
        write_terminator: bytes | None = None,
        frame_prefix: Literal[1, 2, 4] = 4,
        frame_byteorder: Literal["big", "little"] = "big",
        max_frame_size: int | None = None,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        heartbeat_interval: float | None = None,
        heartbeat_timeout: float | None = None,
        keepalive: bool = True,
        ssl_context: Any = None,
    ) -> None:
        check_async_callable("connect_callback", connect_callback)
        options = ConnectionOptions.create(
            encoding=encoding,
            terminator=terminator,
            read_terminator=read_terminator,
            write_terminator=write_terminator,
            frame_prefix=frame_prefix,
            frame_byteorder=frame_byteorder,
            max_frame_size=max_frame_size,
            max_line_length=max_line_length,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            keepalive=keepalive,
        )
        self._options = options
        self._name = name
        base_log = log if log is not None else _PACKAGE_LOGGER
        child = type(self).__name__ + (f".{name}" if name else "")
        self._log = _child_logger(base_log, child)
        self._connect_callback = connect_callback
        # Copies of the options read on hot paths (one attribute lookup each).
        self._encoding = options.encoding
        self._terminator = options.read_terminator
        self._write_terminator = options.write_terminator
        self._frame_prefix = options.frame_prefix
        self._frame_byteorder = options.frame_byteorder
        self._max_frame_size = options.max_frame_size
        self._max_line_length = options.max_line_length
        # Heartbeat lines are skipped by text reads on a side with heartbeats.
        self._skip = options.skipped_line
        self._into_view: memoryview | None = None
        # Set by _binding.bind once a task is bound to one of its connections.
        self._has_bindings = False
        # Totals of the connections that ended (see ``stats``).
        self._totals = Totals()
        self.heartbeat_interval: float | None = options.heartbeat_interval
        self.heartbeat_timeout: float | None = options.heartbeat_timeout
        self.keepalive: bool = options.keepalive
        self.ssl_context = ssl_context

        self._channel: Channel | None = None
        self._should_be_connected = False
        self._entered = False
        self._closed = False
        self._task_group: anyio.abc.TaskGroup | None = None
        # Connection-state changes, queued in order and reported to the callback.
        # Reports run a callback only if there is one to run: the user's, or
        # a subclass's override of the call_connect_callback hook.
        hooked = (
            type(self).call_connect_callback
            is not BaseClientOrServer.call_connect_callback
        )
        self._reporter = StateReporter(
            self.call_connect_callback
            if connect_callback is not None or hooked
            else None,
            self._log,
        )
        # Set when this instance can never connect again (reconnect gave up).
        self._failure: BaseException | None = None

    # -- properties -----------------------------------------------------------

    @property
    def name(self) -> str:
        """Name used in log and error messages."""
        return self._name

    @property
    def log(self) -> logging.Logger:
        """Logger of this instance."""
        return self._log

    @property
    def encoding(self) -> str:
        """Text encoding of ``read_str``/``write_str``."""
        return self._encoding

    @property
    def terminator(self) -> bytes:
        """Bytes that end a text or JSON message (the read terminator)."""
        return self._terminator

    @property
    def read_terminator(self) -> bytes:
        """Bytes that end a message read by ``read_str``/``read_json``."""
        return self._terminator

    @property
    def write_terminator(self) -> bytes:
        """Bytes appended by ``write_str``/``write_json`` (and to heartbeats)."""
        return self._write_terminator

    @property
    def stats(self) -> ConnectionStats:
        """A snapshot of traffic counters and connection history."""
        totals = self._totals
        sent, received = totals.bytes_sent, totals.bytes_received
        last = totals.last_received
        channel = self._channel
        rtt = None
        messages_sent, messages_received = (
            totals.messages_sent,
            totals.messages_received,
        )
        if channel is not None:  # the last connection, read live
            sent += channel.bytes_sent
            received += channel.bytes_received
            messages_sent += channel.messages_sent
            messages_received += channel.messages_received
            last = channel.last_received or last
        if channel is not None and channel.is_open:
            rtt = round_trip_time(channel.stream)
        return ConnectionStats(
            bytes_sent=sent,
            bytes_received=received,
            messages_sent=messages_sent,
            messages_received=messages_received,
            connects=totals.connects,
            disconnects=totals.disconnects,
            reconnect_attempts=self._reconnect_attempts(),
            rejected_clients=self._rejected_clients(),
            last_received=last,
            round_trip_time=rtt,
        )

    def _reconnect_attempts(self) -> int:
        """Return the connection attempts so far, for ``stats`` (hook: Client)."""
        return 0

    def _rejected_clients(self) -> int:
        """Return the clients turned away so far, for ``stats`` (hook: servers)."""
        return 0

    @property
    def max_line_length(self) -> int:
        """Longest terminated message (without terminator) a read will buffer."""
        return self._max_line_length

    @property
    def connected(self) -> bool:
        """True while a connection is open.

        Turns False the moment the peer closes or resets the connection, or
        this end closes it. Inside ``connect_callback`` it is the state being
        reported, even if the connection has changed again since (the next
        call will report that), so a callback always sees a consistent state.
        """
        reported = self._reporter.reported_state_for_current_task()
        if reported is not None:
            return reported
        channel = self._channel
        return channel is not None and channel.is_open

    @property
    def should_be_connected(self) -> bool:
        """True from a connection until *this* end closes it.

        ``should_be_connected and not connected`` means the peer dropped us.
        """
        return self._should_be_connected

    def _describe(self) -> str:
        return (
            f"{type(self).__name__} {self._name!r}"
            if self._name
            else type(self).__name__
        )

    # -- closing (the ``async with`` is in LifecycleMixin) ----------------------

    async def close(self) -> None:
        """Close the connection (and, for servers, the listener); idempotent.

        If a connection was up, ``connect_callback`` has run before this
        returns.
        """
        await self._close_connection()
        try:
            await self._report()
        finally:
            self._notify_state_changed()

    async def _close_connection(self) -> None:
        """Mark this instance closed and close its connection; idempotent.

        The part of :meth:`close` that must finish even when the caller is
        cancelled: the channel closes its socket shielded.
        """
        self._closed = True
        self._should_be_connected = False
        channel = self._channel
        if channel is not None:
            await channel.aclose()

    # -- connection state and callbacks -------------------------------------

    def _adopt(self, stream: anyio.abc.ByteStream, peer: str | None = None) -> Channel:
        """Make ``stream`` the current connection and queue the change.

        The connection's description (``Channel.who``, the prefix of its log
        and error messages) is built here, and only here: this end's
        (:meth:`_describe`), followed by ``peer`` if given (which client of
        a server, say).
        """
        who = self._describe() if peer is None else prefixed(self._describe(), peer)
        channel = Channel(
            stream,
            who=who,
            max_line_length=self._max_line_length,
            log=self._log,
            on_down=self._on_channel_down,
        )
        previous, self._channel = self._channel, channel
        if previous is not None:
            self._add_to_totals(previous)
        self._should_be_connected = True
        self._totals.connects += 1
        self._reporter.queue(True)
        self._log.info("%s: connected", who)
        return channel

    def _add_to_totals(self, channel: Channel) -> None:
        """Add the counts of a connection that a new one replaced to the totals.

        Until then :attr:`stats` reads the last connection's counts live,
        so that reads and sends after it ended (messages still buffered,
        what was queued) count too.
        """
        totals = self._totals
        totals.bytes_sent += channel.bytes_sent
        totals.bytes_received += channel.bytes_received
        totals.messages_sent += channel.messages_sent
        totals.messages_received += channel.messages_received
        totals.last_received = channel.last_received or totals.last_received

    def _on_channel_down(self, channel: Channel) -> None:
        self._totals.disconnects += 1
        self._reporter.queue(False)
        self._log.info("%s: %s", channel.who, channel.reason)

    def _notify_state_changed(self) -> None:
        """Wake the tasks waiting for a change of state (``wait_connected``)."""
        self._reporter.notify()

    async def _report(self) -> None:
        """Run ``connect_callback`` for each queued state change, in order.

        See :class:`~anytcpip._reporting.StateReporter`.
        """
        await self._reporter.report()

    async def call_connect_callback(self) -> None:
        """Call ``connect_callback`` (if any), logging any exception it raises."""
        callback = self._connect_callback
        if callback is None:
            return
        try:
            await callback(self)
        except Exception:
            self._log.exception("connect_callback failed")

    async def _wait_state(self, predicate: Callable[[], bool], what: str) -> None:
        while not predicate():
            if self._closed:
                raise NotConnectedError(f"{self._describe()}: closed while {what}")
            if self._failure is not None:
                raise self._failure
            if not self._reporter.started:
                raise NotConnectedError(f"{self._describe()}: not started")
            await self._reporter.wait_changed()

    async def wait_connected(self) -> None:
        """Return once connected (at once if already connected).

        Raises
        ------
        NotConnectedError
            If this instance is closed (or not started) instead.
        """
        await self._wait_state(lambda: self.connected, "waiting for a connection")

    # -- the connection that reads and writes go to ---------------------------

    @property
    def connection(self) -> Connection:
        """The handle to one connection (the current one, or the task's own).

        In a task that the library runs for a connection (the read loop of a
        :class:`OneClientReadLoopServer`, and tasks it starts), this is that
        connection, even after it has ended; elsewhere it is the current (or
        last) connection. The handle has the read/write API and
        ``connected``, and refuses I/O with ``ConnectionError`` once its
        connection has ended, so a reply sent through it never reaches a
        later client. Hand it to a task that answers a command later.

        Raises
        ------
        NotConnectedError
            If there has never been a connection.
        """
        return Connection(self, self._require_channel())

    def _require_channel(self) -> Channel:
        """Return the connection that I/O of the current task goes to.

        The connection the task is bound to (see :mod:`anytcpip._binding`),
        even once it has ended (it then raises ``ConnectionError``), else the
        current one.
        """
        channel = self._channel
        if self._has_bindings:
            bound = bound_channel(self)
            if bound is not None:
                return bound
        if channel is None:
            if self._closed:
                raise NotConnectedError(f"{self._describe()}: closed by this end")
            raise NotConnectedError(f"{self._describe()}: not connected")
        return channel

    def _bind(self, channel: Channel) -> contextvars.Token[Bindings]:
        """Bind the current context to ``channel`` of this instance.

        The tasks of ``_start_channel_tasks`` run so bound (see
        :mod:`anytcpip._binding`); their I/O goes to :meth:`_require_channel`.
        """
        return bind(self, channel)

    def _unread_after_end(self) -> bool:
        """Return True if the peer has left and what it sent is not all read.

        Hook for ``asyncio_compat``: lsst.ts.tcpip's read loop goes on until
        that data has been read.
        """
        channel = self._channel
        return (
            channel is not None
            and not channel.is_open
            and channel.state is not ChannelState.CLOSED
            and bool(len(channel.frames))
        )

    # -- hooks for the layers above ----------------------------------------------

    async def _end_connection(self) -> None:
        """End the current connection, as a request that gave up on it does.

        Closes this instance; a server overrides it to drop only the client
        and keep listening (``close_client``).
        """
        await self.close()
