"""A synchronous facade: anytcpip from scripts, notebooks and sync tests.

Each blocking object runs its async counterpart on a background event loop,
in a thread started by :func:`anyio.from_thread.start_blocking_portal`, and
waits for each call. It works the same in a plain script, in a Jupyter
notebook (whose own event loop is left alone) and in synchronous test code::

    from anytcpip import blocking

    with blocking.Client("127.0.0.1", 5000) as client:
        client.write_str("STATUS?")
        print(client.read_str(timeout=1))

Every read takes an optional ``timeout`` in seconds; when it expires,
:class:`TimeoutError` is raised and, as with the async API, no data is lost:
the next read sees the stream where the timed-out one left it.
``connect_callback`` is a plain (synchronous) callable here; it runs in the
event loop's thread, so keep it short.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Literal, TypeVar

import anyio
import anyio.from_thread

from ._client import Client as _AsyncClient
from ._connection import BaseClientOrServer as _AsyncBase
from ._server import OneClientServer as _AsyncServer
from ._stats import ConnectionStats

__all__ = ["Client", "OneClientServer"]

_T = TypeVar("_T")
_Self = TypeVar("_Self", bound="_BlockingBase")


async def _with_timeout(
    what: str, timeout: float | None, func: Callable[..., Awaitable[_T]], *args: Any
) -> _T:
    if timeout is None:
        return await func(*args)
    try:
        with anyio.fail_after(timeout):
            return await func(*args)
    except TimeoutError as exc:
        raise TimeoutError(f"{what} timed out after {timeout} s") from exc


class _BlockingBase:
    """Shared machinery: portal life cycle and the read/write methods."""

    _conn: _AsyncBase

    def __init__(
        self,
        backend: str = "asyncio",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self._backend = backend
        self._backend_options = backend_options
        self._stack: contextlib.ExitStack | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None

    @staticmethod
    def _wrap_callback(
        callback: Callable[[Any], object] | None, owner: _BlockingBase
    ) -> Callable[[Any], Awaitable[None]] | None:
        if callback is None:
            return None
        if not callable(callback):
            raise TypeError(f"connect_callback={callback!r} is not callable")

        async def call(_: Any) -> None:
            callback(owner)

        return call

    def __enter__(self: _Self) -> _Self:
        if self._stack is not None:
            raise RuntimeError("already started")
        stack = contextlib.ExitStack()
        try:
            self._portal = stack.enter_context(
                anyio.from_thread.start_blocking_portal(
                    self._backend, self._backend_options
                )
            )
            stack.enter_context(self._portal.wrap_async_context_manager(self._conn))
        except BaseException:
            stack.close()
            self._portal = None
            raise
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (and listener) and stop the event loop thread."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
        self._portal = None

    def _call(
        self,
        what: str,
        func: Callable[..., Awaitable[_T]],
        *args: Any,
        timeout: float | None = None,
    ) -> _T:
        portal = self._portal
        if portal is None:
            raise ConnectionError(f"{what}: not started (use a with block)")
        result: _T = portal.call(_with_timeout, what, timeout, func, *args)
        return result

    # -- state ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a connection is open."""
        return self._conn.connected

    @property
    def should_be_connected(self) -> bool:
        """True from a connection until this end closes it."""
        return self._conn.should_be_connected

    @property
    def name(self) -> str:
        """Name used in log and error messages."""
        return self._conn.name

    @property
    def stats(self) -> ConnectionStats:
        """Traffic counters and connection history."""
        return self._conn.stats

    def wait_connected(self, timeout: float | None = None) -> None:
        """Block until connected (at once if connected)."""
        self._call("wait_connected", self._conn.wait_connected, timeout=timeout)

    # -- reading ------------------------------------------------------------------

    def read(self, n: int, timeout: float | None = None) -> bytes:
        """Read up to ``n`` bytes; ``b""`` once at end of stream."""
        return self._call("read", self._conn.read, n, timeout=timeout)

    def readexactly(self, n: int, timeout: float | None = None) -> bytes:
        """Read exactly ``n`` bytes."""
        return self._call("readexactly", self._conn.readexactly, n, timeout=timeout)

    def readline(self, timeout: float | None = None) -> bytes:
        """Read up to and including a newline."""
        return self._call("readline", self._conn.readline, timeout=timeout)

    def readuntil(
        self, separator: bytes = b"\n", timeout: float | None = None
    ) -> bytes:
        """Read up to and including ``separator``."""
        return self._call("readuntil", self._conn.readuntil, separator, timeout=timeout)

    def read_into(self, struct: Any, timeout: float | None = None) -> None:
        """Fill a ctypes object from exactly ``sizeof`` bytes."""
        self._call("read_into", self._conn.read_into, struct, timeout=timeout)

    def read_str(self, timeout: float | None = None) -> str:
        """Read one terminated text message, without its terminator."""
        return self._call("read_str", self._conn.read_str, timeout=timeout)

    def read_json(self, timeout: float | None = None) -> Any:
        """Read one JSON message."""
        return self._call("read_json", self._conn.read_json, timeout=timeout)

    def read_frame(self, timeout: float | None = None) -> bytes:
        """Read one length-prefixed frame."""
        return self._call("read_frame", self._conn.read_frame, timeout=timeout)

    # -- writing ------------------------------------------------------------------

    def write(
        self, data: bytes | bytearray | memoryview, *, timeout: float | None = None
    ) -> None:
        """Send bytes as one message.

        Every write takes an optional ``timeout``: the longest to wait for
        room in the send buffer while the peer does not read. When it
        expires, :class:`TimeoutError` is raised and nothing of the message
        was sent.
        """
        self._call("write", self._conn.write, data, timeout=timeout)

    def writelines(
        self,
        lines: Iterable[bytes | bytearray | memoryview],
        *,
        timeout: float | None = None,
    ) -> None:
        """Send several byte strings as one message (``timeout``: see write)."""
        self._call("writelines", self._conn.writelines, list(lines), timeout=timeout)

    def write_from(self, *structs: Any, timeout: float | None = None) -> None:
        """Send ctypes objects (``timeout``: see write)."""
        self._call("write_from", self._conn.write_from, *structs, timeout=timeout)

    def write_str(self, line: str, *, timeout: float | None = None) -> None:
        """Send a text message and the terminator (``timeout``: see write)."""
        self._call("write_str", self._conn.write_str, line, timeout=timeout)

    def write_json(self, obj: Any, *, timeout: float | None = None) -> None:
        """Send ``obj`` as one JSON message (``timeout``: see write)."""
        self._call("write_json", self._conn.write_json, obj, timeout=timeout)

    def write_frame(
        self, data: bytes | bytearray | memoryview, *, timeout: float | None = None
    ) -> None:
        """Send ``data`` as one length-prefixed frame (``timeout``: see write)."""
        self._call("write_frame", self._conn.write_frame, data, timeout=timeout)

    def drain(self, timeout: float | None = None) -> None:
        """Block until everything written has been handed to the OS."""
        self._call("drain", self._conn.drain, timeout=timeout)


