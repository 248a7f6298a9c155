"""``Client``: lsst.ts.tcpip's TCP client, on a native :class:`anytcpip.Client`."""

from __future__ import annotations

import logging
from typing import Any

from .._client import Client as _NativeClient
from .._constants import DEFAULT_ENCODING, DEFAULT_LOCALHOST, DEFAULT_TERMINATOR
from ._base import BaseClientOrServer, ConnectCallbackType
from ._constants import DEFAULT_MONITOR_CONNECTION_INTERVAL

__all__ = ["Client"]


class Client(BaseClientOrServer):
    """A TCP client (lsst.ts.tcpip 2.x API) that connects once.

    The constructor starts connecting; ``await client.start_task`` waits for
    the connection (and raises ``OSError``, e.g. ``ConnectionRefusedError``,
    if it fails). Construct a new instance to connect again.

    Parameters
    ----------
    host
        Host name or IP address of the server (None: this host). ``""``
        makes a client that is already closed: ``start_task`` and
        ``done_task`` are done and it never connects.
    port
        TCP port of the server.
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
        Send ``HEARTBEAT + terminator`` every ``heartbeat_send_sleep``
        seconds while connected.
    heartbeat_send_sleep
        Seconds between heartbeats.
    **kwargs
        ``connect_timeout`` (seconds), and the keywords listed in
        :class:`BaseClientOrServer`.

    Attributes
    ----------
    host : str or None
        The ``host`` argument.
    port : int or None
        The ``port`` argument.
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
        self.run_heartbeat_send_task = run_heartbeat_send_task
        self.heartbeat_send_sleep = heartbeat_send_sleep
        super().__init__(
            log=log,
            connect_callback=connect_callback,
            monitor_connection_interval=monitor_connection_interval,
            name=name,
            encoding=encoding,
            terminator=terminator,
            **kwargs,
        )
        if host == "":
            self._mark_closed()
            return
        options = self._native_common()
        if run_heartbeat_send_task:
            options["heartbeat_interval"] = heartbeat_send_sleep
        native_host = DEFAULT_LOCALHOST if host is None else host
        self._start(_NativeClient(native_host, port or 0, **options))

    def _extra_native_keywords(self) -> frozenset[str]:
        return frozenset({"connect_timeout"})

    async def basic_close(self) -> None:
        """Close the connection, if any, and set ``done_task`` done.

        Like :meth:`close`, but leaves ``should_be_connected`` unchanged.
        ``connect_callback`` has run before this returns if a connection was
        up (unless called from within ``connect_callback`` itself).
        """
        self.log.info("Closing")
        await self._shutdown()

    async def close(self) -> None:
        """Close the connection, if any, and set ``done_task`` done; idempotent.

        Also sets ``should_be_connected`` False.
        """
        self.should_be_connected = False
        await self.basic_close()
