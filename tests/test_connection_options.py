"""Connection options: terminators, length-prefixed frames, validation."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import anyio
import pytest

import anytcpip
from anytcpip import Client, OneClientServer, Requester, blocking
from anytcpip._options import ConnectionOptions, check_timeout, is_async_callable
from helpers import (
    TIMEOUT,
    CallbackRecorder,
    connected_pair,
    raw_peer,
)


async def test_separate_read_and_write_terminators() -> None:
    # A laser controller: reads lines ending in CR, writes CR LF ETX.
    laser = {"read_terminator": b"\r", "write_terminator": b"\r\n\x03"}
    host = {"read_terminator": b"\r\n\x03", "write_terminator": b"\r"}
    async with connected_pair(laser, host) as (server, client):
        assert server.read_terminator == b"\r"
        assert server.write_terminator == b"\r\n\x03"
        with anyio.fail_after(TIMEOUT):
            await client.write_str("STATUS?")
            assert await server.read_str() == "STATUS?"
            await server.write_str("OK 42")
            assert await client.readexactly(8) == b"OK 42\r\n\x03"


async def test_terminator_sets_both() -> None:
    async with connected_pair({"terminator": b"\n"}, {"terminator": b"\n"}) as (
        server,
        client,
    ):
        assert client.read_terminator == client.write_terminator == b"\n"
        with anyio.fail_after(TIMEOUT):
            await client.write_str("x")
            assert await server.readline() == b"x\n"


@pytest.mark.parametrize("prefix", [1, 2, 4])
@pytest.mark.parametrize("byteorder", ["big", "little"])
async def test_length_prefixed_frames(prefix: int, byteorder: str) -> None:
    kwargs = {"frame_prefix": prefix, "frame_byteorder": byteorder}
    async with connected_pair(kwargs, kwargs) as (server, client):
        payloads = [b"", b"a", bytes(range(200)), b"\x00\r\n" * 50]
        with anyio.fail_after(TIMEOUT):
            for payload in payloads:
                await client.write_frame(payload)
            for payload in payloads:
                assert await server.read_frame() == payload
            # The wire format is exactly prefix + payload.
            await client.write_frame(b"xyz")
            header = await server.readexactly(prefix)
            assert int.from_bytes(header, byteorder) == 3  # type: ignore[arg-type]
            assert await server.readexactly(3) == b"xyz"


async def test_frame_over_the_maximum() -> None:
    async with connected_pair({"max_frame_size": 10}, {"max_frame_size": 100}) as (
        server,
        client,
    ):
        with pytest.raises(anytcpip.FrameTooLargeError, match="max_frame_size=100"):
            await client.write_frame(b"x" * 101)
        await client.write_frame(b"y" * 11)
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(anytcpip.FrameTooLargeError) as info:
                await server.read_frame()
        assert (info.value.size, info.value.max_size) == (11, 10)
        # Nothing was consumed.
        assert await server.readexactly(4) == (11).to_bytes(4, "big")


async def test_frame_cut_short_by_the_peer() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        async with raw_peer(server.port) as peer:
            await peer.send((10).to_bytes(4, "big") + b"abc")
        await recorder.wait_for(2)
        with pytest.raises(anytcpip.IncompleteReadError) as info:
            await server.read_frame()
        assert info.value.partial == (10).to_bytes(4, "big") + b"abc"
        assert info.value.expected == 14


def test_frame_options_validation() -> None:
    with pytest.raises(ValueError, match="frame_prefix"):
        OneClientServer(frame_prefix=3)
    with pytest.raises(ValueError, match="max_frame_size"):
        OneClientServer(frame_prefix=1, max_frame_size=256)
    with pytest.raises(ValueError, match="frame_byteorder"):
        OneClientServer(frame_byteorder="middle")
    with pytest.raises(ValueError, match="write_terminator"):
        Client("127.0.0.1", 1, write_terminator=b"")


# -- the options object and its validators ------------------------------------------


def test_options_are_validated_once_and_frozen() -> None:
    options = ConnectionOptions.create(
        terminator=b"\r", write_terminator=b"\r\n", heartbeat_interval=1
    )
    assert options.read_terminator == b"\r"
    assert options.write_terminator == b"\r\n"
    assert options.max_frame_size == anytcpip.DEFAULT_MAX_FRAME_SIZE
    assert options.skipped_line == anytcpip.HEARTBEAT
    assert ConnectionOptions.create().skipped_line is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.encoding = "latin-1"  # type: ignore[misc]
    # A one-byte prefix caps the default frame size.
    assert ConnectionOptions.create(frame_prefix=1).max_frame_size == 255


def test_default_options_are_made_once_and_equal_checked_ones() -> None:
    """No keyword: one shared instance, equal to what the checks build."""
    default = ConnectionOptions.create()
    assert ConnectionOptions.create() is default
    assert Client("127.0.0.1", 1)._options is default
    # Equal values that are not the default objects themselves go through
    # every check, and build equal options.
    checked = ConnectionOptions.create(
        encoding="".join(["utf", "-8"]),
        terminator=bytes(bytearray(b"\r\n")),
        frame_byteorder="".join(["b", "ig"]),  # type: ignore[arg-type]
        max_line_length=int("65536"),
    )
    assert checked is not default
    assert checked == default
    # A value equal to a default but of the wrong type is still refused.
    with pytest.raises(ValueError, match="max_line_length"):
        ConnectionOptions.create(max_line_length=65536.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("terminator", b"", "terminator=b'' must be non-empty bytes"),
        ("terminator", "\n", "must be non-empty bytes"),
        ("read_terminator", b"", "read_terminator"),
        ("encoding", "no-such-codec", "unknown encoding"),
        ("max_line_length", 0, "max_line_length=0 must be an int >= 1"),
        ("max_line_length", True, "max_line_length"),
        ("max_frame_size", 0, "max_frame_size"),
        ("heartbeat_interval", 0, "heartbeat_interval=0 must be None or > 0"),
        ("heartbeat_timeout", -1, "heartbeat_timeout"),
        ("heartbeat_timeout", float("nan"), "heartbeat_timeout"),
    ],
)
def test_every_front_end_rejects_bad_options_alike(
    keyword: str, value: object, message: str
) -> None:
    kwargs: dict[str, Any] = {keyword: value}
    for make in (
        lambda: ConnectionOptions.create(**kwargs),
        lambda: OneClientServer(**kwargs),
        lambda: Client("127.0.0.1", 1, **kwargs),
        lambda: blocking.Client("127.0.0.1", 1, **kwargs),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            make()


@pytest.mark.parametrize("value", [0, -1.5, float("nan"), "1", True])
def test_one_timeout_validator(value: Any) -> None:
    with pytest.raises(ValueError, match="must be None or > 0"):
        check_timeout("timeout", value)
    assert check_timeout("timeout", None) is None
    assert check_timeout("timeout", 0.5) == 0.5
    for make in (
        lambda: Client("127.0.0.1", 1, connect_timeout=value),
        lambda: Requester(Client("127.0.0.1", 1), timeout=value),
    ):
        with pytest.raises(ValueError, match="must be None or > 0"):
            make()


def test_connect_callback_must_be_async() -> None:
    def plain(_: object) -> None: ...

    class AsyncCallable:
        async def __call__(self, _: object) -> None: ...

    with pytest.raises(TypeError, match="must be an async callable"):
        Client("127.0.0.1", 1, connect_callback=plain)
    Client("127.0.0.1", 1, connect_callback=AsyncCallable())
    assert is_async_callable(AsyncCallable())
    assert not is_async_callable(plain)