class Client(_BlockingBase):
    """A blocking :class:`anytcpip.Client`; connects on ``with`` entry.

    Parameters
    ----------
    host, port
        The server to connect to.
    connect_callback
        Optional plain callable ``callback(client)`` run on each change of
        connection state (in the event loop's thread).
    backend
        ``"asyncio"`` (default) or ``"trio"``.
    backend_options
        Passed to anyio (e.g. ``{"use_uvloop": True}``).
    **kwargs
        Every other keyword of :class:`anytcpip.Client`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_callback: Callable[[Client], object] | None = None,
        backend: Literal["asyncio", "trio"] = "asyncio",
        backend_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(backend, backend_options)
        self._client = _AsyncClient(
            host,
            port,
            connect_callback=self._wrap_callback(connect_callback, self),
            **kwargs,
        )
        self._conn = self._client

    @property
    def host(self) -> str:
        """Host of the server."""
        return self._client.host

    @property
    def port(self) -> int:
        """Port of the server."""
        return self._client.port


class OneClientServer(_BlockingBase):
    """A blocking :class:`anytcpip.OneClientServer`; listens on ``with`` entry.

    Handy as a quick mock controller in synchronous test code.

    Parameters
    ----------
    host
        Address to listen on (default ``127.0.0.1``; None for all).
    port
        Port to listen on; 0 picks a free one (see :attr:`port`).
    connect_callback
        Optional plain callable ``callback(server)`` run on each change of
        connection state (in the event loop's thread).
    backend, backend_options
        As for :class:`Client`.
    **kwargs
        Every other keyword of :class:`anytcpip.OneClientServer`.
    """

    def __init__(
        self,
        host: str | None = "127.0.0.1",
        port: int = 0,
        *,
        connect_callback: Callable[[OneClientServer], object] | None = None,
        backend: Literal["asyncio", "trio"] = "asyncio",
        backend_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(backend, backend_options)
        self._server = _AsyncServer(
            host,
            port,
            connect_callback=self._wrap_callback(connect_callback, self),
            **kwargs,
        )
        self._conn = self._server

    @property
    def host(self) -> str | None:
        """Address the server listens on."""
        return self._server.host

    @property
    def port(self) -> int:
        """The port the server listens on (the real one once started)."""
        return self._server.port

    @property
    def rejected_count(self) -> int:
        """How many extra clients were turned away."""
        return self._server.rejected_count

    def close_client(self) -> None:
        """Drop the current client but keep listening."""
        self._call("close_client", self._server.close_client)
