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

An interrupted call (Ctrl-C, i.e. :class:`KeyboardInterrupt`, or any other
exception raised in the calling thread while it waits) loses nothing either:
before the exception propagates, the operation is cancelled on the event loop
and has ended, so the next call finds the stream where the interrupted one
left it. Interrupting ``with`` while it connects cancels the attempt and
stops the event loop's thread. A second interrupt while a cancellation is
under way propagates at once, as with :func:`asyncio.run` (use it if the
event loop is stuck).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Literal, TypeVar

import anyio.from_thread

from ._blocking_portal import Session, call
from ._client import Client as _AsyncClient
from ._exceptions import NotConnectedError
from ._server import OneClientServer as _AsyncServer
from ._stats import ConnectionStats

__all__ = ["BlockingClientOrServer", "Client", "OneClientServer"]

_T = TypeVar("_T")
_Self = TypeVar("_Self", bound="BlockingClientOrServer")


class BlockingClientOrServer:
    """The base of :class:`Client` and :class:`OneClientServer`.

    The blocking counterpart of :class:`anytcpip.BaseClientOrServer`: the
    ``with`` life cycle (which starts and stops the event loop's thread),
    the connection state and the read/write methods, each waiting for its
    call to finish on the event loop. Not made directly: make a
    :class:`Client` or a :class:`OneClientServer`. Use it as a type for code
    that takes either, e.g. ``def send_status(conn: BlockingClientOrServer)``.

    Parameters
    ----------
    backend
        ``"asyncio"`` (default) or ``"trio"``.
    backend_options
        Passed to anyio (e.g. ``{"use_uvloop": True}``).
    """

    _conn: _AsyncClient | _AsyncServer

    def __init__(
        self,
        backend: str = "asyncio",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self._backend = backend
        self._backend_options = backend_options
        self._stack: contextlib.ExitStack | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._closed = False

    @staticmethod
    def _wrap_callback(
        callback: Callable[[Any], object] | None, owner: BlockingClientOrServer
    ) -> Callable[[Any], Awaitable[None]] | None:
        if callback is None:
            return None
        if not callable(callback):
            raise TypeError(f"connect_callback={callback!r} is not callable")

        async def call(_: Any) -> None:
            callback(owner)

        return call

    def _describe(self) -> str:
        return self._conn._describe()

    def __enter__(self: _Self) -> _Self:
        if self._closed:
            raise RuntimeError(
                f"{self._describe()}: closed; it cannot be started again "
                "(make a new one)"
            )
        if self._stack is not None:
            raise RuntimeError(f"{self._describe()}: already started")
        stack = contextlib.ExitStack()
        try:
            self._portal = stack.enter_context(
                anyio.from_thread.start_blocking_portal(
                    self._backend, self._backend_options
                )
            )
            session = Session(self._portal, self._conn)
            session.enter()
            stack.callback(session.exit)
        except BaseException:
            # Passing the exception on makes the portal cancel what is still
            # running, such as a connection attempt interrupted by Ctrl-C.
            self._portal = None
            stack.__exit__(*sys.exc_info())
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
            self._closed = True
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
            if self._closed:
                raise NotConnectedError(f"{self._describe()}: {what}: closed")
            raise NotConnectedError(
                f"{self._describe()}: {what}: not started (use a with block)"
            )
        return call(portal, what, func, *args, timeout=timeout)

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

    @property
    def log(self) -> logging.Logger:
        """Logger of this instance."""
        return self._conn.log

    @property
    def encoding(self) -> str:
        """Text encoding of ``read_str``/``write_str``."""
        return self._conn.encoding

    @property
    def terminator(self) -> bytes:
        """Bytes that end a text or JSON message (the read terminator)."""
        return self._conn.terminator

    @property
    def read_terminator(self) -> bytes:
        """Bytes that end a message read by ``read_str``/``read_json``."""
        return self._conn.read_terminator

    @property
    def write_terminator(self) -> bytes:
        """Bytes appended by ``write_str``/``write_json`` (and to heartbeats)."""
        return self._conn.write_terminator

    @property
    def max_line_length(self) -> int:
        """Longest terminated message (without terminator) a read will buffer."""
        return self._conn.max_line_length

    @property
    def heartbeat_interval(self) -> float | None:
        """Seconds between heartbeats sent, or None."""
        return self._conn.heartbeat_interval

    @property
    def heartbeat_timeout(self) -> float | None:
        """Seconds without received bytes before the connection is lost, or None."""
        return self._conn.heartbeat_timeout

    @property
    def keepalive(self) -> bool:
        """Whether TCP keepalive is enabled on each connection."""
        return self._conn.keepalive

    @property
    def ssl_context(self) -> Any:
        """The TLS context, or None."""
        return self._conn.ssl_context

    def call_connect_callback(self, timeout: float | None = None) -> None:
        """Call ``connect_callback`` (if any), logging any exception it raises."""
        self._call(
            "call_connect_callback", self._conn.call_connect_callback, timeout=timeout
        )

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

    # -- requests -------------------------------------------------------------

    def request(self, message: str, timeout: float | None = None) -> str:
        """Send ``message`` with ``write_str``; return the reply's ``read_str``.

        As :meth:`anytcpip.Client.request`: ``timeout`` bounds sending and
        the reply, and when it expires :class:`~anytcpip.RequestTimeoutError`
        is raised and the requester's ``reply_timeout_policy`` applies (by
        default the connection is closed, so a late reply is never taken for
        the next command's).
        """
        return self._call("request", self._conn.request, message, timeout)

    def request_json(self, obj: Any, timeout: float | None = None) -> Any:
        """Send ``obj`` with ``write_json``; return the reply's ``read_json``.

        As :meth:`request`, for JSON messages.
        """
        return self._call("request_json", self._conn.request_json, obj, timeout)


class Client(BlockingClientOrServer):
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

    @property
    def connect_timeout(self) -> float | None:
        """Seconds allowed for one connection attempt, or None."""
        return self._client.connect_timeout

    @property
    def tls_handshake_timeout(self) -> float:
        """Seconds allowed for the TLS handshake of one connection attempt."""
        return self._client.tls_handshake_timeout

    @property
    def reconnect_attempts(self) -> int:
        """Connection attempts made so far with ``reconnect``."""
        return self._client.reconnect_attempts


class OneClientServer(BlockingClientOrServer):
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

    @property
    def extra_client(self) -> Literal["reject", "replace"]:
        """What happens to a client that connects while another is connected."""
        return self._server.extra_client

    def close_client(self, timeout: float | None = None) -> None:
        """Drop the current client but keep listening."""
        self._call("close_client", self._server.close_client, timeout=timeout)
