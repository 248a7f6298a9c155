r"""Recordings of a controller link: the file format, a writer and a reader.

``anytcpip tap --record FILE`` (and :class:`anytcpip.testing.Tap`) write a
session between a client and a controller as a recording;
``anytcpip replay FILE`` (and :class:`anytcpip.testing.ReplayServer`) serve
it back as a mock controller. This module defines the format and reads it.

The format (version 1)
----------------------
JSON Lines: one JSON object per line, UTF-8, so ``jq`` works on it. The first
line is the header::

    {"format": "anytcpip-recording", "version": 1,
     "started": "2026-12-01T07:40:00.123456+00:00", "started_unix": 1796110800.12,
     "framing": {"kind": "lines", "terminator": "\r\n", "encoding": "utf-8", ...},
     "listen": "127.0.0.1:5000", "target": "127.0.0.1:5001", "anytcpip": "1.0.0"}

Every other line is one record::

    {"t": 0.012345, "session": 1, "kind": "data", "dir": "c2s",
     "framing": "lines", "encoding": "text", "payload": "MOVE 1\r\n"}

- ``t``: seconds (float) since the recording started, from a monotonic
  clock; ``started`` and ``started_unix`` in the header give the wall-clock
  time of ``t == 0``.
- ``session``: the number of the client connection (1, 2, ...); the tap
  serves one client at a time.
- ``kind``: ``"connect"`` (a client connected and the tap reached the
  target; ``client`` holds the client's address), ``"data"`` (one message),
  ``"eof"`` (``dir``'s sender closed its side: a FIN), ``"reset"``
  (``dir``'s sender reset the connection: an RST), ``"close"`` (the session
  ended; both sides are closed).
- ``dir``: ``"c2s"`` (client to server, i.e. to the controller) or
  ``"s2c"`` (server to client); absent on ``connect`` and ``close``.
- ``framing``: on ``data``, the framing's kind (also in the header).
- ``encoding`` and ``payload``: on ``data``, the message's bytes exactly as
  they were on the wire (terminator or length prefix included).
  ``"encoding": "text"``: ``payload`` is those bytes decoded with the
  framing's text encoding (only for ``lines`` and ``json`` framings, when
  they decode); ``"encoding": "base64"``: ``payload`` is the bytes in
  base64.
- ``heartbeat``: ``true`` on a heartbeat line (absent otherwise).
- ``partial``: ``true`` on trailing bytes that did not make a whole message
  when the sender closed (absent otherwise).

Readers ignore fields they do not know, so later minor additions stay
readable. The writer writes each line whole, with one ``write`` on an
unbuffered file, so a killed writer leaves at most a truncated last line;
:func:`load` ignores it.
"""

from __future__ import annotations

import base64
import codecs
import datetime
import json
import os
import time
from collections.abc import Iterator, Sequence
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
    "Header",
    "Record",
    "RecordKind",
    "Recording",
    "RecordingError",
    "RecordingWriter",
    "load",
    "loads",
]

FORMAT = "anytcpip-recording"
"""The ``format`` field of a recording's header line."""

VERSION = 1
"""The format version this module writes (and the newest it reads)."""

Direction = Literal["c2s", "s2c"]
"""``"c2s"``: from the client to the server (controller); ``"s2c"``: back."""

RecordKind = Literal["connect", "data", "eof", "reset", "close"]
"""What a record says happened."""

FramingKind = Literal["lines", "json", "frames", "raw"]

_KINDS = ("connect", "data", "eof", "reset", "close")
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


def _parse_header(obj: Any, where: str) -> Header:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise RecordingError(
            f"{where}: not an anytcpip recording (the first line must be a "
            f'JSON object with "format": "{FORMAT}")'
        )
    version = obj.get("version")
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise RecordingError(
            f"{where}: recording format version {version!r} is not supported "
            f"(this anytcpip reads version {VERSION})"
        )
    try:
        framing = Framing.from_json(obj.get("framing") or {})
    except (ValueError, TypeError) as exc:
        raise RecordingError(f"{where}: bad framing in the header: {exc}") from exc
    known = {"format", "version", "started", "started_unix", "framing", "listen"}
    known |= {"target", "anytcpip"}
    return Header(
        version=version,
        started=str(obj.get("started", "")),
        started_unix=float(obj.get("started_unix", 0.0)),
        framing=framing,
        listen=str(obj.get("listen", "")),
        target=str(obj.get("target", "")),
        extra={key: value for key, value in obj.items() if key not in known},
    )


