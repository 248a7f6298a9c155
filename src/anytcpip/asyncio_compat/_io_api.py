"""``ReadWriteMixin``: the read and write methods of a compatibility instance.

The methods of :class:`~anytcpip.asyncio_compat.BaseClientOrServer` that
read and write (bytes, lines, ctypes objects, text, JSON), with lsst.ts.tcpip
2.2's signatures, results and exceptions. Each is delegated to the native
connection, from whichever task calls it; nothing here parses or buffers
bytes. ``read_str``/``write_str`` are 2.2's two lines over the delegated
``readuntil``/``write``, because in 2.2 ``encoding`` and ``terminator`` are
plain attributes that may change at any time and heartbeat lines are
returned, not skipped. What is added is 2.2's view of the end of the stream:
a read that *starts* there raises ``ConnectionError("Not connected")``.

The mixin reads the ``encoding`` and ``terminator`` attributes that the base
class sets in ``__init__`` (declared below) and declares the one hook it
needs, ``_connection``, which ``BaseClientOrServer`` overrides (refusing,
too, a task bound to a connection that has ended); it never imports
``_base``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import _json
from .._constants import RECEIVE_CHUNK_SIZE

if TYPE_CHECKING:
    from .._connection import BaseClientOrServer as _NativeBase

__all__ = ["ReadWriteMixin"]


class ReadWriteMixin:
    """The read and write methods of :class:`BaseClientOrServer` (2.2 API)."""

    # Set by BaseClientOrServer.__init__; may be changed at any time, as in 2.2.
    encoding: str
    terminator: bytes

    # -- hooks ------------------------------------------------------------------

    def _connection(self) -> _NativeBase:
        """Return the native instance that I/O of the current task goes to (hook).

        Raises
        ------
        ConnectionError
            If not connected.
        """
        raise NotImplementedError

    # -- reading ----------------------------------------------------------------

    @staticmethod
    def _at_eof_check(data: bytes, was_open: bool, wanted: bool) -> bytes:
        # 2.2 raises "Not connected" for a read that starts at the end of the
        # stream (``at_eof``: end seen, nothing buffered), and returns b"" only
        # for one that reaches it while waiting.
        if not data and wanted and not was_open:
            raise ConnectionError("Not connected")
        return data

    @staticmethod
    def _eof_error(exc: asyncio.IncompleteReadError, was_open: bool) -> BaseException:
        if not exc.partial and not was_open:
            error = ConnectionError("Not connected")
            error.__cause__ = exc
            return error
        return exc

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
        was_open = connection.connected
        if n != -1:
            data = await connection.read(n)
        else:
            chunks = []
            while chunk := await connection.read(RECEIVE_CHUNK_SIZE):
                chunks.append(chunk)
            data = b"".join(chunks)
        return self._at_eof_check(data, was_open, n != 0)

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
        connection = self._connection()
        was_open = connection.connected
        try:
            return await connection.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise self._eof_error(exc, was_open) from None

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
        connection = self._connection()
        was_open = connection.connected
        return self._at_eof_check(await connection.readline(), was_open, True)

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
        connection = self._connection()
        was_open = connection.connected
        try:
            return await connection.readuntil(separator)
        except asyncio.IncompleteReadError as exc:
            raise self._eof_error(exc, was_open) from None

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
        connection = self._connection()
        was_open = connection.connected
        try:
            await connection.read_into(struct)
        except asyncio.IncompleteReadError as exc:
            raise self._eof_error(exc, was_open) from None

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
        return _json.loads(await self.read_str())

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
