"""The blocking facade, from plain synchronous code, on both backends."""

from __future__ import annotations

import ctypes
import threading
from typing import Literal

import pytest

from anytcpip import IncompleteReadError, blocking

pytestmark = pytest.mark.parametrize("backend", ["asyncio", "trio"])
Backend = Literal["asyncio", "trio"]


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]


def test_round_trips(backend: Backend) -> None:
    with blocking.OneClientServer(port=0, backend=backend) as server:
        assert server.port > 0 and server.host == "127.0.0.1"
        with blocking.Client("127.0.0.1", server.port, backend=backend) as client:
            assert (client.host, client.port) == ("127.0.0.1", server.port)
            server.wait_connected(timeout=5)
            assert client.connected and server.connected
            client.write_str("text")
            assert server.read_str(timeout=5) == "text"
            server.write_json({"a": [1, 2]})
            assert client.read_json(timeout=5) == {"a": [1, 2]}
            client.write_from(Point(1.5, -2.0))
            point = Point()
            server.read_into(point, timeout=5)
            assert (point.x, point.y) == (1.5, -2.0)
            client.writelines([b"a", b"b\n"])
            assert server.readline(timeout=5) == b"ab\n"
            client.write(b"xyz|")
            assert server.readuntil(b"|", timeout=5) == b"xyz|"
            client.write_frame(b"frame")
            assert server.read_frame(timeout=5) == b"frame"
            client.write(b"12345")
            client.drain(timeout=5)
            assert server.readexactly(2, timeout=5) == b"12"
            assert server.read(10, timeout=5) == b"345"
            assert client.stats.messages_sent == 6


def test_timeout_loses_nothing(backend: Backend) -> None:
    with blocking.OneClientServer(port=0, backend=backend) as server:
        with blocking.Client("127.0.0.1", server.port, backend=backend) as client:
            server.wait_connected(timeout=5)
            client.write(b"hal")
            with pytest.raises(TimeoutError, match=r"read_str timed out after 0\.1 s"):
                server.read_str(timeout=0.1)
            client.write(b"f\r\n")
            assert server.read_str(timeout=5) == "half"


def test_callbacks_and_close_client(backend: Backend) -> None:
    states: list[bool] = []
    changed = threading.Event()

    def record(server: blocking.OneClientServer) -> None:
        states.append(server.connected)
        changed.set()

    with blocking.OneClientServer(
        port=0, backend=backend, connect_callback=record
    ) as server:
        with blocking.Client("127.0.0.1", server.port, backend=backend) as client:
            server.wait_connected(timeout=5)
            server.close_client()
            assert states == [True, False]
            assert not server.should_be_connected
            assert client.read(10, timeout=5) == b""
            with blocking.Client("127.0.0.1", server.port, backend=backend):
                server.wait_connected(timeout=5)
                assert server.rejected_count == 0
    assert states == [True, False, True, False]


def test_errors(backend: Backend) -> None:
    with blocking.OneClientServer(port=0, backend=backend) as server:
        port = server.port
        with blocking.Client("127.0.0.1", port, backend=backend) as client:
            server.wait_connected(timeout=5)
            client.write(b"abc")
            client.close()
            with pytest.raises(IncompleteReadError):
                server.readexactly(10, timeout=5)
            with pytest.raises(ConnectionError, match="read_str: closed"):
                client.read_str()
    with pytest.raises(ConnectionRefusedError):
        with blocking.Client("127.0.0.1", port, backend=backend):
            pass
    with pytest.raises(TypeError, match="callable"):
        blocking.Client("127.0.0.1", 1, connect_callback=3)  # type: ignore[arg-type]


def test_write_timeout_sends_nothing_of_the_message(backend: Backend) -> None:
    message = b"m" * 65536 + b"\n"  # a whole line, so the reader can count them
    with blocking.OneClientServer(port=0, backend=backend) as server:
        with blocking.Client("127.0.0.1", server.port, backend=backend) as client:
            server.wait_connected(timeout=5)
            written = 0
            with pytest.raises(TimeoutError, match=r"write timed out after 0\.2 s"):
                for _ in range(10_000):  # the server never reads: buffers fill up
                    client.write(message, timeout=0.2)
                    written += 1
            assert 0 < written < 10_000
            for _ in range(written):  # every message that returned, whole
                assert server.readline(timeout=5) == message
            client.write(b"last\n", timeout=5)  # and nothing of the timed-out one
            assert server.readline(timeout=5) == b"last\n"


def test_usable_while_an_event_loop_runs_in_this_thread(backend: Backend) -> None:
    # As in a Jupyter notebook: the caller's own loop is running, untouched.
    import asyncio

    async def notebook_cell() -> str:
        with blocking.OneClientServer(port=0, backend=backend) as server:
            with blocking.Client("127.0.0.1", server.port, backend=backend) as client:
                server.wait_connected(timeout=5)
                client.write_str("from a cell")
                return server.read_str(timeout=5)

    assert asyncio.run(notebook_cell()) == "from a cell"
