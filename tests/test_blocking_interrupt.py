"""Ctrl-C in a blocking call: the operation ends on the loop, nothing is lost.

A ``KeyboardInterrupt`` raised in the calling thread while a blocking call
waits must cancel the operation on the event loop, and wait for it to end,
before it propagates: the next call then finds the connection free and the
stream where the interrupted call left it (the same guarantee as a timeout).

The interrupt is a real ``SIGINT`` sent to the main thread with
``signal.pthread_kill``, once the operation is known to be running on the loop
(the async method is wrapped to say so), so the test cannot pass by
interrupting too early. That is also the moment the calling thread goes to
sleep on a lock, and often hands the GIL to the interrupting thread just
before: a signal arriving there is noted but only acted on when the thread
next runs Python code, so these tests hang if a blocking call ever waits
without a bound (``anytcpip._blocking_portal._INTERRUPT_CHECK_INTERVAL``).
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

import pytest

from anytcpip import blocking

Backend = tuple[Literal["asyncio", "trio"], dict[str, Any]]

try:
    import uvloop  # noqa: F401

    HAVE_UVLOOP = True
except ImportError:  # pragma: no cover - uvloop is a test dependency
    HAVE_UVLOOP = False

BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(
        ("asyncio", {"use_uvloop": True}),
        id="asyncio+uvloop",
        marks=pytest.mark.skipif(not HAVE_UVLOOP, reason="needs uvloop"),
    ),
    pytest.param(("trio", {}), id="trio"),
]

pytestmark = [
    pytest.mark.parametrize("backend", BACKENDS),
    pytest.mark.skipif(
        not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill"
    ),
]


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]


@pytest.fixture(autouse=True)
def _default_sigint_handler() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_once_running(
    blocking_obj: blocking.Client | blocking.OneClientServer, method: str
) -> threading.Thread:
    """Send SIGINT to the main thread once ``method`` runs on the event loop.

    The async method of the wrapped object is replaced (on that instance only)
    by one that sets an event first: there is no public signal for "a blocking
    call is now waiting on the loop".
    """
    native: Any = blocking_obj._conn
    original: Callable[..., Awaitable[Any]] = getattr(native, method)
    running = threading.Event()

    async def traced(*args: Any) -> Any:
        running.set()
        return await original(*args)

    setattr(native, method, traced)
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        if running.wait(timeout=30):
            signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _pair(
    backend: Backend,
) -> Iterator[tuple[blocking.OneClientServer, blocking.Client]]:
    with blocking.OneClientServer(
        port=0, backend=backend[0], backend_options=backend[1]
    ) as server:
        with blocking.Client(
            "127.0.0.1", server.port, backend=backend[0], backend_options=backend[1]
        ) as client:
            server.wait_connected(timeout=10)
            yield server, client


def test_interrupted_read_str_loses_nothing(backend: Backend) -> None:
    with _pair(backend) as (server, client):
        client.write(b"hal")  # part of a message is already buffered
        thread = _interrupt_once_running(server, "read_str")
        with pytest.raises(KeyboardInterrupt):
            server.read_str(timeout=60)
        thread.join(timeout=30)
        # The retry is not refused (BusyResourceError) and sees every byte.
        client.write(b"f\r\nnext\r\n")
        assert server.read_str(timeout=10) == "half"
        assert server.read_str(timeout=10) == "next"


def test_interrupted_read_does_not_swallow_the_next_message(backend: Backend) -> None:
    with _pair(backend) as (server, client):
        thread = _interrupt_once_running(client, "read_json")
        with pytest.raises(KeyboardInterrupt):
            client.read_json(timeout=60)
        thread.join(timeout=30)
        server.write_json({"n": 1})
        server.write_json({"n": 2})
        assert client.read_json(timeout=10) == {"n": 1}
        assert client.read_json(timeout=10) == {"n": 2}


def test_interrupted_read_into_keeps_the_partial_struct(backend: Backend) -> None:
    with _pair(backend) as (server, client):
        data = bytes(Point(1.5, -2.0))
        client.write(data[:5])
        thread = _interrupt_once_running(server, "read_into")
        with pytest.raises(KeyboardInterrupt):
            server.read_into(Point(), timeout=60)
        thread.join(timeout=30)
        client.write(data[5:])
        point = Point()
        server.read_into(point, timeout=10)
        assert (point.x, point.y) == (1.5, -2.0)


def test_interrupted_wait_connected_then_usable(backend: Backend) -> None:
    with blocking.OneClientServer(
        port=0, backend=backend[0], backend_options=backend[1]
    ) as server:
        thread = _interrupt_once_running(server, "wait_connected")
        with pytest.raises(KeyboardInterrupt):
            server.wait_connected(timeout=60)
        thread.join(timeout=30)
        with blocking.Client(
            "127.0.0.1", server.port, backend=backend[0], backend_options=backend[1]
        ) as client:
            server.wait_connected(timeout=10)
            client.write_str("after")
            assert server.read_str(timeout=10) == "after"


def test_closed_client_says_closed(backend: Backend) -> None:
    with blocking.OneClientServer(
        port=0, backend=backend[0], backend_options=backend[1]
    ) as server:
        client = blocking.Client(
            "127.0.0.1", server.port, backend=backend[0], backend_options=backend[1]
        )
        with pytest.raises(ConnectionError, match="not started"):
            client.read_str()
        with client:
            server.wait_connected(timeout=10)
        for call in (client.read_str, client.drain, client.wait_connected):
            with pytest.raises(ConnectionError, match=r": closed$") as info:
                call()
            assert "not started" not in str(info.value)
        with pytest.raises(ConnectionError, match="write_str: closed"):
            client.write_str("x")
        with pytest.raises(RuntimeError, match="closed; it cannot be started again"):
            client.__enter__()
        client.close()  # idempotent


def test_interrupted_connect_cancels_the_attempt(backend: Backend) -> None:
    # A TLS peer that never answers: the handshake waits until interrupted.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = blocking.Client(
            "127.0.0.1",
            port,
            ssl_context=ssl.create_default_context(),
            tls_handshake_timeout=45,
            backend=backend[0],
            backend_options=backend[1],
        )
        thread = _interrupt_once_running(client, "__aenter__")
        before = {t.ident for t in threading.enumerate()}
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            with client:
                pytest.fail("connected to a peer that never answers")
        # Not after the 45 s handshake bound: the attempt itself was cancelled.
        assert time.monotonic() - start < 30
        thread.join(timeout=30)
        # The attempt was cancelled and the event loop's thread is gone.
        assert {t.ident for t in threading.enumerate()} <= before
        with pytest.raises(ConnectionError, match="not started"):
            client.read_str()
