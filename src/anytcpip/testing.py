"""Helpers for testing code built on anytcpip, and a conformance kit.

- :class:`CallbackRecorder`: a ``connect_callback`` that records each call
  and lets a test wait for the next one, with a bound.
- :func:`start_server`: a server of any class on a free loopback port.
- :func:`connect_client`: a client connected to such a server.
- :func:`connected_pair`: a server on loopback with a connected client.
- :func:`memory_pair`: two connected ends joined in memory, no sockets
  (:class:`MemoryConnection` over :func:`memory_stream_pair`).
- :func:`check_connection`: the generic contract every client/server pair
  must meet (plain TCP, TLS, IPv6, reconnecting, ...), in the spirit of
  ``trio.testing.check_two_way_stream``.

Nothing here imports pytest; failures raise :class:`AssertionError`. Every
wait is bounded by ``timeout`` so a broken pair fails instead of hanging.
The same helpers are offered as pytest fixtures by
:mod:`anytcpip.pytest_plugin`, which pytest loads automatically.
"""

from __future__ import annotations

import ctypes
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, overload

import anyio

from ._client import Client
from ._connection import BaseClientOrServer
from ._constants import DEFAULT_LOCALHOST
from ._memory import (
    MemoryByteStream,
    MemoryConnection,
    memory_pair,
    memory_stream_pair,
)
from ._replay import ReplayServer, ignore_bytes, ignore_json_fields, regex_key
from ._server import OneClientServer
from ._tap import Tap

_ServerT = TypeVar("_ServerT", bound=OneClientServer)

