"""The recording format: writer, reader, framing, and the message splitter."""

from __future__ import annotations

import base64
import inspect
import json
import pathlib
import pickle
import typing
from typing import Any

import pytest

from anytcpip import recording
from anytcpip._tap_framing import MessageSplitter, format_record, hex_dump
from anytcpip.recording import (
    FORMAT,
    VERSION,
    Framing,
    Header,
    Record,
    RecordingError,
    RecordingWriter,
    load,
    loads,
)


def write(path: pathlib.Path, framing: Framing, records: list[Record]) -> None:
    with RecordingWriter(path, Header.now(framing, "127.0.0.1:1", "127.0.0.1:2")) as w:
        w.write_all(records)


def test_round_trip_text_and_binary(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "r.jsonl"
    records = [
        Record(0.0, "connect", client="127.0.0.1:5555"),
        Record(0.1, "data", "c2s", "MOVE ✓\r\n".encode()),
        Record(0.2, "data", "s2c", b"\xff\xfe not utf-8\r\n"),
        Record(0.3, "data", "s2c", b"heartbeat\r\n", heartbeat=True),
        Record(0.4, "data", "c2s", b"half a li", partial=True),
        Record(0.5, "eof", "c2s"),
        Record(0.6, "reset", "s2c"),
        Record(0.7, "close"),
    ]
    write(path, Framing("lines"), records)
    recording = load(path)
    assert recording.records == records
    assert recording.framing == Framing("lines")
    assert recording.header.listen == "127.0.0.1:1"
    assert recording.header.target == "127.0.0.1:2"
    assert not recording.truncated
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["format"] == FORMAT and lines[0]["version"] == VERSION
    assert lines[0]["started"].endswith("+00:00")
    # jq-friendly: text stays text, binary is base64, flagged.
    assert lines[2]["encoding"] == "text" and lines[2]["payload"] == "MOVE ✓\r\n"
    assert lines[2]["dir"] == "c2s" and lines[2]["framing"] == "lines"
    assert lines[3]["encoding"] == "base64"
    assert base64.b64decode(lines[3]["payload"]) == b"\xff\xfe not utf-8\r\n"
    assert lines[4]["heartbeat"] is True
    assert "dir" not in lines[1]


def test_binary_framings_are_base64(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, Framing("frames"), [Record(0.0, "data", "c2s", b"\0\0\0\1A")])
    line = json.loads(path.read_text().splitlines()[1])
    assert line["encoding"] == "base64"
    assert load(path).records[0].payload == b"\0\0\0\1A"


def test_a_non_utf8_text_encoding_round_trips(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "r.jsonl"
    framing = Framing("lines", encoding="latin-1")
    write(path, framing, [Record(0.0, "data", "c2s", b"caf\xe9\r\n")])
    assert load(path).records[0].payload == b"caf\xe9\r\n"


def test_a_truncated_last_line_is_ignored(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "r.jsonl"
    write(
        path, Framing(), [Record(float(i), "data", "c2s", b"x\r\n") for i in range(3)]
    )
    text = path.read_text()
    for cut in range(1, len(text.splitlines()[-1]) + 1):
        path.write_text(text[:-cut])
        recording = load(path)
        # Only the newline cut: the record is whole all the same.
        assert len(recording.records) == (3 if cut == 1 else 2)
        assert recording.truncated == (cut > 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("hello\n", "line 1: not JSON"),
        ('{"a": 1}\n', "not an anytcpip recording"),
        ('{"format": "anytcpip-recording", "version": 99}\n', "version 99"),
        (
            '{"format": "anytcpip-recording", "version": 1}\n{"t": 0}\n',
            "line 2: missing field 'kind'",
        ),
        (
            '{"format": "anytcpip-recording", "version": 1}\nnot json\n{}\n',
            "line 2: not JSON",
        ),
        (
            '{"format": "anytcpip-recording", "version": 1}\n'
            '{"t": 0, "kind": "data", "dir": "c2s", "encoding": "hex", '
            '"payload": ""}\n',
            "payload encoding 'hex'",
        ),
        (
            '{"format": "anytcpip-recording", "version": 1}\n'
            '{"t": 0, "kind": "data", "dir": "up", "payload": ""}\n',
            "unknown direction 'up'",
        ),
        (
            '{"format": "anytcpip-recording", "version": 1, '
            '"framing": {"kind": "morse"}}\n',
            "bad framing",
        ),
    ],
)
def test_bad_recordings_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(RecordingError, match=message) as info:
        loads(text, "file.jsonl")
    assert "file.jsonl" in str(info.value)


def test_missing_file_is_an_oserror(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.jsonl")


def test_unknown_fields_are_ignored() -> None:
    text = (
        '{"format": "anytcpip-recording", "version": 1, "future": 1}\n'
        '{"t": 1.5, "kind": "eof", "dir": "s2c", "later": true}\n'
    )
    recording = loads(text)
    assert recording.records == [Record(1.5, "eof", "s2c")]
    assert recording.header.extra == {"future": 1}


def test_framing_validation() -> None:
    bad: list[dict[str, Any]] = [
        {"kind": "morse"},
        {"terminator": b""},
        {"encoding": "no-such-codec"},
        {"prefix": 3},
        {"byteorder": "middle"},
        {"length_offset": -1},
        {"length_offset": 2, "prefix": 2, "header_size": 3},
        {"max_size": 0},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            Framing(**kwargs)
    assert Framing("frames").encode(b"ab") == b"\0\0\0\2ab"
    assert Framing("lines").encode(b"ab") == b"ab\r\n"
    assert Framing("raw").encode(b"ab") == b"ab"
    with pytest.raises(ValueError, match="header"):
        Framing("frames", prefix=2, length_offset=2, header_size=16).encode(b"x")


def test_the_public_module_claims_its_names() -> None:
    # Defined in private modules; reprs, pickles and the API reference say
    # anytcpip.recording, and their annotations resolve there.
    for name in recording.__all__:
        obj = getattr(recording, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "anytcpip.recording", name
            typing.get_type_hints(obj)
    record = Record(0.5, "data", "c2s", b"x\r\n", heartbeat=True)
    assert pickle.loads(pickle.dumps(record)) == record


# -- the splitter -----------------------------------------------------------------


def split(framing: Framing, chunks: list[bytes]) -> list[tuple[bytes, bool]]:
    splitter = MessageSplitter(framing)
    messages = []
    for chunk in chunks:
        messages += splitter.feed(chunk)
    return messages


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))] + [b""]


def test_lines_split_at_any_chunk_boundary() -> None:
    data = b"one\r\ntwo\r\n\r\nthree"
    expected = [(b"one\r\n", False), (b"two\r\n", False), (b"\r\n", False)]
    assert split(Framing(), bytewise(data)) == [*expected, (b"three", True)]
    assert split(Framing(), [data, b""]) == [*expected, (b"three", True)]
    assert split(Framing(terminator=b"\n"), [b"a\nb\n"]) == [
        (b"a\n", False),
        (b"b\n", False),
    ]


def test_an_overlong_line_falls_back_to_raw_chunks() -> None:
    framing = Framing(max_size=8)
    messages = split(framing, [b"short\r\n", b"much too long line", b"more", b""])
    assert messages[0] == (b"short\r\n", False)
    assert b"".join(m for m, _ in messages[1:]) == b"much too long linemore"


def test_frames_split_at_any_chunk_boundary() -> None:
    framing = Framing("frames", prefix=2, byteorder="little")
    data = b"\x03\x00abc\x00\x00\x01\x00z\x05\x00ab"
    expected = [(b"\x03\x00abc", False), (b"\x00\x00", False), (b"\x01\x00z", False)]
    assert split(framing, bytewise(data)) == [*expected, (b"\x05\x00ab", True)]


def test_frames_with_a_header_split_at_any_chunk_boundary() -> None:
    # 4-byte header: 1 byte id, 1 byte spare, 2-byte big-endian body length.
    framing = Framing("frames", prefix=2, length_offset=2, header_size=4)
    data = b"\x01\x00\x00\x02hi" + b"\x02\x00\x00\x00" + b"\x03\x00\x00\x05ab"
    expected = [(b"\x01\x00\x00\x02hi", False), (b"\x02\x00\x00\x00", False)]
    assert split(framing, bytewise(data)) == [*expected, (b"\x03\x00\x00\x05ab", True)]
    assert split(framing, [data, b""]) == [*expected, (b"\x03\x00\x00\x05ab", True)]


def test_an_oversized_frame_falls_back_to_raw_chunks() -> None:
    framing = Framing("frames", prefix=2, length_offset=2, header_size=4, max_size=4)
    messages = split(framing, [b"\x01\x00\x00\x01x", b"\x01\x00\xff\xffzz", b"w", b""])
    assert messages[0] == (b"\x01\x00\x00\x01x", False)
    assert b"".join(m for m, _ in messages[1:]) == b"\x01\x00\xff\xffzzw"


def test_raw_chunks_are_messages() -> None:
    assert split(Framing("raw"), [b"ab", b"c", b""]) == [(b"ab", False), (b"c", False)]


def test_display_formats() -> None:
    assert hex_dump(b"AB\x00") == "    00000000  41 42 00" + " " * 39 + "  |AB.|"
    long = hex_dump(bytes(5000))
    assert long.count("\n") == 64 and long.endswith("... 3976 more bytes")
    lines = Framing()
    clock = lambda: 0.5  # noqa: E731
    entry = format_record(Record(0, "data", "c2s", b"MOVE 1\r\n"), lines, clock)
    assert entry.endswith(" #1 client -> server: MOVE 1")
    entry = format_record(Record(0, "data", "s2c", b"\xff\r\n"), lines, clock)
    assert "server -> client: (1 bytes, not utf-8)" in entry
    entry = format_record(Record(0, "data", "s2c", b"tab\there\r\n"), lines, clock)
    assert entry.endswith("'tab\\there'")
    assert "reset the connection" in format_record(Record(0, "reset", "s2c"), lines)
    assert "client closed its side" in format_record(Record(0, "eof", "c2s"), lines)
    assert "session closed" in format_record(Record(0, "close"), lines)
    entry = format_record(Record(0, "connect", client="1.2.3.4:5"), lines)
    assert "client 1.2.3.4:5 connected" in entry
    raw = format_record(Record(0, "data", "c2s", b"xyz"), Framing("raw"))
    assert "(3 bytes)" in raw and "|xyz|" in raw
