"""Recording files: the loader that parses one and the crash-safe writer.

:func:`loads` parses a recording's text line by line (a truncated last line,
left by a killed writer, is ignored), :func:`load` reads a file, and
:class:`RecordingWriter` writes each record as one whole line with one
``write``. The types they read and write are in
:mod:`anytcpip._recording_format`; :mod:`anytcpip.recording` re-exports
both.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from typing import Any

from ._recording_format import (
    FORMAT,
    VERSION,
    Framing,
    Header,
    Record,
    Recording,
    RecordingError,
)

__all__ = ["RecordingWriter", "load", "loads"]

_KINDS = ("connect", "data", "eof", "reset", "close")


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
