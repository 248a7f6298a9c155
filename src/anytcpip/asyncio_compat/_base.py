"""``BaseClientOrServer``: lsst.ts.tcpip 2.2's life cycle on top of a native instance.

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

Reads and writes are delegated to the native instance from whichever task
calls them; nothing here parses or buffers bytes. ``read_str``/``write_str``
are 2.2's two lines over the delegated ``readuntil``/``write``, because in
2.2 ``encoding`` and ``terminator`` are plain attributes that may change at
any time and heartbeat lines are returned, not skipped.

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
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from .. import _json
from .._connection import BaseClientOrServer as _NativeBase
from .._constants import DEFAULT_ENCODING, DEFAULT_TERMINATOR, RECEIVE_CHUNK_SIZE
from .._options import is_async_callable as _is_async_callable
from ._constants import DEFAULT_MONITOR_CONNECTION_INTERVAL
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


class BaseClientOrServer(abc.ABC):
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

    def _on_state_change(self, connected: bool) -> None:  # noqa: B027
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

    # -- reading ----------------------------------------------------------------

    def _connection(self) -> _NativeBase:
        native = self._native
        if native is None:
            raise ConnectionError("Not connected")
        if self._is_stale():
            raise ConnectionError(
                f"{self.log.name}: the connection this task was started for has ended"
            )
        return native

    @staticmethod
    def _at_eof_check(data: bytes, was_open: bool, wanted: bool) -> bytes:
        # 2.2 raises "Not connected" for a read that starts at the end of the
        # stream (``at_eof``: end seen, nothing buffered), and returns b"" only
        # for one that reaches it while waiting.
        if not data and wanted and not was_open:
            raise ConnectionError("Not connected")
        return data

    @staticmethod
    def _eof_error(exc: asyncio.IncompleteReadError, was_open: bool) -> BaseException:
        if not exc.partial and not was_open:
            error = ConnectionError("Not connected")
            error.__cause__ = exc
            return error
        return exc

    async def read(self, n: int) -> bytes:
        """Read up to ``n`` bytes.

        Parameters
        ----------
        n
            The most bytes to read. If -1, read until the other end closes
            the connection and return everything.

        Returns
        -------
        bytes
            The data; ``b""`` at end of stream.

        Raises
        ------
        ConnectionError
            If not connected.
        """
        connection = self._connection()
        was_open = connection.connected
        if n != -1:
            data = await connection.read(n)
        else:
            chunks = []
            while chunk := await connection.read(RECEIVE_CHUNK_SIZE):
                chunks.append(chunk)
            data = b"".join(chunks)
        return self._at_eof_check(data, was_open, n != 0)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Parameters
        ----------
        n
            The number of bytes to read.

        Returns
        -------
        bytes
            The data.

        Raises
        ------
        asyncio.IncompleteReadError
            If the peer closes first (``.partial`` holds what arrived).
        ConnectionError
            If not connected.
        """
        connection = self._connection()
        was_open = connection.connected
        try:
            return await connection.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise self._eof_error(exc, was_open) from None

    async def readline(self) -> bytes:
        r"""Read up to and including ``b"\n"``.

        Returns
        -------
        bytes
            The line; at end of stream the unterminated remainder (maybe
            ``b""``), as :meth:`asyncio.StreamReader.readline` does.

        Raises
        ------
        ConnectionError
            If not connected.
        """
        connection = self._connection()
        was_open = connection.connected
        return self._at_eof_check(await connection.readline(), was_open, True)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        r"""Read up to and including ``separator``.

        Parameters
        ----------
        separator
            The separator; ``b"\n"`` by default, as in asyncio (not
            ``terminator``).

        Returns
        -------
        bytes
            The data, separator included.

        Raises
        ------
        asyncio.IncompleteReadError
            If the peer closes before the separator.
        asyncio.LimitOverrunError
            If the data is longer than the limit; it stays buffered.
        ConnectionError
            If not connected.
        """
        connection = self._connection()
        was_open = connection.connected
        try:
            return await connection.readuntil(separator)
        except asyncio.IncompleteReadError as exc:
            raise self._eof_error(exc, was_open) from None

    async def read_into(self, struct: Any) -> None:
        """Fill a ``ctypes.Structure`` (any ctypes object) from the connection.

        Parameters
        ----------
        struct
            The structure to fill with ``ctypes.sizeof(struct)`` bytes.

        Raises
        ------
        asyncio.IncompleteReadError
            If the peer closes first.
        ConnectionError
            If not connected.
        """
        connection = self._connection()
        was_open = connection.connected
        try:
            await connection.read_into(struct)
        except asyncio.IncompleteReadError as exc:
            raise self._eof_error(exc, was_open) from None

    async def read_str(self) -> str:
        """Read until ``terminator``, strip it and decode with ``encoding``.

        Returns
        -------
        str
            The message, without the terminator.

        Raises
        ------
        asyncio.IncompleteReadError
            If the peer closes before the terminator.
        asyncio.LimitOverrunError
            If the message is longer than the limit.
        UnicodeError
            If the message cannot be decoded.
        ConnectionError
            If not connected.
        """
        terminator = self.terminator
        data = await self.readuntil(terminator)
        return data[: -len(terminator)].decode(self.encoding, errors="strict")

    async def read_json(self) -> Any:
        """Read a message with :meth:`read_str` and decode it as JSON.

        Returns
        -------
        typing.Any
            The decoded data.

        Raises
        ------
        json.JSONDecodeError
            If the message is not JSON; its text is quoted in the error.
        ConnectionError
            If not connected.
        """
        return _json.loads(await self.read_str())

    # -- writing ----------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Write ``data``; return once it is handed on (backpressure honoured).

        Parameters
        ----------
        data
            The bytes to write.

        Raises
        ------
        ConnectionError
            If not connected.
        """
        await self._connection().write(data)

    async def writelines(self, lines: Iterable[bytes]) -> None:
        """Write an iterable of bytes as one message.

        Parameters
        ----------
        lines
            The data to write.

        Raises
        ------
        ConnectionError
            If not connected.
        """
        await self._connection().writelines(lines)

    async def write_from(self, *structs: Any) -> None:
        """Write one or more ``ctypes.Structure`` (any ctypes objects).

        Parameters
        ----------
        *structs
            The structures to write, as one message.

        Raises
        ------
        ConnectionError
            If not connected.
        """
        await self._connection().write_from(*structs)

    async def write_str(self, line: str) -> None:
        """Encode ``line`` with ``encoding``, append ``terminator`` and write it.

        Parameters
        ----------
        line
            The text to write.

        Raises
        ------
        UnicodeError
            If ``line`` cannot be encoded.
        ConnectionError
            If not connected.
        """
        await self.write(line.encode(self.encoding, errors="strict") + self.terminator)

    async def write_json(self, data: Any) -> None:
        """Encode ``data`` as JSON and write it with :meth:`write_str`.

        Parameters
        ----------
        data
            Any JSON-serialisable data.

        Raises
        ------
        TypeError
            If ``data`` cannot be encoded as JSON.
        ConnectionError
            If not connected.
        """
        await self.write_str(json.dumps(data))
