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

# Annotations of the re-exported dataclasses are evaluated in this module's
# namespace (their ``__module__``, set below), as by typing.get_type_hints.
from typing import Any, Literal  # noqa: F401

from . import _recording_format
from ._recording_file import RecordingWriter as RecordingWriter
from ._recording_file import load as load
from ._recording_file import loads as loads
from ._recording_format import Framing as Framing
from ._recording_format import FramingKind as FramingKind
from ._recording_format import Header as Header
from ._recording_format import Record as Record
from ._recording_format import Recording as Recording
from ._recording_format import RecordingError as RecordingError

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

# Bound here, not imported, so that the API reference finds their docstrings:
# autodoc reads a constant's docstring from the source of the module it
# documents.

FORMAT = _recording_format.FORMAT
"""The ``format`` field of a recording's header line."""

VERSION = _recording_format.VERSION
"""The format version this module writes (and the newest it reads)."""

Direction = _recording_format.Direction
"""``"c2s"``: from the client to the server (controller); ``"s2c"``: back."""

RecordKind = _recording_format.RecordKind
"""What a record says happened."""

# Reprs, pickles and the API reference say ``anytcpip.recording.Record``.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("anytcpip._recording"):
        _obj.__module__ = __name__
del _name, _obj
