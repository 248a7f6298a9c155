"""Stream-level helpers for raw anyio streams, and the ctypes helpers."""

from __future__ import annotations

import ctypes
import socket

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.stapled import StapledByteStream  # noqa: F401  (documented pairing)

import anytcpip
from anytcpip import close_stream, read_into, set_socket_options, write_from


class Sample(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint16), ("values", ctypes.c_float * 2)]


async def _tcp_pair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener:
        client = await anyio.connect_tcp("127.0.0.1", port)
        server = await listener.listeners[0].accept()  # type: ignore[attr-defined]
    return client, server


async def test_write_from_and_read_into_on_raw_streams() -> None:
    client, server = await _tcp_pair()
    async with client, server:
        buffered = BufferedByteReceiveStream(server)
        await write_from(client, Sample(1, (0.5, 1.5)), Sample(2, (2.5, 3.5)))
        first, second = Sample(), Sample()
        with anyio.fail_after(5):
            await read_into(buffered, first)
            await read_into(buffered, second)
        assert (first.id, list(first.values)) == (1, [0.5, 1.5])
        assert (second.id, list(second.values)) == (2, [2.5, 3.5])


async def test_read_into_incomplete() -> None:
    client, server = await _tcp_pair()
    async with server:
        await client.send(b"\x07\x00\x01")
        await client.aclose()
        with anyio.fail_after(5), pytest.raises(anytcpip.IncompleteReadError) as info:
            await read_into(BufferedByteReceiveStream(server), Sample())
    assert info.value.expected == ctypes.sizeof(Sample)
    assert info.value.partial == b"\x07\x00\x01"


async def test_close_stream_ignores_closed_and_broken() -> None:
    client, server = await _tcp_pair()
    await close_stream(client)
    await close_stream(client)  # already closed: no error
    await close_stream(server)


async def test_set_socket_options_enables_keepalive() -> None:
    client, server = await _tcp_pair()
    async with client, server:
        set_socket_options(client)
        sock = client.extra(anyio.abc.SocketAttribute.raw_socket)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
            assert idle == anytcpip.KEEPALIVE_TIME
        if hasattr(socket, "TCP_KEEPCNT"):
            count = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
            assert count == anytcpip.KEEPALIVE_PROBES


async def test_set_socket_options_on_a_stream_without_socket_is_a_no_op() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](1)
    from anyio.streams.stapled import StapledObjectStream

    stream = StapledObjectStream(send, receive)
    set_socket_options(stream)  # type: ignore[arg-type]
    await stream.aclose()


def test_set_socket_options_on_a_udp_socket_is_a_no_op() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        set_socket_options(sock)


# -- the ctypes helpers (one copy each, shared by the dispatcher and requests) -------


class Base(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint8)]


class Derived(Base):
    _fields_ = [("b", ctypes.c_uint8 * 2), ("c", ctypes.c_double)]


def test_field_names_walk_the_class_hierarchy_in_order() -> None:
    from anytcpip._streams import ctypes_field_names

    assert ctypes_field_names(Derived) == ["a", "b", "c"]
    assert ctypes_field_names(Sample) == ["id", "values"]


def test_repr_shows_fields_arrays_and_tuples() -> None:
    from anytcpip._streams import ctypes_repr

    value = Derived()
    value.a, value.c = 1, 2.5
    value.b[1] = 7
    assert ctypes_repr(value) == "Derived(a=1, b=[0, 7], c=2.5)"
    assert ctypes_repr((value,)) == "(Derived(a=1, b=[0, 7], c=2.5),)"
    assert ctypes_repr("text") == "'text'"