def _parse_record(obj: Any, where: str) -> Record:
    if not isinstance(obj, dict):
        raise RecordingError(f"{where}: a record must be a JSON object")
    try:
        kind = obj["kind"]
        if kind not in _KINDS:
            raise RecordingError(f"{where}: unknown record kind {kind!r}")
        direction = obj.get("dir")
        if direction not in (None, "c2s", "s2c"):
            raise RecordingError(f"{where}: unknown direction {direction!r}")
        if kind in ("data", "eof", "reset") and direction is None:
            raise RecordingError(f"{where}: a {kind!r} record needs a direction")
        payload = b""
        if kind == "data":
            encoding = obj.get("encoding")
            text = obj["payload"]
            if not isinstance(text, str):
                raise RecordingError(f"{where}: payload must be a string")
            if encoding == "text":
                payload = text.encode(obj.get("text_encoding") or "utf-8")
            elif encoding == "base64":
                payload = base64.b64decode(text.encode("ascii"), validate=True)
            else:
                raise RecordingError(
                    f"{where}: payload encoding {encoding!r} must be 'text' or 'base64'"
                )
        return Record(
            time=float(obj["t"]),
            kind=kind,
            direction=direction,
            payload=payload,
            session=int(obj.get("session", 1)),
            heartbeat=bool(obj.get("heartbeat", False)),
            partial=bool(obj.get("partial", False)),
            client=str(obj.get("client", "")),
        )
    except KeyError as exc:
        raise RecordingError(f"{where}: missing field {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        if isinstance(exc, RecordingError):
            raise
        raise RecordingError(f"{where}: bad value: {exc}") from exc


def loads(text: str, name: str = "<recording>") -> Recording:
    """Parse a recording from its text (see :func:`load`).

    Raises
    ------
    RecordingError
        If the text is not a recording; the message names the line.
    """
    lines = text.split("\n")
    complete = text.endswith("\n")
    # A line without its newline at the very end: the writer was killed.
    last_cut = not complete and bool(lines[-1])
    if complete or not lines[-1]:
        lines.pop()
    if not lines or not lines[0].strip():
        raise RecordingError(f"{name}: empty file, not an anytcpip recording")
    header_obj = _json_line(lines[0], f"{name}, line 1", last_cut and len(lines) == 1)
    if header_obj is None:
        raise RecordingError(f"{name}: the header line is truncated")
    header = _parse_header(header_obj, f"{name}, line 1")
    # Text records are stored in the framing's encoding when it is not UTF-8.
    text_encoding = header.framing.encoding
    recording = Recording(header)
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        is_last = number == len(lines)
        where = f"{name}, line {number}"
        obj = _json_line(line, where, last_cut and is_last)
        if obj is None:
            recording.truncated = True
            break
        if isinstance(obj, dict) and obj.get("encoding") == "text":
            obj.setdefault("text_encoding", text_encoding)
        recording.records.append(_parse_record(obj, where))
    return recording


def _json_line(line: str, where: str, may_be_cut: bool) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        if may_be_cut:
            return None
        raise RecordingError(f"{where}: not JSON ({exc.msg})") from exc


def load(path: str | os.PathLike[str]) -> Recording:
    """Read a recording written by ``anytcpip tap --record`` or ``Tap``.

    A truncated last line (the writer was killed mid-write) is ignored and
    ``truncated`` is set: everything up to the last complete record loads.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    Recording
        Its header and records.

    Raises
    ------
    OSError
        If the file cannot be read.
    RecordingError
        If it is not a recording (or a newer format version); the message
        names the file and line.
    """
    with open(path, encoding="utf-8", errors="surrogateescape") as file:
        text = file.read()
    return loads(text, os.fspath(path))


class RecordingWriter:
    """Write a recording, crash-safe: each record whole, at once.

    The file is opened unbuffered; each record is one ``write`` of one
    complete line, so a process killed at any point leaves every earlier
    record intact and at most a truncated last line (which :func:`load`
    ignores).

    Parameters
    ----------
    path
        The file to create (or truncate).
    header
        The header line to write first.
    """

    def __init__(self, path: str | os.PathLike[str], header: Header) -> None:
        self.path = path
        self.header = header
        self._file = open(path, "wb", buffering=0)  # closed in close()
        try:
            self._write(header.to_json())
        except BaseException:
            self._file.close()
            raise

    def _write(self, obj: dict[str, Any]) -> None:
        data = memoryview((json.dumps(obj, ensure_ascii=False) + "\n").encode())
        while data:  # a regular file takes it in one write; loop to be sure
            written = self._file.write(data)
            data = data[written or 0 :]

    def write(self, record: Record) -> None:
        """Append one record (written to the OS before this returns)."""
        self._write(record.to_json(self.header.framing))

    def write_all(self, records: Sequence[Record]) -> None:
        """Append several records."""
        for record in records:
            self.write(record)

    def close(self) -> None:
        """Close the file; idempotent."""
        self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
