"""Stand-ins for the private asyncio objects that lsst.ts.tcpip 2.2 tests read.

lsst.ts.tcpip 2.2 keeps an ``asyncio.StreamReader`` in ``_reader``, an
``asyncio.StreamWriter`` in ``_writer`` and (for a server) an
``asyncio.Server`` in ``_server``. They are private, but its own tests (and
test suites that copy them) read them: ``client._reader.at_eof()``,
``client._reader.readline()``, ``server._writer`` with
:func:`~anytcpip.asyncio_compat.write_from`, ``server._server.sockets``.
There are no asyncio streams underneath anytcpip, so these small objects
offer the part of that API that such code uses, on top of the native
connection:

- :class:`StreamReaderView`: ``at_eof``, ``read``, ``readline``,
  ``readexactly``, ``readuntil`` (asyncio's end-of-stream results once the
  connection is closed);
- :class:`StreamWriterView`: ``write``/``writelines`` (sent in order, in the
  background, as a transport would), ``drain``, ``is_closing``, ``close``,
  ``wait_closed``, ``get_extra_info("socket" | "peername" | "sockname")``;
- :class:`ServerView`: ``sockets``, ``is_serving``.

Anything else of those asyncio classes is not provided; use the public read
and write methods instead (see ``docs/migrating.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from anyio.abc import SocketAttribute

if TYPE_CHECKING:
    import socket

    from ._base import BaseClientOrServer

__all__ = ["ServerView", "StreamReaderView", "StreamWriterView"]


class StreamReaderView:
    """The part of ``asyncio.StreamReader`` that 2.2-era tests use.

    Parameters
    ----------
    owner
        The client or server whose connection it reads.
    """

    def __init__(self, owner: BaseClientOrServer) -> None:
        self._owner = owner

    def at_eof(self) -> bool:
        """Return True once the connection has ended and all it sent was read."""
        owner = self._owner
        return not owner.connected and not owner._unread_after_end()

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all until EOF for -1); ``b""`` at EOF."""
        if self.at_eof():
            return b""
        return await self._owner.read(n)

    async def readline(self) -> bytes:
        r"""Read up to and including ``b"\n"``; ``b""`` at EOF."""
        if self.at_eof():
            return b""
        return await self._owner.readline()

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes, or raise ``asyncio.IncompleteReadError``."""
        if self.at_eof() and n > 0:
            raise asyncio.IncompleteReadError(b"", n)
        return await self._owner.readexactly(n)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Read up to and including ``separator``, or raise at EOF."""
        if self.at_eof():
            raise asyncio.IncompleteReadError(b"", None)
        return await self._owner.readuntil(separator)


class StreamWriterView:
    """The part of ``asyncio.StreamWriter`` that 2.2-era tests use.

    ``write`` queues the data and sends it in the background, in order, as a
    transport does; ``drain`` waits until it has been sent and raises the
    ``ConnectionError`` that sending met, if any. Bound to one connection:
    once that has ended, it is closing and writes are dropped.

    Parameters
    ----------
    owner
        The client or server whose connection it writes to.
    generation
        The number of the connection it belongs to.
    """

    def __init__(self, owner: BaseClientOrServer, generation: int) -> None:
        self._owner = owner
        self._generation = generation
        self._stream: Any = owner._stream
        self._pending: list[bytes] = []
        self._sender: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._closer: asyncio.Task[None] | None = None

    def _current(self) -> bool:
        owner = self._owner
        return owner._generation == self._generation and owner.connected

    def is_closing(self) -> bool:
        """Return True once closed, or once its connection has ended."""
        return self._closer is not None or not self._current()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` for sending (dropped if the connection has ended)."""
        if self.is_closing():
            return
        self._pending.append(bytes(data))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send())

    def writelines(self, data: Iterable[bytes | bytearray | memoryview]) -> None:
        """Queue each item of ``data`` for sending."""
        for item in data:
            self.write(item)

    async def _send(self) -> None:
        native = self._owner._native
        while self._pending and native is not None:
            data, self._pending = b"".join(self._pending), []
            try:
                await native.write(data)
            except ConnectionError as exc:
                self._error = exc
                self._pending.clear()

    async def drain(self) -> None:
        """Wait until the queued data is sent.

        Raises
        ------
        ConnectionError
            If the connection ended before the data could be sent.
        """
        sender = self._sender
        if sender is not None:
            await asyncio.shield(sender)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if not self._current():
            raise ConnectionResetError("Connection lost")

    def close(self) -> None:
        """Start closing the connection (as a peer would see it); idempotent.

        ``should_be_connected`` is left unchanged.
        """
        if self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        sender = self._sender
        if sender is not None:
            await asyncio.wait([sender])
        owner = self._owner
        native = owner._native
        if native is not None and owner._generation == self._generation:
            await owner._close_native_connection()

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` has closed the connection."""
        closer = self._closer
        if closer is not None:
            await asyncio.shield(closer)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Return ``"socket"``, ``"peername"`` or ``"sockname"``, else ``default``."""
        stream = self._stream
        if stream is None:
            return default
        attribute = {
            "socket": SocketAttribute.raw_socket,
            "peername": SocketAttribute.remote_address,
            "sockname": SocketAttribute.local_address,
        }.get(name)
        if attribute is None:
            return default
        return stream.extra(attribute, default)


class ServerView:
    """The part of ``asyncio.Server`` that 2.2-era tests use.

    Parameters
    ----------
    sockets
        The listening sockets.
    """

    def __init__(self, sockets: tuple[socket.socket, ...]) -> None:
        self._sockets = sockets
        self._serving = True

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (one, or one per address family)."""
        return self._sockets if self._serving else ()

    def is_serving(self) -> bool:
        """Return True while listening."""
        return self._serving

    def _closed(self) -> None:
        self._serving = False
