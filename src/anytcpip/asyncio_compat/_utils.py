"""lsst.ts.tcpip's stream-level functions, on asyncio ``StreamReader``/``StreamWriter``.

These work on plain asyncio streams, as in lsst.ts.tcpip; the keepalive
settings and the ctypes checks are anytcpip's own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import anyio.abc
from anyio.abc import SocketAttribute

from .._framing import fill_ctypes
from .._socket_options import set_socket_options as _set_native_socket_options
from .._streams import ctypes_size

__all__ = ["close_stream_writer", "read_into", "set_socket_options", "write_from"]

_log = logging.getLogger("anytcpip.asyncio_compat")

CLOSE_TIMEOUT = 5.0
"""Seconds :func:`close_stream_writer` waits for the writer to finish closing."""


async def close_stream_writer(writer: asyncio.StreamWriter) -> None:
    """Close an asyncio ``StreamWriter`` and wait until it is closed.

    Safe to call on a writer that is already closed or being closed. A
    ``ConnectionError`` while closing means the stream is already gone and is
    ignored; a close that takes longer than :data:`CLOSE_TIMEOUT` seconds is
    logged and abandoned.

    Parameters
    ----------
    writer
        The stream writer to close.
    """
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), timeout=CLOSE_TIMEOUT)
    except ConnectionError as exc:
        _log.info("closing %r: %r; the stream was already closed", writer, exc)
    except asyncio.TimeoutError:
        _log.warning("timed out closing %r; continuing", writer)


async def read_into(reader: asyncio.StreamReader, struct: Any) -> None:
    """Fill a ctypes object (e.g. a ``ctypes.Structure``) from a stream reader.

    Parameters
    ----------
    reader
        The stream reader.
    struct
        The ctypes object to fill with exactly ``ctypes.sizeof(struct)`` bytes.

    Raises
    ------
    asyncio.IncompleteReadError
        If the stream ends first (``.partial`` holds what arrived).
    ConnectionError
        If the connection is lost.
    """
    size = ctypes_size(struct)
    fill_ctypes(struct, await reader.readexactly(size))


async def write_from(writer: asyncio.StreamWriter, *structs: Any) -> None:
    """Write one or more ctypes objects to a stream writer, then drain it.

    The bytes of all the objects are written with one call, so concurrent
    writers never interleave them.

    Parameters
    ----------
    writer
        The stream writer.
    *structs
        ctypes objects (``ctypes.Structure`` instances, arrays, ...).
    """
    for struct in structs:
        ctypes_size(struct)
    writer.write(b"".join(bytes(struct) for struct in structs))
    await writer.drain()


class _TransportSocket:
    """Give a transport's socket the ``extra()`` method of an anyio stream."""

    def __init__(self, sock: object) -> None:
        self._sock = sock

    def extra(self, attribute: object, default: object = None) -> object:
        return self._sock if attribute is SocketAttribute.raw_socket else default


async def set_socket_options(writer: asyncio.StreamWriter) -> None:
    """Enable TCP keepalive on the socket of a stream writer.

    Uses ``KEEPALIVE_TIME``, ``KEEPALIVE_INTERVAL`` and ``KEEPALIVE_PROBES``.
    Unlike lsst.ts.tcpip, an option the OS lacks is skipped, never an error.
    A coroutine function, as in lsst.ts.tcpip, although it does not wait.

    Parameters
    ----------
    writer
        The stream writer of a TCP connection.
    """
    sock = writer.get_extra_info("socket")
    if sock is not None:
        _set_native_socket_options(cast(anyio.abc.ByteStream, _TransportSocket(sock)))
