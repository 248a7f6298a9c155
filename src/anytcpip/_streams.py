"""Helpers for raw anyio streams, and for ctypes objects.

The public helpers (``read_into``, ``write_from``, ``close_stream``) serve
users who hold raw anyio streams. The ctypes helpers (``ctypes_size``,
``ctypes_field_names``, ``ctypes_repr``) and the address formatters
(``host_port``, ``peer_address``) are the package's only copies of those
rules.
"""

from __future__ import annotations

import ctypes
from typing import Any, Protocol

import anyio
import anyio.abc

from ._exceptions import IncompleteReadError
from ._framing import fill_ctypes
from ._socket_options import raw_socket

__all__ = [
    "close_stream",
    "ctypes_field_names",
    "ctypes_repr",
    "ctypes_size",
    "host_port",
    "peer_address",
    "read_into",
    "write_from",
]


def host_port(host: object, port: object) -> str:
    """Format an address for messages: ``host:port``, ``[v6]:port``, ``*:port``."""
    text = "*" if host is None or host == "" else str(host)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def peer_address(stream: anyio.abc.ByteStream) -> str:
    """Return the peer's address of ``stream`` for messages (``"?"`` if unknown).

    Asks the socket itself when there is one (:func:`raw_socket`): anyio's
    ``extra`` builds all of a socket stream's attributes on every call,
    about 13 µs per connection on a 2-core machine, a few percent of
    accepting one.
    """
    sock = raw_socket(stream)
    address: object
    if sock is not None:
        try:
            address = sock.getpeername()
        except OSError:  # the peer has gone, or it never had one
            address = None
    else:
        address = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
    if isinstance(address, tuple) and len(address) >= 2:
        return host_port(address[0], address[1])
    return str(address) if address is not None else "?"


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


def ctypes_field_names(struct_type: type[Any]) -> list[str]:
    """Names of the fields of a ctypes structure type, base classes' first.

    ``_fields_`` of a subclass only lists the fields it adds, so the whole
    class hierarchy is walked, in declaration order.
    """
    return [
        field[0]
        for cls in reversed(struct_type.__mro__)
        for field in cls.__dict__.get("_fields_", ())
    ]


def ctypes_repr(value: object) -> str:
    """``repr``, but showing the fields of ctypes structures (and arrays)."""
    if isinstance(value, ctypes.Structure | ctypes.Union):
        fields = ", ".join(
            f"{name}={ctypes_repr(getattr(value, name))}"
            for name in ctypes_field_names(type(value))
        )
        return f"{type(value).__name__}({fields})"
    if isinstance(value, ctypes.Array):
        return "[" + ", ".join(ctypes_repr(item) for item in value) + "]"
    if isinstance(value, tuple):
        items = ", ".join(ctypes_repr(item) for item in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return repr(value)


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
