"""``OneClientServer``: lsst.ts.tcpip's one-client server, on the native one."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .._constants import DEFAULT_ENCODING, DEFAULT_TERMINATOR
from .._server import OneClientServer as _NativeServer
from ._base import BaseClientOrServer, ConnectCallbackType
from ._constants import DEFAULT_MONITOR_CONNECTION_INTERVAL

__all__ = ["OneClientServer"]


class OneClientServer(BaseClientOrServer):
    """A TCP server that serves one client at a time (lsst.ts.tcpip 2.x API).

    The constructor starts listening; ``await server.start_task`` waits until
    it is. A client that connects while another is connected is rejected.

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
        The keywords listed in :class:`BaseClientOrServer`.

    Attributes
    ----------
    host : str or None
        The ``host`` argument.
    port : int
        The port (0 for None). With ``port=0`` it is set to the port picked, once
        ``start_task`` is done. (With ``host=None`` the IPv4 and IPv6 sockets
        share one port, so it is never ambiguous.)
    connected_task : asyncio.Future
        Done when a client connects; replaced by a new future when the client
        disconnects, so it can be awaited for the next one.
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
        **kwargs: Any,
    ) -> None:
        self.host = host
        self.port: int = port or 0
        super().__init__(
            log=log,
            connect_callback=connect_callback,
            monitor_connection_interval=monitor_connection_interval,
            name=name,
            encoding=encoding,
            terminator=terminator,
            **kwargs,
        )
        self.connected_task: asyncio.Future[None] = self._loop.create_future()
        self._start(self._make_native(host, self.port, self._native_common()))

    def _make_native(
        self, host: str | None, port: int, options: dict[str, Any]
    ) -> _NativeServer:
        """Build the native server this instance drives."""
        return _NativeServer(host, port, **options)

    def _on_started(self) -> None:
        native = self._native
        if not self.port and native is not None:
            self.port = getattr(native, "port", self.port)
        self.log.info("Server running: host=%s; port=%s", self.host, self.port)

    def _on_state_change(self, connected: bool) -> None:
        if connected:
            if not self.connected_task.done():
                self.connected_task.set_result(None)
        else:
            self._renew_connected_task()

    def _renew_connected_task(self) -> None:
        if self.connected_task.done():
            self.connected_task = self._loop.create_future()

    async def basic_close_client(self) -> None:
        """Close the connected client, if any; keep listening.

        ``connect_callback`` has run before this returns if a client was
        connected, and ``connected_task`` is a new future. Unlike
        :meth:`close_client`, ``should_be_connected`` is left unchanged.
        """
        self.log.info("Closing the client socket.")
        native = self._native
        if isinstance(native, _NativeServer):
            await native.close_client()
        self._renew_connected_task()

    async def close_client(self) -> None:
        """Close the connected client, if any, and clear ``should_be_connected``.

        The server keeps listening; see :meth:`basic_close_client`.
        """
        self.should_be_connected = False
        await self.basic_close_client()

    async def close(self) -> None:
        """Stop listening, close the client, set ``done_task`` done; idempotent."""
        self.log.info("Closing the server.")
        try:
            await self.close_client()
        finally:
            await self._shutdown()
