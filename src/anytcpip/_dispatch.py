"""``StructDispatcher``: a ctypes header whose id field selects the body struct.

Rationale
---------
Binary controller protocols (hexapods, rotators, mounts) send a fixed header
followed by a body whose layout depends on an id in the header. The
dispatcher reads the header with ``read_into``, looks the id up in a mapping
of id to ``ctypes.Structure`` class, and reads the body. Everything goes
through the connection's public read methods, so it works on any client or
server and on every backend.

An unknown id (or, with a length field, a length that does not match the
body) raises a :class:`~anytcpip.BadMessageError` that carries the id and the
bytes seen. Whether the stream is still in step is recorded in the error's
``resynchronised`` (which a ``Correlator`` reads to skip it or stop): with a
length field the dispatcher skips the bad body, so the next read starts at
the next header; without one it cannot know where the next header starts.

The connection guarantees that a cancelled read loses no bytes. A message is
read in two steps (header, then body), so if a read is cancelled after the
header arrived, the header is kept and the next :meth:`StructDispatcher.read`
on the same connection resumes with the body, as long as the connection was
not replaced by a new one in between.
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from ._constants import DEFAULT_MAX_FRAME_SIZE
from ._exceptions import MessageLengthError, UnknownMessageError
from ._streams import ctypes_field_names

if TYPE_CHECKING:
    from ._connection import BaseClientOrServer

__all__ = ["StructDispatcher"]

_H = TypeVar("_H", bound=ctypes.Structure)

_SHOWN_BYTES = 64  # bytes quoted (as hex) in error messages
_MISSING: Any = object()


def _hex(data: bytes) -> str:
    shown = data[:_SHOWN_BYTES].hex(" ")
    return shown + (" ..." if len(data) > _SHOWN_BYTES else "")


def _check_ctypes_type(label: str, value: object) -> int:
    if not isinstance(value, type):
        raise TypeError(f"{label}={value!r} must be a ctypes type (or None)")
    try:
        return ctypes.sizeof(value)
    except TypeError:
        raise TypeError(f"{label}={value!r} must be a ctypes type (or None)") from None


class StructDispatcher(Generic[_H]):
    """Read and write messages made of a ctypes header and a body it selects.

    Each message is a ``header_type`` structure whose ``id_field`` selects the
    body type in ``bodies``, followed by that body. One dispatcher describes
    a protocol and can serve any number of connections.

    Parameters
    ----------
    header_type
        The header, a ``ctypes.Structure`` subclass (byte order is its own:
        use ``ctypes.BigEndianStructure`` for network order).
    id_field
        Name of the header field holding the message id.
    bodies
        Mapping of message id to body type (a ctypes type, usually a
        ``ctypes.Structure`` subclass), or to None for a message that is only
        a header. ``enum.IntEnum`` keys work, since they compare equal to the
        integer in the header.
    length_field
        Name of the header field holding the body's length in bytes, if the
        protocol has one. With it, an unknown id (or a wrong length) is
        skipped, so the stream stays in step, and a length that does not match
        the body type raises :class:`MessageLengthError`.
    length_includes_header
        The length field counts the header too (the whole message).
    max_body_size
        Largest announced body an unknown message may have for the
        dispatcher to skip it (a bigger length is taken as garbage and not
        skipped).

    Raises
    ------
    TypeError
        If a type is not a ctypes type.
    ValueError
        If a field name is not a field of ``header_type``.

    Examples
    --------
    >>> import ctypes
    >>> class Header(ctypes.Structure):
    ...     _fields_ = [("frame_id", ctypes.c_uint16), ("length", ctypes.c_uint16)]
    >>> class Position(ctypes.Structure):
    ...     _fields_ = [("xyz", ctypes.c_double * 3)]
    >>> dispatcher = StructDispatcher(
    ...     Header, "frame_id", {1: Position}, length_field="length"
    ... )
    >>> # header, body = await dispatcher.read(client)
    >>> # await dispatcher.write(server, Position((1.0, 2.0, 3.0)))
    """

    def __init__(
        self,
        header_type: type[_H],
        id_field: str,
        bodies: Mapping[Any, type[Any] | None],
        *,
        length_field: str | None = None,
        length_includes_header: bool = False,
        max_body_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self._header_size = _check_ctypes_type("header_type", header_type)
        fields = ctypes_field_names(header_type)
        for label, name in (("id_field", id_field), ("length_field", length_field)):
            if name is not None and name not in fields:
                raise ValueError(
                    f"{label}={name!r} is not a field of {header_type.__name__} "
                    f"(fields: {sorted(fields)})"
                )
        if not isinstance(max_body_size, int) or max_body_size < 0:
            raise ValueError(f"max_body_size={max_body_size!r} must be an int >= 0")
        sizes: dict[Hashable, int] = {}
        classes: dict[type[Any], list[Hashable]] = {}
        for message_id, body_type in bodies.items():
            if body_type is None:
                sizes[message_id] = 0
                continue
            sizes[message_id] = _check_ctypes_type(f"bodies[{message_id!r}]", body_type)
            classes.setdefault(body_type, []).append(message_id)
        self.header_type = header_type
        """The header structure type."""
        self.id_field = id_field
        """Name of the header field holding the message id."""
        self.length_field = length_field
        """Name of the header field holding the body length, or None."""
        self.length_includes_header = length_includes_header
        """Whether the length field counts the header too."""
        self.max_body_size = max_body_size
        """Largest unknown body the dispatcher will skip."""
        self._bodies: dict[Hashable, type[Any] | None] = dict(bodies)
        self._sizes = sizes
        # Body type -> id, for ``write``; a type used by several ids is left
        # out (the caller must say which id).
        self._ids = {cls: ids[0] for cls, ids in classes.items() if len(ids) == 1}
        # A header read by a cancelled ``read``, per connection: (connection
        # number, header). The next read on that connection resumes with it.
        self._resume: weakref.WeakKeyDictionary[BaseClientOrServer, tuple[int, _H]]
        self._resume = weakref.WeakKeyDictionary()

    @property
    def bodies(self) -> Mapping[Any, type[Any] | None]:
        """The mapping of message id to body type (a copy)."""
        return dict(self._bodies)

    def _announced_length(self, header: _H) -> int | None:
        if self.length_field is None:
            return None
        length = int(getattr(header, self.length_field))
        if self.length_includes_header:
            length -= self._header_size
        return length

    def _describe_header(self, header: _H, message_id: Any) -> str:
        return (
            f"{self.header_type.__name__} with {self.id_field}={message_id!r} "
            f"(header bytes: {_hex(bytes(header))})"
        )

    async def read(self, conn: BaseClientOrServer) -> tuple[_H, Any]:
        """Read one message: the header, then the body its id selects.

        Parameters
        ----------
        conn
            The client or server to read from.

        Returns
        -------
        tuple
            ``(header, body)``: new instances of the header type and of the
            body type (``body`` is None for a message that is only a header).

        Raises
        ------
        UnknownMessageError
            If the header's id is not in ``bodies``. ``.resynchronised`` says
            whether the body was skipped (the stream is in step) or not (close
            the connection).
        MessageLengthError
            If the header's length field does not match the body type.
        IncompleteReadError
            If the peer closes part-way through a message.
        ConnectionError
            If not connected.
        """
        header = self._take_resumed(conn)
        if header is None:
            header = self.header_type()
            await conn.read_into(header)
        try:
            body = await self._read_body(conn, header)
        except anyio.get_cancelled_exc_class():
            # Keep the header: the next read on this connection resumes here.
            self._resume[conn] = (conn.stats.connects, header)
            raise
        return header, body

    def _take_resumed(self, conn: BaseClientOrServer) -> _H | None:
        if not self._resume:
            return None
        saved = self._resume.pop(conn, None)
        if saved is None:
            return None
        connection_number, header = saved
        if connection_number != conn.stats.connects:
            # That header came from an earlier connection.
            return None
        return header

    async def _read_body(self, conn: BaseClientOrServer, header: _H) -> Any:
        message_id = getattr(header, self.id_field)
        body_type = self._bodies.get(message_id, _MISSING)
        length = self._announced_length(header)
        can_skip = length is not None and 0 <= length <= self.max_body_size
        if body_type is _MISSING:
            known = ", ".join(repr(key) for key in self._bodies)
            what = (
                f"unknown message id {message_id!r}: "
                f"{self._describe_header(header, message_id)}; known ids: {known}"
            )
            data = bytes(header)
            if can_skip:
                assert length is not None
                data += await conn.readexactly(length)
                raise UnknownMessageError(
                    f"{what}; its {length}-byte body was skipped",
                    message_id,
                    data,
                    True,
                )
            reason = (
                "the header has no length field"
                if length is None
                else f"the announced body length {length} is not in "
                f"0..{self.max_body_size}"
            )
            raise UnknownMessageError(
                f"{what}; {reason}, so the body was not skipped: the stream is "
                "out of step, close the connection",
                message_id,
                data,
                False,
            )
        expected = self._sizes[message_id]
        if length is not None and length != expected:
            name = "no body" if body_type is None else body_type.__name__
            what = (
                f"{self._describe_header(header, message_id)} announces a "
                f"{length}-byte body, but {name} is {expected} bytes"
            )
            data = bytes(header)
            if can_skip:
                data += await conn.readexactly(length)
                raise MessageLengthError(
                    f"{what}; the announced body was skipped",
                    message_id,
                    data,
                    True,
                    length,
                    expected,
                )
            raise MessageLengthError(
                f"{what}; that length is not in 0..{self.max_body_size}, so "
                "nothing was skipped: the stream is out of step, close the "
                "connection",
                message_id,
                data,
                False,
                length,
                expected,
            )
        if body_type is None:
            return None
        body = body_type()
        await conn.read_into(body)
        return body

    async def write(
        self,
        conn: BaseClientOrServer,
        body: Any,
        *,
        header: _H | None = None,
        message_id: Hashable | None = None,
    ) -> None:
        """Send ``body`` after a header with its id (and length) filled in.

        Header and body are sent as one message (never interleaved with
        other writers).

        Parameters
        ----------
        conn
            The client or server to write to.
        body
            The body (a ctypes object), or None for a message that is only a
            header.
        header
            The header to send, with any other fields set (e.g. a counter or
            a timestamp); a new zeroed one by default. Its id field (and
            length field) is set in place.
        message_id
            The id to send. Default: the id of ``type(body)`` in ``bodies``.
            Required when ``body`` is None or its type has several ids.

        Raises
        ------
        ValueError
            If the id cannot be found, or does not match ``body``'s type.
        ConnectionError
            If not connected.
        """
        if message_id is None:
            if body is None:
                raise ValueError(
                    "message_id is required to send a message without body"
                )
            message_id = self._ids.get(type(body))
            if message_id is None:
                raise ValueError(
                    f"no single message id for {type(body).__name__}: it is not "
                    "in bodies, or several ids use it; pass message_id"
                )
        else:
            body_type = self._bodies.get(message_id, _MISSING)
            if body_type is _MISSING:
                raise ValueError(f"message_id={message_id!r} is not in bodies")
            if (body is None) != (body_type is None) or (
                body_type is not None and not isinstance(body, body_type)
            ):
                wanted = "no body" if body_type is None else body_type.__name__
                raise ValueError(
                    f"message_id={message_id!r} needs {wanted}, got {body!r}"
                )
        if header is None:
            header = self.header_type()
        setattr(header, self.id_field, message_id)
        if self.length_field is not None:
            length = self._sizes[message_id]
            if self.length_includes_header:
                length += self._header_size
            setattr(header, self.length_field, length)
        if body is None:
            await conn.write_from(header)
        else:
            await conn.write_from(header, body)
