"""``BaseClientOrServer``: lsst.ts.tcpip 2.2's life cycle on top of a native instance.

Starting, closing, the connection state and its reporting through
``call_connect_callback``; the read and write methods are in ``_io_api``.

Rationale
---------
lsst.ts.tcpip 2.2 starts work in constructors: ``start_task`` *is* the task
running :meth:`BaseClientOrServer.start`, which subclasses override (to start
a read loop after ``await super().start()``, say). anytcpip starts work in
``async with``, whose task group and cancel scopes must be entered and left
by one task. So ``start`` builds the native instance and hands it to a
*runner* task, which enters the native ``async with``, reports back, waits
until this instance is closed, and leaves it.

Every public or documented-overridable method of 2.2 is called where 2.2
calls it, with the same arguments: ``start(**kwargs)`` from the constructor;
``call_connect_callback()`` on each change of state (the native
``connect_callback`` is a method of this class that calls it); ``close``,
``basic_close``, ``close_client`` and ``basic_close_client`` from each other
in 2.2's order. Where 2.2 returns without waiting (closing what never
connected), so does this class: real code cancels its own task and then
closes, relying on that.

The read and write methods come from :class:`ReadWriteMixin` (in
``_io_api``), which delegates them to the native instance that
``_connection`` returns.

A task started while a connection is reported (a read loop started from
``call_connect_callback``, say) is bound to that connection: once it has
ended, that task's reads, writes and ``close_client`` raise
``ConnectionError`` or do nothing, instead of reaching the next client. A
context variable set around ``call_connect_callback`` carries the binding
into every task created there.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from .._connection import BaseClientOrServer as _NativeBase
from .._constants import DEFAULT_ENCODING, DEFAULT_TERMINATOR
from .._options import is_async_callable as _is_async_callable
from ._constants import DEFAULT_MONITOR_CONNECTION_INTERVAL
from ._io_api import ReadWriteMixin
from ._views import StreamReaderView, StreamWriterView

__all__ = ["BaseClientOrServer", "ConnectCallbackType"]

_Self = TypeVar("_Self", bound="BaseClientOrServer")

ConnectCallbackType = Callable[[Any], Awaitable[None]]
"""An async callable taking the client or server whose state changed."""

# The compatibility instance whose runner task (or one of its descendants,
# such as the native connect callback) is running, if any.
_RUNNER_OF: contextvars.ContextVar[object] = contextvars.ContextVar(
    "anytcpip_asyncio_compat_runner_of", default=None
)

# (instance, connection number) of the connection a task was started for.
_BOUND: contextvars.ContextVar[tuple[object, int] | None] = contextvars.ContextVar(
    "anytcpip_asyncio_compat_bound", default=None
)


def done_future() -> asyncio.Future[None]:
    """Return a future that is already done (2.2's ``utils.make_done_future``)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def unsupported(owner: object, key: str, what: str) -> TypeError:
    """Return the error for a keyword that anytcpip cannot honour."""
    return TypeError(
        f"{type(owner).__name__}: the keyword {key!r} of {what} is not supported "
        "by anytcpip.asyncio_compat (see docs/migrating.md)"
    )


class BaseClientOrServer(ReadWriteMixin, abc.ABC):
    """Base class of :class:`Client` and the servers (lsst.ts.tcpip 2.2 API).

    Construct it with an event loop running: the constructor creates
    ``start_task``, a task running :meth:`start` (connect, or bind and
    listen). Always ``await start_task`` before using an instance.

    Parameters
    ----------
    log
        Parent logger; the instance logs to a child of it named after the
        class and ``name``. None: the ``anytcpip`` logger.
    connect_callback
        Async function ``callback(self)`` called by
        :meth:`call_connect_callback` when the connection state changes.
        Exceptions it raises are logged.
    monitor_connection_interval
        Accepted for compatibility and ignored: anytcpip notices a lost
        connection as it happens, without polling.
    name
        Name used in log messages.
    do_start
        Create ``start_task`` running :meth:`start` (the default); if False,
        ``start_task`` is a plain future and nothing starts.
    encoding
        Encoding of ``read_str``/``write_str``/``read_json``/``write_json``.
    terminator
        Terminator of ``read_str``/``write_str``/``read_json``/``write_json``.
    **kwargs
        Keyword arguments for :meth:`start` (checked there, as in 2.2).

    Attributes
    ----------
    log : logging.Logger
        A child of the ``log`` argument.
    name, encoding, terminator
        The constructor arguments; ``encoding`` and ``terminator`` may be
        changed at any time.
    should_be_connected : bool
        Set True when a connection is made and False when this end closes it
        with ``close`` (or a server's ``close_client``). ``should_be_connected
        and not connected`` means the connection was lost.
    start_task : asyncio.Future
        The task running :meth:`start`: done when the client has connected,
        or the server is listening.
    done_task : asyncio.Future
        Done when this instance is closed and no longer usable.

    Raises
    ------
    TypeError
        If ``connect_callback`` is not async.
    ValueError
        If ``terminator`` is not bytes or ``encoding`` is unknown.
    RuntimeError
        If no event loop is running.
    """

    def __init__(
        self,
        *,
        log: logging.Logger | None,
        connect_callback: ConnectCallbackType | None = None,
        monitor_connection_interval: float = DEFAULT_MONITOR_CONNECTION_INTERVAL,
        name: str = "",
        do_start: bool = True,
        encoding: str = DEFAULT_ENCODING,
        terminator: bytes = DEFAULT_TERMINATOR,
        **kwargs: Any,
    ) -> None:
        if connect_callback is not None and not _is_async_callable(connect_callback):
            raise TypeError(
                f"connect_callback={connect_callback!r} must be asynchronous"
            )
        if not isinstance(terminator, bytes):
            raise ValueError(f"terminator={terminator!r} must be bytes")
        try:
            " ".encode(encoding)
        except (LookupError, TypeError) as exc:
            raise ValueError(f"encoding={encoding!r} is not a valid encoding") from exc
        self._loop = asyncio.get_running_loop()
        parent = log if log is not None else logging.getLogger("anytcpip")
        self.log: logging.Logger = parent.getChild(f"{type(self).__name__}({name})")
        self._connect_callback = connect_callback
        self.monitor_connection_interval = monitor_connection_interval
        self.name = name
        self.encoding = encoding
        self.terminator = terminator
        self.should_be_connected: bool = False
        # The state reported by the last call of call_connect_callback.
        self._was_connected = False
        # The state last handed to call_connect_callback by this class.
        self._dispatched = False
        # Connections made so far; the current one's number.
        self._generation = 0
        self._native: _NativeBase | None = None
        self._runner: asyncio.Task[None] | None = None
        self._started = False  # the native instance is entered
        self._stop_requested = asyncio.Event()
        self._stream: Any = None  # the native connection's anyio stream
        self._reader_view: StreamReaderView | None = None
        self._writer_view: StreamWriterView | None = None
        self.done_task: asyncio.Future[None] = self._loop.create_future()
        self.start_task: asyncio.Future[None] = (
            self._loop.create_task(self.start(**kwargs))
            if do_start
            else self._loop.create_future()
        )

    # -- starting ---------------------------------------------------------------

    @abc.abstractmethod
    async def start(self, **kwargs: Any) -> None:
        """Connect (a client) or start listening (a server).

        Called once by the constructor, as ``start_task``; public so that
        subclasses can override it (call ``await super().start(**kwargs)``).

        Raises
        ------
        RuntimeError
            If already called.
        """

    async def _start_native(self, native: _NativeBase) -> None:
        """Enter ``native`` in a runner task; return once it is started.

        Raises whatever entering raised (``OSError`` for a refused
        connection, ...). Cancelling the caller abandons the start.
        """
        self._native = native
        entered: asyncio.Future[None] = self._loop.create_future()
        self._runner = self._loop.create_task(
            self._run(native, entered),
            name=f"anytcpip.asyncio_compat {self.log.name}",
        )
        try:
            await entered
        except asyncio.CancelledError:
            self._runner.cancel()
            raise
        self._started = True

    async def _run(self, native: _NativeBase, entered: asyncio.Future[None]) -> None:
        _RUNNER_OF.set(self)
        try:
            async with native:
                if entered.done():  # the start was abandoned meanwhile
                    return
                entered.set_result(None)
                await self._stop_requested.wait()
        except asyncio.CancelledError:
            if not entered.done():
                entered.cancel()
            raise
        except Exception as exc:
            if entered.done():
                self.log.exception("background task failed")
            else:
                entered.set_exception(exc)

    def _stop_runner(self) -> asyncio.Task[None] | None:
        """Ask the runner to leave the native ``async with``; return it if running.

        Synchronous: a start still in progress is cancelled, not waited for.
        """
        self._stop_requested.set()
        if not self._started and not self.start_task.done():
            self.start_task.cancel()  # abandon a start in progress
        runner = self._runner
        if runner is None or runner.done():
            return None
        return runner

    async def _shutdown_native(self) -> None:
        """Close the native instance and wait for the runner to finish.

        Returns at once, without a scheduler switch, if nothing was started.
        From within the runner's own tasks (a callback, say), which it waits
        for, the native instance is closed and the runner finishes later.
        """
        runner = self._stop_runner()
        if runner is None or not self._started:
            return
        native = self._native
        if _RUNNER_OF.get() is self:
            if native is not None:
                await native.close()
        else:
            await asyncio.wait([runner])

    def _set_done(self) -> None:
        if not self.done_task.done():
            self.done_task.set_result(None)

    # -- closing ----------------------------------------------------------------

    @abc.abstractmethod
    async def _close_native_connection(self) -> None:
        """Close the current native connection (not a server's listener)."""

    async def _close_client(self) -> None:
        """Close the connection, if any; :meth:`call_connect_callback` reports it.

        As in 2.2: leaves ``should_be_connected`` alone, and returns at once
        (without a scheduler switch) when there is no connection to close. A
        task bound to a connection that has ended closes nothing.
        """
        if self._writer is None or self._is_stale():
            return
        try:
            await self._close_native_connection()
        except Exception:
            self.log.exception("Failed to close the connection; continuing.")
        finally:
            # Usually a no-op: closing reported the change already.
            await self._dispatch(self.connected)

    # -- connection state -------------------------------------------------------

    def _adopted(self, stream: Any) -> None:
        """Record the stream of a new native connection (see ``_views``)."""
        self._stream = stream

    async def _on_native_state(self, native: Any) -> None:
        """Update the state, then dispatch it (the native ``connect_callback``)."""
        connected = self.connected  # inside the callback: the reported state
        self._note_state(connected)
        if self._ready_to_report():
            await self._dispatch(connected)

    def _note_state(self, connected: bool) -> None:
        if connected:
            self._generation += 1
            self.should_be_connected = True
            if self._reader_view is None:
                self._reader_view = StreamReaderView(self)
            self._writer_view = StreamWriterView(self, self._generation)
        self._on_state_change(connected)

    def _ready_to_report(self) -> bool:
        """Return False while state changes must wait for ``start`` to report them."""
        return True

    def _on_state_change(self, connected: bool) -> None:
        """Run for each change of state, before ``call_connect_callback``."""

    async def _dispatch(self, connected: bool) -> None:
        """Call :meth:`call_connect_callback` once for each change of state.

        Tasks created meanwhile are bound to the current connection.
        """
        if connected == self._dispatched:
            return
        self._dispatched = connected
        token = _BOUND.set((self, self._generation))
        try:
            await self.call_connect_callback()
        finally:
            _BOUND.reset(token)

    def _unread_after_end(self) -> bool:
        """Return True if the peer has left and what it sent is not all read.

        lsst.ts.tcpip 2.2 counts such a connection as connected (its
        ``at_eof`` is False) until that data has been read.
        """
        native = self._native
        return (
            native is not None and native._unread_after_end() and not self._is_stale()
        )

    def _is_stale(self) -> bool:
        """Return True in a task bound to a connection that has been replaced."""
        bound = _BOUND.get()
        return bound is not None and bound[0] is self and bound[1] != self._generation

    def _connection(self) -> _NativeBase:
        """Return the native instance that I/O of the current task goes to.

        Overrides the hook of :class:`ReadWriteMixin`.
        """
        native = self._native
        if native is None:
            raise ConnectionError("Not connected")
        if self._is_stale():
            raise ConnectionError(
                f"{self.log.name}: the connection this task was started for has ended"
            )
        return native

    @property
    def connected(self) -> bool:
        """True while connected.

        Turns False as soon as the peer closes or resets the connection, or
        this end closes it. Inside ``connect_callback`` it is the state being
        reported.
        """
        native = self._native
        return native is not None and native.connected

    @property
    def _reader(self) -> StreamReaderView | None:
        """A stand-in for 2.2's private ``asyncio.StreamReader`` (see ``_views``).

        None until the first connection; kept after it ends, as in 2.2.
        """
        return self._reader_view

    @property
    def _writer(self) -> StreamWriterView | None:
        """A stand-in for 2.2's private ``asyncio.StreamWriter`` (see ``_views``).

        None unless connected.
        """
        return self._writer_view if self.connected else None

    async def call_connect_callback(self) -> None:
        """Call ``connect_callback`` if the state changed since the last call.

        Called on each change of state; always safe to call. An exception
        raised by the callback is logged.
        """
        connected = self.connected
        self.log.debug(
            "call_connect_callback: connected=%s; was_connected=%s",
            connected,
            self._was_connected,
        )
        if connected == self._was_connected:
            return
        self._was_connected = connected
        callback = self._connect_callback
        if callback is None:
            return
        try:
            await callback(self)
        except Exception:
            self.log.exception("connect_callback failed.")

    @abc.abstractmethod
    async def close(self) -> None:
        """Close this instance, making it unusable; idempotent."""

    async def __aenter__(self: _Self) -> _Self:
        await self.start_task
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()
