"""``Client``: lsst.ts.tcpip 2.2's TCP client, on a native :class:`anytcpip.Client`."""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from typing import Any

import anyio.abc

from .._client import Client as _NativeClient
from .._constants import DEFAULT_ENCODING, DEFAULT_LOCALHOST, DEFAULT_TERMINATOR
from ._base import BaseClientOrServer, ConnectCallbackType, done_future, unsupported
from ._constants import DEFAULT_MONITOR_CONNECTION_INTERVAL, HEARTBEAT

__all__ = ["Client"]

# Keywords of asyncio.open_connection that anytcpip cannot honour.
_OPEN_CONNECTION_ONLY = frozenset(
    {
        "family",
        "proto",
        "flags",
        "sock",
        "local_addr",
        "server_hostname",
        "ssl_handshake_timeout",
        "ssl_shutdown_timeout",
        "happy_eyeballs_delay",
        "interleave",
        "all_errors",
    }
)
# anytcpip keywords passed to the native client unchanged.
_NATIVE_KEYWORDS = frozenset(
    {
        "max_line_length",
        "keepalive",
        "ssl_context",
        "connect_timeout",
        "heartbeat_interval",
        "heartbeat_timeout",
    }
)


class _NativeCompatClient(_NativeClient):
    """The native client, telling its compatibility owner about its stream."""

    def __init__(self, owner: Client, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self._owner = owner

    def _adopt(self, stream: anyio.abc.ByteStream, peer: str | None = None) -> Any:
        self._owner._adopted(stream)
        return super()._adopt(stream, peer)


# Errors and log messages name the class the user knows.
_NativeCompatClient.__name__ = _NativeCompatClient.__qualname__ = "Client"


class Client(BaseClientOrServer):
    """A TCP client (lsst.ts.tcpip 2.2 API) that connects once.

    The constructor creates ``start_task``, running :meth:`start`, which
    connects; ``await client.start_task`` waits for the connection (and
    raises ``OSError``, e.g. ``ConnectionRefusedError``, if it fails).
    Construct a new instance to connect again.

    Parameters
    ----------
    host
        Host name or IP address of the server (None: this host). ``""``
        makes a client that is already closed: ``start_task`` and
        ``done_task`` are done and it never connects.
    port
        TCP port of the server. Checked when connecting, as in 2.2: a bad
        port makes ``start_task`` fail, not the constructor.
    log
        Parent logger (see :class:`BaseClientOrServer`).
    connect_callback
        Async function ``callback(self)`` called when the connection state
        changes.
    monitor_connection_interval
        Ignored: a lost connection is noticed without polling.
    name
        Name used in log messages.
    encoding
        Encoding of the text and JSON methods.
    terminator
        Terminator of the text and JSON methods.
    run_heartbeat_send_task
        Send ``HEARTBEAT + terminator`` at once and then every
        ``heartbeat_send_sleep`` seconds while connected (in
        ``heartbeat_send_task``).
    heartbeat_send_sleep
        Seconds between heartbeats.
    **kwargs
        Keywords for :meth:`start`: of ``asyncio.open_connection``'s, ``limit``
        (the longest line ``readuntil`` will buffer) and ``ssl`` (an
        ``ssl.SSLContext``, or True); and the anytcpip keywords
        ``max_line_length``, ``keepalive``, ``ssl_context``,
        ``connect_timeout``, ``heartbeat_interval`` and ``heartbeat_timeout``.
        Others make ``start_task`` fail with ``TypeError``.

    Attributes
    ----------
    host : str or None
        The ``host`` argument.
    port : int or None
        The ``port`` argument.
    heartbeat_send_task : asyncio.Future
        The task sending heartbeats; done when none are being sent.
    """

    def __init__(
        self,
        host: str | None,
        port: int | None,
        log: logging.Logger | None,
        connect_callback: ConnectCallbackType | None = None,
        monitor_connection_interval: float = DEFAULT_MONITOR_CONNECTION_INTERVAL,
        name: str = "",
        encoding: str = DEFAULT_ENCODING,
        terminator: bytes = DEFAULT_TERMINATOR,
        run_heartbeat_send_task: bool = False,
        heartbeat_send_sleep: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.heartbeat_send_task: asyncio.Future[None] = done_future()
        self.run_heartbeat_send_task = run_heartbeat_send_task
        self.heartbeat_send_sleep = heartbeat_send_sleep
        super().__init__(
            log=log,
            connect_callback=connect_callback,
            monitor_connection_interval=monitor_connection_interval,
            name=name,
            encoding=encoding,
            terminator=terminator,
            do_start=host != "",
            **kwargs,
        )
        if host == "":
            self.start_task.set_result(None)
            self.done_task.set_result(None)

    def _native_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Map the keywords of :meth:`start` to the native client's."""
        options: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key == "limit":
                options["max_line_length"] = value
            elif key == "ssl":
                if value is True:
                    value = ssl.create_default_context()
                if value not in (None, False):
                    options["ssl_context"] = value
            elif key in _NATIVE_KEYWORDS:
                options[key] = value
            elif key in _OPEN_CONNECTION_ONLY:
                raise unsupported(self, key, "asyncio.open_connection")
            else:
                raise TypeError(
                    f"{type(self).__name__}.start() got an unexpected keyword "
                    f"argument {key!r}"
                )
        return options

    async def start(self, **kwargs: Any) -> None:
        """Connect to the server.

        Called once by the constructor, as ``start_task``; public so that
        subclasses can override it (call ``await super().start(**kwargs)``
        first). Calls :meth:`call_connect_callback` once connected.

        Parameters
        ----------
        **kwargs
            The extra keywords of the constructor (see :class:`Client`).

        Raises
        ------
        RuntimeError
            If already called.
        OSError
            If the connection fails (``ConnectionRefusedError`` for a
            refused connection or port 0).
        TypeError
            If a keyword is not supported.
        """
        if self._native is not None:
            raise RuntimeError("Start already called.")
        self.log.info(
            "Client trying to connect to host=%s; port=%s", self.host, self.port
        )
        options = self._native_options(kwargs)
        host = DEFAULT_LOCALHOST if self.host is None else self.host
        if self.port is None or self.port == 0:
            # What connecting to port 0 does on every OS lsst.ts.tcpip runs on.
            raise ConnectionRefusedError(
                errno.ECONNREFUSED,
                f"Connect call failed ({host!r}, {self.port}): "
                "there is no server on port 0",
            )
        native = _NativeCompatClient(
            self,
            host,
            self.port,
            log=self.log,
            connect_callback=self._on_native_state,
            name=self.name,
            **options,
        )
        await self._start_native(native)
        if self.run_heartbeat_send_task:
            self.heartbeat_send_task.cancel()
            self.heartbeat_send_task = self._loop.create_task(self._send_heartbeat())
        await self._dispatch(self.connected)
        self.log.info("Client connected to host=%s; port=%s", self.host, self.port)

    def _ready_to_report(self) -> bool:
        # Connected while starting: start() reports it once it is done, as
        # in 2.2 (after starting the heartbeats).
        return self._started

    async def _send_heartbeat(self) -> None:
        """Send ``HEARTBEAT + terminator`` every ``heartbeat_send_sleep`` seconds."""
        try:
            while self.connected:
                await self.write(HEARTBEAT + self.terminator)
                await asyncio.sleep(self.heartbeat_send_sleep)
        except ConnectionError:
            pass

    async def _close_native_connection(self) -> None:
        native = self._native
        if native is not None:
            await native.close()

    async def basic_close(self) -> None:
        """Close the connection, if any, and set ``done_task`` done.

        Like :meth:`close`, but leaves ``should_be_connected`` unchanged.
        ``connect_callback`` has run before this returns if a connection was
        up (unless called from within ``connect_callback`` itself). Returns
        without a scheduler switch when there was no connection.
        """
        self.log.info("Closing")
        was_connected = self._writer is not None
        try:
            await self._close_client()
        finally:
            if was_connected:
                await self._shutdown_native()
            else:
                self._stop_runner()  # nothing to wait for, so no switch
            self._set_done()

    async def close(self) -> None:
        """Close the connection, if any, and set ``done_task`` done; idempotent.

        Also sets ``should_be_connected`` False and stops the heartbeats.
        """
        self.should_be_connected = False
        self.heartbeat_send_task.cancel()
        try:
            await self.heartbeat_send_task
        except asyncio.CancelledError:
            pass
        await self.basic_close()
