"""``OneClientServer``: lsst.ts.tcpip 2.2's one-client server, on the native one."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

import anyio.abc
from anyio.abc import SocketAttribute

from .._constants import DEFAULT_ENCODING, DEFAULT_LOCALHOST, DEFAULT_TERMINATOR
from .._server import OneClientServer as _NativeServer
from ._base import BaseClientOrServer, ConnectCallbackType, unsupported
from ._constants import DEFAULT_MONITOR_CONNECTION_INTERVAL
from ._views import ServerView

__all__ = ["OneClientServer"]

# Keywords of asyncio.start_server that anyio's listener cannot honour.
_START_SERVER_ONLY = frozenset(
    {"flags", "sock", "ssl_handshake_timeout", "ssl_shutdown_timeout", "keep_alive"}
)
# Keywords of asyncio.start_server that anyio.create_tcp_listener takes as is.
_LISTENER_KEYWORDS = frozenset({"family", "backlog", "reuse_port"})
# anytcpip keywords passed to the native server unchanged.
_NATIVE_KEYWORDS = frozenset(
    {
        "max_line_length",
        "keepalive",
        "ssl_context",
        "extra_client",
        "heartbeat_interval",
        "heartbeat_timeout",
    }
)


class _NativeCompatServer(_NativeServer):
    """The native server, with the listener options of ``asyncio.start_server``."""

    def __init__(
        self,
        owner: OneClientServer,
        host: str | None,
        port: int,
        listener_options: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(host, port, **kwargs)
        self._owner = owner
        self._compat_listener_options = listener_options

    def _listener_options(self) -> dict[str, Any]:
        return self._compat_listener_options

    def _adopt(self, stream: anyio.abc.ByteStream, peer: str | None = None) -> Any:
        self._owner._adopted(stream)
        return super()._adopt(stream, peer)

    def listening_sockets(self) -> tuple[socket.socket, ...]:
        """Return the listening sockets, one per address family."""
        listener = self._listener
        if listener is None:
            return ()
        return tuple(
            item.extra(SocketAttribute.raw_socket) for item in listener.listeners
        )


# Errors and log messages name the class the user knows.
_NativeCompatServer.__name__ = _NativeCompatServer.__qualname__ = "OneClientServer"


class OneClientServer(BaseClientOrServer):
    """A TCP server that serves one client at a time (lsst.ts.tcpip 2.2 API).

    The constructor creates ``start_task``, running :meth:`start`, which
    starts listening. A client that connects while another is connected is
    rejected (closed at once).

    Parameters
    ----------
    host
        Address to listen on; None for all interfaces (IPv4 and IPv6).
    port
        Port to listen on; 0 picks a free one (recommended for tests).
    log
        Parent logger (see :class:`BaseClientOrServer`).
    connect_callback
        Async function ``callback(self)`` called when a client connects or
        disconnects.
    monitor_connection_interval
        Ignored: a lost connection is noticed without polling.
    name
        Name used in log messages.
    encoding
        Encoding of the text and JSON methods.
    terminator
        Terminator of the text and JSON methods.
    **kwargs
        Keywords for :meth:`start`: of ``asyncio.start_server``'s, ``family``,
        ``backlog`` and ``reuse_port`` (given to the listener), ``limit``
        (the longest line ``readuntil`` will buffer), ``ssl`` (an
        ``ssl.SSLContext``), ``reuse_address`` (only True: addresses are
        always reused) and ``start_serving`` (only True); and the anytcpip
        keywords ``max_line_length``, ``keepalive``, ``ssl_context``,
        ``extra_client``, ``heartbeat_interval`` and ``heartbeat_timeout``.
        Others make ``start_task`` fail with ``TypeError``.

    Attributes
    ----------
    host : str or None
        The ``host`` argument.
    port : int
        The port. With ``port=0`` it is set to the port picked once
        ``start_task`` is done, if the server listens on one socket (as in
        2.2, it stays 0 when it listens on several, e.g. ``host=None``).
    connected_task : asyncio.Future
        Done when a client connects; replaced by a new future when the client
        disconnects, so it can be awaited for the next one.
    """

    def __init__(
        self,
        host: str | None = DEFAULT_LOCALHOST,
        port: int | None = 0,
        log: logging.Logger | None = None,
        connect_callback: ConnectCallbackType | None = None,
        monitor_connection_interval: float = DEFAULT_MONITOR_CONNECTION_INTERVAL,
        name: str = "",
        encoding: str = DEFAULT_ENCODING,
        terminator: bytes = DEFAULT_TERMINATOR,
        **kwargs: Any,
    ) -> None:
        self.host = host
        self.port: int = port or 0
        self._server_view: ServerView | None = None
        self.connected_task: asyncio.Future[None] = (
            asyncio.get_running_loop().create_future()
        )
        super().__init__(
            log=log,
            connect_callback=connect_callback,
            monitor_connection_interval=monitor_connection_interval,
            name=name,
            encoding=encoding,
            terminator=terminator,
            **kwargs,
        )

    @property
    def _server(self) -> ServerView | None:
        """A stand-in for 2.2's private ``asyncio.Server`` (see ``_views``).

        None until listening and after :meth:`close`; has ``sockets``.
        """
        return self._server_view

    def _native_options(
        self, kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Map the keywords of :meth:`start` to (native, listener) keywords."""
        options: dict[str, Any] = {}
        listener: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in _LISTENER_KEYWORDS:
                listener[key] = value
            elif key == "limit":
                options["max_line_length"] = value
            elif key == "ssl":
                if value is True:  # as asyncio: a server needs a certificate
                    raise TypeError("ssl=True needs an ssl.SSLContext for a server")
                if isinstance(value, ssl.SSLContext):
                    options["ssl_context"] = value
                elif value not in (None, False):
                    raise TypeError(f"ssl={value!r} must be an ssl.SSLContext")
            elif key in ("reuse_address", "start_serving"):
                if value not in (None, True):
                    raise unsupported(self, f"{key}={value!r}", "asyncio.start_server")
            elif key in _NATIVE_KEYWORDS:
                options[key] = value
            elif key in _START_SERVER_ONLY:
                raise unsupported(self, key, "asyncio.start_server")
            else:
                raise TypeError(
                    f"{type(self).__name__}.start() got an unexpected keyword "
                    f"argument {key!r}"
                )
        return options, listener

    def _make_native(
        self,
        options: dict[str, Any],
        listener_options: dict[str, Any],
    ) -> _NativeServer:
        """Build the native server this instance drives."""
        return _NativeCompatServer(
            self,
            self.host,
            self.port,
            listener_options,
            log=self.log,
            connect_callback=self._on_native_state,
            name=self.name,
            **options,
        )

    async def start(self, **kwargs: Any) -> None:
        """Start listening.

        Called once by the constructor, as ``start_task``; public so that
        subclasses can override it (call ``await super().start(**kwargs)``).

        Parameters
        ----------
        **kwargs
            The extra keywords of the constructor (see
            :class:`OneClientServer`).

        Raises
        ------
        RuntimeError
            If already called.
        OSError
            If the server cannot listen (the port is in use, say).
        TypeError
            If a keyword is not supported.
        """
        if self._native is not None:
            raise RuntimeError("Start already called.")
        self.log.debug("Starting server")
        native = self._make_native(*self._native_options(kwargs))
        await self._start_native(native)
        sockets = (
            native.listening_sockets()
            if isinstance(native, _NativeCompatServer)
            else ()
        )
        self._server_view = ServerView(sockets)
        if self.port == 0 and len(sockets) == 1:
            self.port = native.port
        self.log.info(
            "Server running: host=%s; port=%s; listening on %d sockets",
            self.host,
            self.port,
            len(sockets),
        )

    def _on_state_change(self, connected: bool) -> None:
        if connected:
            if not self.connected_task.done():
                self.connected_task.set_result(None)
        else:
            self._renew_connected_task()

    def _renew_connected_task(self) -> None:
        if self.connected_task.done():
            self.connected_task = self._loop.create_future()

    async def _close_native_connection(self) -> None:
        native = self._native
        if isinstance(native, _NativeServer):
            await native.close_client()

    async def basic_close_client(self) -> None:
        """Close the connected client, if any; keep listening.

        Then ``connected_task`` is a new future, and ``connect_callback`` has
        run if a client was connected. Unlike :meth:`close_client`,
        ``should_be_connected`` is left unchanged. Returns without a
        scheduler switch when no client is connected.
        """
        self.log.info("Closing the client socket.")
        if self._is_stale():
            return  # this task's client has gone; leave the next one alone
        try:
            await self._close_client()
        finally:
            self._renew_connected_task()

    async def close_client(self) -> None:
        """Close the connected client, if any, and clear ``should_be_connected``.

        The server keeps listening; see :meth:`basic_close_client`.
        """
        self.should_be_connected = False
        await self.basic_close_client()

    async def close(self) -> None:
        """Close the client and stop listening; set ``done_task`` done; idempotent.

        Calls :meth:`close_client` first, as 2.2 does.
        """
        try:
            self.log.info("Closing the server.")
            await self.close_client()
        except Exception:
            self.log.exception("close failed; continuing")
        finally:
            view, self._server_view = self._server_view, None
            if view is not None:
                view._closed()
            await self._shutdown_native()
            self._set_done()
