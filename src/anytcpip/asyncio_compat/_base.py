"""``BaseClientOrServer``: lsst.ts.tcpip's life cycle on top of a native instance.

Rationale
---------
lsst.ts.tcpip starts work in constructors and reports it through futures;
anytcpip starts work in ``async with``, whose task group and cancel scopes
must be entered and left by one task. So each compatibility instance owns
one native instance and one asyncio task, the *runner*, created by the
constructor: the runner enters the native ``async with``, resolves
``start_task``, waits until ``close`` asks it to stop, leaves the
``async with`` and resolves ``done_task``.

Reads and writes are delegated to the native instance from whichever task
calls them; nothing here parses or buffers bytes. The native
``connect_callback`` is a method of this class that updates the lsst-style
state (``should_be_connected``, a server's ``connected_task``, ...) and then
runs :meth:`BaseClientOrServer.call_connect_callback`.

``close`` called from inside the runner's own tasks (a connect callback, a
read loop) cannot wait for the runner to finish, since the runner waits for
those tasks: it closes the connection and asks the runner to stop, and
``done_task`` is resolved a moment later. A context variable set by the
runner, inherited by every task it starts, tells the two cases apart.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import inspect
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from .._connection import BaseClientOrServer as _NativeBase
from .._constants import DEFAULT_ENCODING, DEFAULT_TERMINATOR, RECEIVE_CHUNK_SIZE
from ._constants import DEFAULT_MONITOR_CONNECTION_INTERVAL

__all__ = ["BaseClientOrServer", "ConnectCallbackType"]

_Self = TypeVar("_Self", bound="BaseClientOrServer")

ConnectCallbackType = Callable[[Any], Awaitable[None]]
"""An async callable taking the client or server whose state changed."""

# The compatibility instance whose runner task (or one of its descendants) is
# running, if any.
_RUNNER_OF: contextvars.ContextVar[object] = contextvars.ContextVar(
    "anytcpip_asyncio_compat_runner_of", default=None
)

# Keywords passed through to the native constructor unchanged.
_NATIVE_KEYWORDS = frozenset(
    {"max_line_length", "keepalive", "ssl_context", "heartbeat_interval"}
)


def _is_async_callable(obj: object) -> bool:
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004
    )


class BaseClientOrServer(abc.ABC):
    """Base class of :class:`Client` and the servers (lsst.ts.tcpip 2.x API).

    Construct it with an event loop running: the constructor starts the work
    (connecting, or binding and listening) in a background task. Always
    ``await start_task`` before using an instance.

    Parameters
    ----------
    log
        Parent logger; the instance logs to a child of it named after the
        class and ``name``. None: the ``anytcpip`` logger.
    connect_callback
        Async function ``callback(self)`` called when the connection state
        changes (once per change, in order). Exceptions it raises are logged.
    monitor_connection_interval
        Accepted for compatibility and ignored: anytcpip notices a lost
        connection as it happens, without polling.
    name
        Name used in log messages.
    encoding
        Encoding of ``read_str``/``write_str``/``read_json``/``write_json``.
    terminator
        Terminator of ``read_str``/``write_str``/``read_json``/``write_json``.
    **kwargs
        ``limit`` (the longest line ``readuntil`` will buffer, as in
        ``asyncio.open_connection``), ``ssl`` (an ``ssl.SSLContext``, or True
        for a client), and the anytcpip keywords ``max_line_length``,
        ``keepalive``, ``ssl_context`` and ``heartbeat_interval``.

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
        Done when the client has connected, or the server is listening.
    done_task : asyncio.Future
        Done when this instance is closed and no longer usable.

    Raises
    ------
    TypeError
        If ``connect_callback`` is not async, or a keyword is not supported.
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
        encoding: str = DEFAULT_ENCODING,
        terminator: bytes = DEFAULT_TERMINATOR,
        **kwargs: Any,
    ) -> None:
        if connect_callback is not None and not _is_async_callable(connect_callback):
            raise TypeError(
                f"connect_callback={connect_callback!r} must be asynchronous"
            )
        if not isinstance(terminator, bytes) or not terminator:
            raise ValueError(f"terminator={terminator!r} must be non-empty bytes")
        try:
            " ".encode(encoding)
        except (LookupError, TypeError) as exc:
            raise ValueError(f"encoding={encoding!r} is not a valid encoding") from exc
        self._loop = asyncio.get_running_loop()
        parent = log if log is not None else logging.getLogger("anytcpip")
        self.log = parent.getChild(f"{type(self).__name__}({name})")
        self._connect_callback = connect_callback
        self.monitor_connection_interval = monitor_connection_interval
        self.name = name
        self.encoding = encoding
        self.terminator = terminator
        self.should_be_connected = False
        # The state reported by the last call of the connect callback.
        self._was_connected = False
        self._native_options = self._translate_options(kwargs)
        self.start_task: asyncio.Future[None] = self._loop.create_future()
        self.done_task: asyncio.Future[None] = self._loop.create_future()
        self._native: _NativeBase | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stop_requested = asyncio.Event()

    # -- construction helpers for subclasses --------------------------------

    def _translate_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Map lsst.ts.tcpip's extra keywords to native ones."""
        options: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key == "limit":
                options["max_line_length"] = value
            elif key == "ssl":
                if value is True:
                    value = ssl.create_default_context()
                if value not in (None, False):
                    options["ssl_context"] = value
            elif key in _NATIVE_KEYWORDS or key in self._extra_native_keywords():
                options[key] = value
            else:
                raise TypeError(
                    f"{type(self).__name__}() does not support the keyword {key!r}"
                )
        return options

    def _extra_native_keywords(self) -> frozenset[str]:
        """Further native keywords a subclass passes through."""
        return frozenset()

    def _native_common(self) -> dict[str, Any]:
        """Keyword arguments shared by every native constructor."""
        return {
            "log": self.log,
            "connect_callback": self._on_native_state,
            "name": self.name,
            "encoding": self.encoding,
            "terminator": self.terminator,
            **self._native_options,
        }

    def _start(self, native: _NativeBase) -> None:
        """Adopt ``native`` and start the runner task that drives it."""
        self._native = native
        self._runner = self._loop.create_task(
            self._run(native), name=f"anytcpip.asyncio_compat {self.log.name}"
        )
        self.start_task.add_done_callback(self._start_task_done)

    def _start_task_done(self, future: asyncio.Future[None]) -> None:
        # Cancelling start_task cancels a start in progress, as in lsst.ts.tcpip.
        if future.cancelled() and self._runner is not None:
            self._runner.cancel()

    def _mark_closed(self) -> None:
        """Make this instance closed without ever starting (``Client(host="")``)."""
        self.start_task.set_result(None)
        self.done_task.set_result(None)

    async def _run(self, native: _NativeBase) -> None:
        _RUNNER_OF.set(self)
        try:
            async with native:
                self._on_started()
                if not self.start_task.done():
                    self.start_task.set_result(None)
                await self._stop_requested.wait()
        except Exception as exc:
            if self.start_task.done():
                self.log.exception("background task failed")
            else:
                self.start_task.set_exception(exc)
        finally:
            self._finish()

    def _finish(self) -> None:
        """Resolve ``start_task`` (cancelled, if still pending) and ``done_task``."""
        if not self.start_task.done():
            self.start_task.cancel()
        if not self.done_task.done():
            self.done_task.set_result(None)

    def _on_started(self) -> None:  # noqa: B027 - optional hook
        """Run in the runner once started, before ``start_task`` is set."""

    def _on_state_change(self, connected: bool) -> None:  # noqa: B027
        """Run for each change of state, before ``connect_callback``."""

    async def _on_native_state(self, native: Any) -> None:
        connected = self.connected  # inside the callback: the reported state
        if connected:
            self.should_be_connected = True
        self._on_state_change(connected)
        await self.call_connect_callback()

    async def _shutdown(self) -> None:
        """Close the native instance, stop the runner and resolve ``done_task``."""
        runner, native = self._runner, self._native
        if runner is None or native is None:
            self._finish()
            return
        inside = _RUNNER_OF.get() is self
        if self.start_task.done() or inside:
            await native.close()
        else:
            runner.cancel()  # abandon a start in progress
        self._stop_requested.set()
        if not inside:
            if not runner.done():
                await asyncio.wait([runner])
            self._finish()  # the runner may have been cancelled before it ran

    # -- state ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while connected.

        Turns False as soon as the peer closes or resets the connection, or
        this end closes it. Inside ``connect_callback`` it is the state being
        reported.
        """
        native = self._native
        return native is not None and native.connected

    async def call_connect_callback(self) -> None:
        """Call ``connect_callback`` if the state changed since the last call.

        Always safe to call. An exception raised by the callback is logged.
        """
        connected = self.connected
        if connected == self._was_connected:
            return
        self._was_connected = connected
        callback = self._connect_callback
        if callback is None:
            return
        try:
            await callback(self)
        except Exception:
            self.log.exception("connect_callback failed")

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
        return native

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
        if n != -1:
            return await connection.read(n)
        chunks = []
        while chunk := await connection.read(RECEIVE_CHUNK_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)

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
        return await self._connection().readexactly(n)

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
        return await self._connection().readline()

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
        return await self._connection().readuntil(separator)

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
        await self._connection().read_into(struct)

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
        data = await self.read_str()
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise json.JSONDecodeError(
                f"{data!r} is not valid json: {exc.msg}", exc.doc, exc.pos
            ) from exc

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
