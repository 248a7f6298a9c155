"""A plain client (no callback, heartbeat or bound task) and its tasks.

On asyncio such a client runs its tasks as bare asyncio tasks, joined when
the ``async with`` is left (``anytcpip._asyncio_task.TaskSet``); elsewhere,
and whenever the fast path is switched off, in an anyio task group. Each
behaviour test runs both ways (``path``): the generic path must stay
complete on asyncio too. The ``TaskSet`` tests at the end check its own
contract on asyncio.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import anytcpip._lifecycle as lifecycle_module
from anytcpip import Client, OneClientServer
from anytcpip._asyncio_task import TaskSet, on_asyncio
from helpers import TIMEOUT, CallbackRecorder

if sys.version_info < (3, 11):
    from exceptiongroup import (  # type: ignore[import-not-found,unused-ignore]
        BaseExceptionGroup,
    )

MiB = 1024 * 1024


@pytest.fixture(params=["fast", "generic"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which path a plain client takes on asyncio (trio always takes the generic)."""
    if request.param == "generic":
        monkeypatch.setattr(lifecycle_module, "on_asyncio", lambda: False)
    return str(request.param)


class _Seen(logging.Handler):
    """Sets ``event`` when a record contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def disconnect_seen() -> Iterator[tuple[logging.Logger, _Seen]]:
    """A logger for the client, and a handler that sees its disconnection."""
    log = logging.getLogger("anytcpip-test-plain-client")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    handler = _Seen("closed by the peer")
    log.addHandler(handler)
    try:
        yield log, handler
    finally:
        log.removeHandler(handler)


def task_names() -> list[str]:
    return sorted(str(task.name) for task in anyio.get_running_tasks())


def takes_fast_path(client: Client) -> bool:
    return isinstance(client._task_group, TaskSet)


async def test_the_path_is_the_one_chosen(path: str) -> None:
    async with (
        OneClientServer(port=0) as server,
        Client("127.0.0.1", server.port) as client,
    ):
        assert takes_fast_path(client) == (path == "fast" and on_asyncio())
        recorder = CallbackRecorder()
        async with Client("127.0.0.1", server.port, connect_callback=recorder) as other:
            assert not takes_fast_path(other)  # a callback: a task group


async def test_peer_close_is_noticed_without_reading_and_nothing_is_lost(
    path: str, disconnect_seen: tuple[logging.Logger, _Seen]
) -> None:
    log, seen = disconnect_seen
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port, log=log) as client:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                await server.write_str("last words")
                await server.close_client()
                await seen.event.wait()  # noticed by the client's pump
            assert not client.connected
            assert client.should_be_connected  # the peer dropped us
            with anyio.fail_after(TIMEOUT):
                assert await client.read_str() == "last words"
                with pytest.raises(ConnectionError, match="closed by the peer"):
                    await client.read_str()


async def test_leaving_waits_for_every_task_and_flushes_writes(path: str) -> None:
    payload = bytes(range(256)) * (4 * MiB // 256)
    received = bytearray()
    checked = anyio.Event()
    reader_name: list[str] = []
    # A plain anyio peer: the only anytcpip tasks are the client's.
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        before = task_names()

        async def read_all() -> None:
            reader_name.append(str(anyio.get_current_task().name))
            accept = listener.listeners[0].accept  # type: ignore[attr-defined]
            async with await accept() as stream:
                while len(received) < len(payload):
                    received.extend(await stream.receive())
                await checked.wait()

        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(read_all)
                async with Client("127.0.0.1", port) as client:
                    # More than a direct send takes: the flusher starts.
                    await client.write(payload)
                # Left: every task of the client has ended.
                assert task_names() == sorted([*before, *reader_name])
                checked.set()
        assert bytes(received) == payload


async def test_a_cancelled_body_closes_the_connection_and_leaves_no_task(
    path: str,
) -> None:
    before = task_names()
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        with anyio.move_on_after(TIMEOUT) as scope:
            async with Client("127.0.0.1", server.port):
                assert await recorder.wait_for(1) == [True]
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught
        assert await recorder.wait_for(2) == [True, False]
    assert task_names() == before


async def test_an_error_in_the_body_propagates_unchanged(path: str) -> None:
    before = task_names()
    async with OneClientServer(port=0) as server:
        with pytest.raises(KeyError, match="mine"):
            async with Client("127.0.0.1", server.port):
                raise KeyError("mine")
    assert task_names() == before


# -- TaskSet (asyncio only) -----------------------------------------------------


@pytest.fixture
def asyncio_only(anyio_backend_name: str) -> None:
    if anyio_backend_name != "asyncio":
        pytest.skip("TaskSet is asyncio's fast path")


@pytest.mark.usefixtures("asyncio_only")
async def test_task_set_raises_a_task_error_on_join() -> None:
    tasks = TaskSet()

    async def fail() -> None:
        raise ValueError("boom")

    tasks.start_soon(fail)
    with pytest.raises(BaseExceptionGroup) as info:
        await tasks.join(cancel=False)
    assert [type(e) for e in info.value.exceptions] == [ValueError]


@pytest.mark.usefixtures("asyncio_only")
async def test_task_set_waits_for_tasks_started_while_joining() -> None:
    tasks = TaskSet()
    order: list[str] = []

    async def second() -> None:
        await anyio.lowlevel.checkpoint()
        order.append("second")

    async def first() -> None:
        await anyio.lowlevel.checkpoint()
        tasks.start_soon(second)
        order.append("first")

    tasks.start_soon(first)
    with anyio.fail_after(TIMEOUT):
        await tasks.join(cancel=False)
    assert order == ["first", "second"]
    with pytest.raises(RuntimeError, match="joined"):
        tasks.start_soon(first)


@pytest.mark.usefixtures("asyncio_only")
async def test_task_set_join_with_cancel_cancels_and_raises_nothing() -> None:
    tasks = TaskSet()
    started = anyio.Event()

    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    before = task_names()
    tasks.start_soon(forever)
    await started.wait()
    with anyio.fail_after(TIMEOUT):
        await tasks.join(cancel=True)
    assert task_names() == before


@pytest.mark.usefixtures("asyncio_only")
async def test_task_set_join_is_shielded_from_the_callers_cancellation() -> None:
    tasks = TaskSet()
    finished: list[bool] = []

    async def slow() -> None:
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        finished.append(True)

    tasks.start_soon(slow)
    with anyio.CancelScope() as scope:
        scope.cancel()
        with anyio.fail_after(TIMEOUT):
            await tasks.join(cancel=False)
    assert finished == [True]  # the join waited, cancelled as the caller was


@pytest.mark.usefixtures("asyncio_only")
async def test_task_set_native_cancellation_cancels_the_tasks_then_is_raised() -> None:
    import asyncio

    tasks = TaskSet()
    cancelled: list[bool] = []
    started = anyio.Event()

    async def forever() -> None:
        try:
            started.set()
            await anyio.sleep_forever()
        except BaseException:
            cancelled.append(True)
            raise

    tasks.start_soon(forever)
    await started.wait()
    joiner = asyncio.ensure_future(tasks.join(cancel=False))
    await asyncio.sleep(0)
    joiner.cancel()
    with anyio.fail_after(TIMEOUT):
        with pytest.raises(asyncio.CancelledError):
            await joiner
    assert cancelled == [True]