__all__ = [
    "CallbackRecorder",
    "MakePair",
    "MemoryByteStream",
    "MemoryConnection",
    "ReplayServer",
    "Tap",
    "check_connection",
    "connect_client",
    "connected_pair",
    "ignore_bytes",
    "ignore_json_fields",
    "memory_pair",
    "memory_stream_pair",
    "regex_key",
    "start_server",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds any single wait in these helpers may take before failing."""

MakePair = Callable[
    [dict[str, Any], dict[str, Any]],
    AbstractAsyncContextManager[tuple[BaseClientOrServer, BaseClientOrServer]],
]
"""``make_pair(server_kwargs, client_kwargs)``: an async context manager that
yields a connected ``(server, client)``, passing the keyword arguments to
their constructors."""


class CallbackRecorder:
    """An async ``connect_callback`` that records ``connected`` at each call.

    Parameters
    ----------
    timeout
        Bound of :meth:`next` and :meth:`wait_for`.

    Examples
    --------
    >>> recorder = CallbackRecorder()
    >>> # async with OneClientServer(connect_callback=recorder) as server: ...
    >>> # assert await recorder.next() is True
    >>> # assert await recorder.wait_for(2) == [True, False]
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.states: list[bool] = []
        """``connected`` as seen by each call, in order."""
        self.timeout = timeout
        self._changed: anyio.Event | None = None
        self._consumed = 0

    async def __call__(self, conn: BaseClientOrServer) -> None:
        """Record ``conn.connected`` (the state being reported)."""
        self.states.append(conn.connected)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def next(self) -> bool:
        """Return the state of the next call not yet returned by ``next``.

        Calls are consumed in order, so successive ``await recorder.next()``
        give ``True``, ``False``, ``True``, ... exactly as the callback saw
        them, however fast the changes happened.

        Raises
        ------
        TimeoutError
            If no such call comes within ``timeout``.
        """
        await self.wait_for(self._consumed + 1)
        self._consumed += 1
        return self.states[self._consumed - 1]

    async def wait_for(self, count: int) -> list[bool]:
        """Wait until at least ``count`` calls were made; return the states.

        Raises
        ------
        TimeoutError
            If that takes longer than ``timeout``.
        """
        with anyio.fail_after(self.timeout):
            while len(self.states) < count:
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
        return self.states


@overload
def start_server(
    server_class: type[_ServerT], *, host: str = ..., **kwargs: Any
) -> AbstractAsyncContextManager[_ServerT]: ...


@overload
def start_server(
    *, host: str = ..., **kwargs: Any
) -> AbstractAsyncContextManager[OneClientServer]: ...


def start_server(
    server_class: type[OneClientServer] = OneClientServer,
    *,
    host: str = DEFAULT_LOCALHOST,
    **kwargs: Any,
) -> AbstractAsyncContextManager[OneClientServer]:
    """Start a server of ``server_class`` on ``host``, on a free port.

    An async context manager: it yields the running server (``server.port``
    is the port it got) and closes it on exit.

    Parameters
    ----------
    server_class
        :class:`OneClientServer` or a subclass, e.g. a mock controller.
    host
        Loopback address to listen on (``"127.0.0.1"`` or ``"::1"``).
    **kwargs
        Further keyword arguments for the server's constructor.
    """
    return server_class(host=host, port=0, **kwargs)


@asynccontextmanager
async def connect_client(
    server: OneClientServer,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> AsyncIterator[Client]:
    """Connect a :class:`Client` to a running ``server``.

    Yields once both ends report the connection; closes the client on exit.

    Parameters
    ----------
    server
        A running server, e.g. from :func:`start_server`.
    timeout
        Bound on waiting for the connection.
    **kwargs
        Further keyword arguments for the :class:`Client`.

    Raises
    ------
    TimeoutError
        If the connection is not reported within ``timeout``.
    """
    async with Client(
        server.host or DEFAULT_LOCALHOST, server.port, **kwargs
    ) as client:
        with anyio.fail_after(timeout):
            await server.wait_connected()
            await client.wait_connected()
        yield client


@asynccontextmanager
async def connected_pair(
    server_kwargs: dict[str, Any] | None = None,
    client_kwargs: dict[str, Any] | None = None,
    *,
    host: str = DEFAULT_LOCALHOST,
    server_class: type[OneClientServer] = OneClientServer,
    timeout: float = DEFAULT_TIMEOUT,
) -> AsyncIterator[tuple[OneClientServer, Client]]:
    """Start a server on ``host`` (a free port) and connect a client to it.

    Yields ``(server, client)`` once both ends are connected; closes both on
    exit.

    Parameters
    ----------
    server_kwargs
        Keyword arguments for the server.
    client_kwargs
        Keyword arguments for the :class:`Client`.
    host
        Loopback address to use (``"127.0.0.1"`` or ``"::1"``).
    server_class
        :class:`OneClientServer` or a subclass.
    timeout
        Bound on waiting for the connection.
    """
    async with start_server(server_class, host=host, **(server_kwargs or {})) as server:
        async with connect_client(
            server, timeout=timeout, **(client_kwargs or {})
        ) as client:
            yield server, client


class _Struct(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("values", ctypes.c_double * 3)]


async def _check_round_trip(make_pair: MakePair, timeout: float) -> None:
    async with make_pair({}, {}) as (server, client):
        with anyio.fail_after(timeout):
            for sender, receiver in ((client, server), (server, client)):
                await sender.write(b"raw")
                assert await receiver.readexactly(3) == b"raw"
                await sender.write_str("text ✓")
                assert await receiver.read_str() == "text ✓"
                await sender.write_json({"a": [1, 2.5, None]})
                assert await receiver.read_json() == {"a": [1, 2.5, None]}
                await sender.write_from(_Struct(7, (1.0, 2.0, 3.0)))
                received = _Struct()
                await receiver.read_into(received)
                assert received.index == 7
                assert list(received.values) == [1.0, 2.0, 3.0]


async def _check_ordering_and_sizes(make_pair: MakePair, timeout: float) -> None:
    async with make_pair({"max_line_length": 1 << 22}, {}) as (server, client):
        with anyio.fail_after(timeout):
            # Many small messages stay in order.
            for i in range(500):
                await client.write_str(str(i))
            for i in range(500):
                assert await server.read_str() == str(i)
            # An empty write sends nothing and breaks nothing.
            await client.write(b"")
            # Tiny writes: one byte at a time.
            for byte in b"tiny\r\n":
                await client.write(bytes([byte]))
            assert await server.read_str() == "tiny"
            # A large write, read while it is being sent.
            big = bytes(range(256)) * (4 * 4096)  # 4 MiB
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(client.write, big)
                assert await server.readexactly(len(big)) == big


async def _check_concurrent_reader(make_pair: MakePair, timeout: float) -> None:
    async with make_pair({}, {}) as (server, client):
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(server.read_str)
                await anyio.wait_all_tasks_blocked()
                try:
                    await server.read_str()
                except anyio.BusyResourceError:
                    pass
                else:
                    raise AssertionError("a second concurrent reader was not rejected")
                await client.write_str("for the first reader")


async def _check_peer_close(make_pair: MakePair, timeout: float) -> None:
    server_calls, client_calls = CallbackRecorder(timeout), CallbackRecorder(timeout)
    async with make_pair(
        {"connect_callback": server_calls}, {"connect_callback": client_calls}
    ) as (server, client):
        assert await server_calls.wait_for(1) == [True]
        assert await client_calls.wait_for(1) == [True]
        await client.write_str("before closing")
        await client.close()
        assert client_calls.states == [True, False], "callback must run in close()"
        assert not client.connected and not client.should_be_connected
        await client.close()  # idempotent
        assert client_calls.states == [True, False]
        # The server notices without reading, keeps what was sent, then fails.
        assert await server_calls.wait_for(2) == [True, False]
        assert not server.connected and server.should_be_connected
        with anyio.fail_after(timeout):
            assert await server.read_str() == "before closing"
        for method in (server.read_str, client.read_str):
            try:
                with anyio.fail_after(timeout):
                    await method()
            except ConnectionError:
                pass
            else:
                raise AssertionError(f"{method} after close did not raise")


async def _check_close_wakes_blocked_peer(make_pair: MakePair, timeout: float) -> None:
    async with make_pair({}, {}) as (server, client):
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as task_group:
                outcome: list[BaseException] = []

                async def blocked_reader() -> None:
                    try:
                        await client.read_str()
                    except ConnectionError as exc:
                        outcome.append(exc)

                task_group.start_soon(blocked_reader)
                await anyio.wait_all_tasks_blocked()
                await server.close()
            assert outcome, "a blocked reader was not woken by the peer's close"


async def _check_close_wakes_blocked_writer(
    make_pair: MakePair, timeout: float
) -> None:
    async with make_pair({}, {}) as (server, client):
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as task_group:
                outcome: list[BaseException] = []

                async def blocked_writer() -> None:
                    chunk = b"x" * 65536
                    try:
                        while True:  # the server never reads: backpressure
                            await client.write(chunk)
                    except ConnectionError as exc:
                        outcome.append(exc)

                task_group.start_soon(blocked_writer)
                await anyio.wait_all_tasks_blocked()
                await server.close()
            assert outcome, "a blocked writer was not woken by the peer's close"


_CHECKS = (
    _check_round_trip,
    _check_ordering_and_sizes,
    _check_concurrent_reader,
    _check_peer_close,
    _check_close_wakes_blocked_peer,
    _check_close_wakes_blocked_writer,
)


async def check_connection(
    make_pair: MakePair, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Assert the generic connection contract on a client/server pair.

    Each check gets a fresh pair from ``make_pair``: round trips of bytes,
    text, JSON and structs both ways; ordering of many messages; empty, tiny
    and large writes; a second concurrent reader rejected; a peer's close
    noticed without reading, data sent before it kept, then
    ``ConnectionError``; ``close`` idempotent and running the callback before
    it returns; a peer blocked in a read or a write woken by a close.

    Parameters
    ----------
    make_pair
        ``make_pair(server_kwargs, client_kwargs)`` yields a connected
        ``(server, client)``; see :data:`MakePair` and :func:`connected_pair`.
    timeout
        Bound of every wait.

    Raises
    ------
    AssertionError
        Naming the check that failed.
    """
    for check in _CHECKS:
        try:
            await check(make_pair, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{check.__name__[7:]}: {exc}") from exc
        except TimeoutError as exc:
            raise AssertionError(f"{check.__name__[7:]}: timed out") from exc
