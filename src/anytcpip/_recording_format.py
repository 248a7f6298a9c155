"""The recording format's data model: framing, header and records.

The types a recording is made of, each with the JSON object of its line
(``to_json``): :class:`Framing` (how messages are cut, the header's
``framing``), :class:`Header` (the first line), :class:`Record` (every other
line) and :class:`Recording` (a parsed file). The format itself is specified
in :mod:`anytcpip.recording`, which re-exports these; reading and writing
files is :mod:`anytcpip._recording_file`.
"""

from __future__ import annotations

import base64
import codecs
import datetime
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ._constants import (
    DEFAULT_ENCODING,
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_TERMINATOR,
    HEARTBEAT,
)
from ._version import __version__

__all__ = [
    "FORMAT",
    "VERSION",
    "Direction",
    "Framing",
    "FramingKind",
    "Header",
    "Record",
    "RecordKind",
    "Recording",
    "RecordingError",
]

# These four are documented where users read them: anytcpip.recording.
FORMAT = "anytcpip-recording"
VERSION = 1
Direction = Literal["c2s", "s2c"]
RecordKind = Literal["connect", "data", "eof", "reset", "close"]

FramingKind = Literal["lines", "json", "frames", "raw"]

_FRAMINGS = ("lines", "json", "frames", "raw")


class RecordingError(ValueError):
    """A file is not a recording this version can read (says where and why)."""


