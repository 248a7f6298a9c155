"""Helpers for users who hold raw anyio streams (API.md section 8)."""

from __future__ import annotations

import ctypes
from typing import Any, Protocol

import anyio
import anyio.abc

from ._exceptions import IncompleteReadError
from ._framing import fill_ctypes

__all__ = ["close_stream", "ctypes_size", "read_into", "write_from"]


class ReceiveExactlyStream(Protocol):
    """A stream with ``receive_exactly``, such as ``BufferedByteReceiveStream``."""

    async def receive_exactly(self, nbytes: int) -> bytes:
        """Receive exactly ``nbytes`` bytes."""
        ...


def ctypes_size(obj: Any) -> int:
    """Return ``ctypes.sizeof(obj)``, with a clear error for non-ctypes objects.

    Raises
    ------
    TypeError
        If ``obj`` is not a ctypes instance (a ``Structure``, array, …).
    """
    if isinstance(obj, type):
        raise TypeError(f"expected a ctypes instance, got the type {obj!r}")
    try:
        return ctypes.sizeof(obj)
    except TypeError:
        raise TypeError(f"expected a ctypes object, got {obj!r}") from None


async def read_into(stream: ReceiveExactlyStream, struct: Any) -> None:
    """Fill a ctypes object (e.g. a ``ctypes.Structure``) from ``stream``.

    Parameters
    ----------
    stream
        A stream with ``receive_exactly``, e.g.
        :class:`anyio.streams.buffered.BufferedByteReceiveStream`.
    struct
        The ctypes object to fill with exactly ``ctypes.sizeof(struct)`` bytes.

    Raises
    ------
    IncompleteReadError
        If the stream ends first; ``.partial`` holds what arrived.
    """
    size = ctypes_size(struct)
    try:
        data = await stream.receive_exactly(size)
    except anyio.IncompleteRead as exc:
        buffer = getattr(stream, "buffer", b"")
        raise IncompleteReadError(bytes(buffer), size) from exc
    fill_ctypes(struct, data)


async def write_from(stream: anyio.abc.ByteSendStream, *structs: Any) -> None:
    """Send one or more ctypes objects as one message.

    Parameters
    ----------
    stream
        Any anyio byte send stream.
    *structs
        ctypes objects; their bytes are concatenated and sent with one call.
    """
    for struct in structs:
        ctypes_size(struct)
    await stream.send(b"".join(bytes(struct) for struct in structs))


async def close_stream(stream: anyio.abc.AsyncResource) -> None:
    """Close ``stream``, ignoring a stream that is already closed or broken.

    If the calling scope is cancelled the stream is still closed (forcefully).
    """
    try:
        await stream.aclose()
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        pass
    except anyio.get_cancelled_exc_class():
        await anyio.aclose_forcefully(stream)
        raise
