"""lsst.ts.tcpip's unit-test helpers: test-case base classes and a test server.

These are ``unittest.IsolatedAsyncioTestCase`` classes, so asyncio only; for
tests that run on every backend, see :mod:`anytcpip.testing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import unittest
from collections.abc import AsyncGenerator
from typing import Any

from .._constants import DEFAULT_LOCALHOST, HEARTBEAT
from ._base import BaseClientOrServer, ConnectCallbackType
from ._client import Client
from ._read_loop import OneClientReadLoopServer
from ._server import OneClientServer

__all__ = [
    "BaseOneClientReadLoopServerTestCase",
    "BaseOneClientServerTestCase",
    "TestOneClientReadLoopServer",
]

STD_TIMEOUT = 2
"""Seconds the test-case helpers wait for a connection or a callback."""


class BaseOneClientServerTestCase(unittest.IsolatedAsyncioTestCase):
    """Base class for unit tests of a :class:`OneClientServer` (sub)class.

    Subclasses set ``server_class``, then use :meth:`create_server`,
    :meth:`create_client` and :meth:`assert_next_connected`.

    Attributes
    ----------
    server_class : type[OneClientServer] or None
        The server class to test; a subclass must set it.
    log : logging.Logger
        A logger named after the test class.
    connect_queue : asyncio.Queue or None
        ``connected`` of each call of :meth:`connect_callback`, in order; made
        by :meth:`create_server`.
    """

    server_class: type[OneClientServer] | None = None

    def run(self, result: Any = None) -> Any:
        """Set ``log`` and ``connect_queue``, then run the test."""
        self.log: logging.Logger = logging.getLogger(type(self).__name__)
        self.connect_queue: asyncio.Queue[bool] | None = None
        return super().run(result=result)

    async def assert_next_connected(
        self, connected: bool, timeout: float = STD_TIMEOUT
    ) -> None:
        """Assert the state reported by the next call of :meth:`connect_callback`.

        Parameters
        ----------
        connected
            The state expected.
        timeout
            Seconds to wait for the call.

        Raises
        ------
        AssertionError
            If the state reported is not ``connected``.
        asyncio.TimeoutError
            If no call comes in time.
        RuntimeError
            If :meth:`create_server` was not called.
        """
        if self.connect_queue is None:
            raise RuntimeError("You must call create_server")
        next_connected = await asyncio.wait_for(self.connect_queue.get(), timeout)
        assert connected == next_connected, (
            f"connect_callback reported connected={next_connected}, "
            f"expected {connected}"
        )

    async def connect_callback(self, server: BaseClientOrServer) -> None:
        """Put ``server.connected`` on ``connect_queue``."""
        self.log.debug("connect_callback: connected=%s", server.connected)
        if self.connect_queue is None:
            raise RuntimeError("You must call create_server")
        self.connect_queue.put_nowait(server.connected)

    @contextlib.asynccontextmanager
    async def create_server(
        self, **kwargs: Any
    ) -> AsyncGenerator[OneClientServer, None]:
        """Run a server of class ``server_class``; close it on exit.

        Calls ``server_class(port=0, log=self.log, **kwargs)``, adding
        ``host=DEFAULT_LOCALHOST`` (unless given) only when ``server_class``
        is :class:`OneClientServer` itself, exactly as lsst.ts.tcpip 2.2 does.
        No ``connect_callback`` is added: pass
        ``connect_callback=self.connect_callback`` to fill ``connect_queue``.

        Parameters
        ----------
        **kwargs
            More keywords for the server's constructor (not ``port`` or
            ``log``).

        Yields
        ------
        OneClientServer
            The server, listening.

        Raises
        ------
        RuntimeError
            If ``server_class`` is not set.
        """
        if self.server_class is None:
            raise RuntimeError(
                "You must set class variable server_class "
                "to OneClientServer or a subclass"
            )
        if self.server_class is OneClientServer:
            kwargs.setdefault("host", DEFAULT_LOCALHOST)
        self.connect_queue = asyncio.Queue()
        async with self.server_class(port=0, log=self.log, **kwargs) as server:
            yield server

    @contextlib.asynccontextmanager
    async def create_client(
        self, server: OneClientServer, *, wait_connected: bool = True, **kwargs: Any
    ) -> AsyncGenerator[Client, None]:
        """Run a :class:`Client` connected to ``server``; close it on exit.

        Parameters
        ----------
        server
            The server to connect to (its ``host`` and ``port``).
        wait_connected
            Wait until the server has seen the connection.
        **kwargs
            More keywords for :class:`Client` (not ``host``, ``port``, ``log``).

        Yields
        ------
        Client
            The client, connected.
        """
        assert server is not None, "You must call create_server first"
        client = Client(host=server.host, port=server.port, log=self.log, **kwargs)
        async with client:
            if wait_connected:
                await asyncio.wait_for(server.connected_task, timeout=STD_TIMEOUT)
            yield client


class BaseOneClientReadLoopServerTestCase(unittest.IsolatedAsyncioTestCase):
    """Base class for unit tests of a :class:`OneClientReadLoopServer` subclass.

    Subclasses implement :meth:`create_server`; :meth:`create_server_and_client`
    then sets ``self.server`` and ``self.client``, connected.
    """

    server: OneClientReadLoopServer
    client: Client

    async def asyncSetUp(self) -> None:
        """Make ``self.log``."""
        self.log: logging.Logger = logging.getLogger(type(self).__name__)

    @contextlib.asynccontextmanager
    async def create_server_and_client(self) -> AsyncGenerator[None, None]:
        """Start a server and a connected client; close both on exit.

        Yields
        ------
        None
            Use ``self.server`` and ``self.client``.
        """
        self.server = await self.create_server()
        try:
            await self.server.start_task
            async with Client(
                host=self.server.host, port=self.server.port, log=self.log, name="test"
            ) as self.client:
                await asyncio.wait_for(self.server.connected_task, STD_TIMEOUT)
                assert self.client.connected
                yield
        finally:
            await self.server.close()

    async def create_server(self) -> OneClientReadLoopServer:
        """Construct the server to test (port 0 recommended).

        Returns
        -------
        OneClientReadLoopServer
            The server; it need not be started yet.
        """
        raise NotImplementedError("Subclasses must implement create_server")


class TestOneClientReadLoopServer(OneClientReadLoopServer):
    """A :class:`OneClientReadLoopServer` that queues each message it reads.

    Each message is read with ``read_str``; a ``HEARTBEAT`` goes to
    :meth:`~OneClientReadLoopServer.handle_received_heartbeat`, anything else
    to a queue read by :meth:`get_next_data`.

    Parameters
    ----------
    host
        Address to listen on.
    port
        Port to listen on; 0 picks a free one.
    log
        Parent logger.
    connect_callback
        Async function ``callback(self)`` called when a client connects or
        disconnects.
    name
        Name used in log messages.
    **kwargs
        More keywords for :class:`OneClientReadLoopServer`.

    Attributes
    ----------
    fail_next_read : bool
        If set, the next ``read_and_dispatch`` raises ``ConnectionError``
        (before reading), which ends the read loop and closes the client.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self,
        host: str | None = DEFAULT_LOCALHOST,
        port: int | None = 0,
        log: logging.Logger | None = None,
        connect_callback: ConnectCallbackType | None = None,
        name: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            log=log,
            connect_callback=connect_callback,
            name=name,
            **kwargs,
        )
        self._data_queue: asyncio.Queue[str] = asyncio.Queue()
        self.fail_next_read: bool = False

    async def read_and_dispatch(self) -> None:
        """Read one message; queue it, or handle it if it is a heartbeat.

        Raises
        ------
        ConnectionError
            If ``fail_next_read`` was set (it is cleared).
        """
        if self.fail_next_read:
            self.fail_next_read = False
            raise ConnectionError("Mock connection error for unit tests.")
        data = await self.read_str()
        if data == HEARTBEAT.decode():
            await self.handle_received_heartbeat()
        else:
            await self._data_queue.put(data)

    async def get_next_data(self) -> str:
        """Return the oldest message read and not yet returned (wait for one).

        Returns
        -------
        str
            The message, without its terminator.
        """
        return await self._data_queue.get()