@dataclass(frozen=True)
class Framing:
    """How a byte stream is cut into messages.

    Parameters
    ----------
    kind
        ``"lines"``: messages end with ``terminator``; ``"json"``: the same,
        each line a JSON document; ``"frames"``: a length field then that
        many bytes (see below); ``"raw"``: each chunk received is a message.
    terminator
        The end of a message for ``lines`` and ``json``.
    encoding
        The text encoding of ``lines`` and ``json`` messages.
    prefix
        ``frames``: the size of the length field, in bytes (1, 2 or 4).
    byteorder
        ``frames``: the byte order of the length field.
    length_offset
        ``frames``: where the length field starts in the header.
    header_size
        ``frames``: the header's size, the length field included; the
        length counts the bytes after the header. None: ``length_offset +
        prefix``, so the default is exactly the framing of
        ``write_frame``/``read_frame`` (a 4-byte big-endian length, then
        the payload). A ``ctypes`` header such as the hexapod example's
        (a 16-byte header whose ``length`` field, 2 bytes little-endian at
        offset 2, counts the body) is ``Framing("frames", prefix=2,
        byteorder="little", length_offset=2, header_size=16)``.
    max_size
        The longest message accepted as one: a longer line, or a frame
        announcing more, is passed through as raw chunks.
    """

    kind: FramingKind = "lines"
    terminator: bytes = DEFAULT_TERMINATOR
    encoding: str = DEFAULT_ENCODING
    prefix: int = 4
    byteorder: Literal["big", "little"] = "big"
    length_offset: int = 0
    header_size: int | None = None
    max_size: int = max(DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_FRAME_SIZE)

    def __post_init__(self) -> None:
        if self.kind not in _FRAMINGS:
            raise ValueError(f"framing kind={self.kind!r} must be one of {_FRAMINGS}")
        if not isinstance(self.terminator, bytes) or not self.terminator:
            raise ValueError(f"terminator={self.terminator!r} must be non-empty bytes")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {self.encoding!r}") from None
        if self.prefix not in (1, 2, 4, 8):
            raise ValueError(f"prefix={self.prefix!r} must be 1, 2, 4 or 8")
        if self.byteorder not in ("big", "little"):
            raise ValueError(f"byteorder={self.byteorder!r} must be 'big' or 'little'")
        if self.length_offset < 0:
            raise ValueError(f"length_offset={self.length_offset} must be >= 0")
        if self.header_size is not None and (
            self.header_size < self.length_offset + self.prefix
        ):
            raise ValueError(
                f"header_size={self.header_size} must hold the length field "
                f"(length_offset + prefix = {self.length_offset + self.prefix})"
            )
        if self.max_size < 1:
            raise ValueError(f"max_size={self.max_size} must be >= 1")

    @property
    def header_bytes(self) -> int:
        """The size of a ``frames`` header (the length field included)."""
        if self.header_size is None:
            return self.length_offset + self.prefix
        return self.header_size

    @property
    def is_text(self) -> bool:
        """Whether messages are text (``lines`` and ``json``)."""
        return self.kind in ("lines", "json")

    def is_heartbeat(self, message: bytes) -> bool:
        """Whether ``message`` (wire bytes) is a heartbeat line."""
        return self.is_text and message == HEARTBEAT + self.terminator

    def encode(self, body: bytes) -> bytes:
        """Return ``body`` as one message on the wire (add terminator or prefix).

        Raises
        ------
        ValueError
            For a ``frames`` framing with a header beyond the length field
            (there is no way to fill the rest of it), or a body too long for
            the length field.
        """
        if self.is_text:
            return body + self.terminator
        if self.kind == "raw":
            return body
        if self.header_bytes != self.prefix:
            raise ValueError(
                "cannot build a message for a frames framing with a "
                f"{self.header_bytes}-byte header"
            )
        return len(body).to_bytes(self.prefix, self.byteorder) + body

    def to_json(self) -> dict[str, Any]:
        """Return the framing as the header's ``framing`` object."""
        return {
            "kind": self.kind,
            "terminator": self.terminator.decode("latin-1"),
            "encoding": self.encoding,
            "prefix": self.prefix,
            "byteorder": self.byteorder,
            "length_offset": self.length_offset,
            "header_size": self.header_size,
            "max_size": self.max_size,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Framing:
        """Build a framing from a header's ``framing`` object.

        Raises
        ------
        ValueError
            If a field is invalid.
        """
        return cls(
            kind=data.get("kind", "raw"),
            terminator=str(data.get("terminator", "\r\n")).encode("latin-1"),
            encoding=str(data.get("encoding", DEFAULT_ENCODING)),
            prefix=int(data.get("prefix", 4)),
            byteorder=data.get("byteorder", "big"),
            length_offset=int(data.get("length_offset", 0)),
            header_size=data.get("header_size"),
            max_size=int(data.get("max_size", DEFAULT_MAX_FRAME_SIZE)),
        )


@dataclass(frozen=True)
class Header:
    """The first line of a recording.

    Attributes
    ----------
    version
        The format version.
    started
        Wall-clock time (UTC, ISO 8601) of ``t == 0``.
    started_unix
        The same, in seconds since the epoch.
    framing
        How messages were cut.
    listen
        Where the tap listened (``host:port``).
    target
        The controller it forwarded to (``host:port``).
    extra
        Any other header fields, as read.
    """

    version: int = VERSION
    started: str = ""
    started_unix: float = 0.0
    framing: Framing = field(default_factory=Framing)
    listen: str = ""
    target: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def now(cls, framing: Framing, listen: str = "", target: str = "") -> Header:
        """Return a header stamped with the current wall-clock time."""
        unix = time.time()
        started = datetime.datetime.fromtimestamp(unix, datetime.timezone.utc)
        return cls(VERSION, started.isoformat(), unix, framing, listen, target)

    def to_json(self) -> dict[str, Any]:
        """Return the header line's object."""
        return {
            **self.extra,
            "format": FORMAT,
            "version": self.version,
            "started": self.started,
            "started_unix": self.started_unix,
            "framing": self.framing.to_json(),
            "listen": self.listen,
            "target": self.target,
            "anytcpip": __version__,
        }


@dataclass(frozen=True)
class Record:
    """One event of a recorded session.

    Attributes
    ----------
    time
        Seconds since the recording started (monotonic clock).
    kind
        ``"connect"``, ``"data"``, ``"eof"``, ``"reset"`` or ``"close"``.
    direction
        ``"c2s"`` or ``"s2c"`` for ``data``, ``eof`` and ``reset``; None
        otherwise.
    payload
        For ``data``: the message's bytes as on the wire.
    session
        Which client connection (1, 2, ...).
    heartbeat
        Whether the message is a heartbeat line.
    partial
        Whether the bytes are the incomplete end of a stream.
    client
        For ``connect``: the client's address.
    """

    time: float
    kind: RecordKind
    direction: Direction | None = None
    payload: bytes = b""
    session: int = 1
    heartbeat: bool = False
    partial: bool = False
    client: str = ""

    def text(self, encoding: str = DEFAULT_ENCODING) -> str:
        """Return the payload decoded (replacing undecodable bytes)."""
        return self.payload.decode(encoding, errors="replace")

    def to_json(self, framing: Framing) -> dict[str, Any]:
        """Return the record's line object (``framing`` picks text or base64)."""
        obj: dict[str, Any] = {
            "t": round(self.time, 6),
            "session": self.session,
            "kind": self.kind,
        }
        if self.direction is not None:
            obj["dir"] = self.direction
        if self.kind == "data":
            obj["framing"] = framing.kind
            text: str | None = None
            if framing.is_text:
                try:
                    text = self.payload.decode(framing.encoding)
                except UnicodeDecodeError:
                    text = None
            if text is not None:
                obj["encoding"] = "text"
                obj["payload"] = text
            else:
                obj["encoding"] = "base64"
                obj["payload"] = base64.b64encode(self.payload).decode("ascii")
            if self.heartbeat:
                obj["heartbeat"] = True
            if self.partial:
                obj["partial"] = True
        if self.client:
            obj["client"] = self.client
        return obj


@dataclass
class Recording:
    """A parsed recording: its header and its records, in order.

    Attributes
    ----------
    header
        The header line.
    records
        Every record, in the order written.
    truncated
        True if the last line was cut short (the writer was killed) and
        ignored.
    """

    header: Header
    records: list[Record] = field(default_factory=list)
    truncated: bool = False

    @property
    def framing(self) -> Framing:
        """The framing of the recorded messages."""
        return self.header.framing

    @property
    def sessions(self) -> list[int]:
        """The session numbers present, in order."""
        return sorted({record.session for record in self.records})

    def messages(
        self, direction: Direction | None = None, session: int | None = None
    ) -> list[Record]:
        """Return the ``data`` records, optionally of one direction or session."""
        return [
            record
            for record in self.records
            if record.kind == "data"
            and (direction is None or record.direction == direction)
            and (session is None or record.session == session)
        ]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)
