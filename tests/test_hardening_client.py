"""Client-side hardening (issue 11): TLS handshake bound, a callback that never
returns, hostile JSON, and a reconnect policy that cannot spin.

Each test failed on the code before the fix: the TLS and callback ones by
hanging (turned into failures by a watchdog or ``fail_after``), the JSON ones
by raising ``RecursionError`` or a plain ``ValueError``.
"""

from __future__ import annotations

import ast
import json
import pathlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest

import anytcpip
from anytcpip import Backoff, Client, OneClientServer, _reporting
from anytcpip import _json as json_wrapper
from anytcpip._constants import TLS_HANDSHAKE_TIMEOUT
from helpers import TIMEOUT, CallbackRecorder, connected_pair

# -- helpers ----------------------------------------------------------------------


class SilentPeer:
    """A plain TCP listener that accepts and then never sends a byte.

    It reads (and discards) whatever arrives, such as a TLS hello, and counts
    the connections that the other end closed (``eofs``).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted = 0
        self.eofs = 0
        self._eof_event = anyio.Event()

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.accepted += 1
        async with stream:
            try:
                while True:
                    await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
        self.eofs += 1
        self._eof_event.set()
        self._eof_event = anyio.Event()

    async def wait_eofs(self, count: int) -> None:
        """Wait until ``count`` connections were closed by the other end."""
        with anyio.fail_after(TIMEOUT):
            while self.eofs < count:
                await self._eof_event.wait()


@asynccontextmanager
async def silent_peer() -> AsyncIterator[SilentPeer]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    peer = SilentPeer(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, peer.handle)
        await anyio.wait_all_tasks_blocked()  # the listener's tasks are up
        yield peer
        tg.cancel_scope.cancel()


def _client_context() -> ssl.SSLContext:
    return ssl.create_default_context()


# -- fault 4: the TLS handshake is bounded -------------------------------------------


async def test_tls_handshake_with_a_silent_peer_times_out() -> None:
    async with silent_peer() as peer:
        start = anyio.current_time()
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(TimeoutError, match="TLS handshake timed out") as info:
                async with Client(
                    "127.0.0.1",
                    peer.port,
                    ssl_context=_client_context(),
                    tls_handshake_timeout=0.3,
                ):
                    pytest.fail("connected to a peer that never answered")
            elapsed = anyio.current_time() - start
            assert 0.25 <= elapsed < TIMEOUT, elapsed
            # The half-open socket was closed, not leaked.
            await peer.wait_eofs(1)
    error = info.value
    assert isinstance(error, OSError)  # TimeoutError is an OSError
    assert f"127.0.0.1:{peer.port}" in str(error)
    assert "0.3 s" in str(error)


def test_tls_handshake_timeout_defaults_to_the_servers_bound() -> None:
    client = Client("127.0.0.1", 1, ssl_context=_client_context())
    assert client.tls_handshake_timeout == TLS_HANDSHAKE_TIMEOUT == 10.0


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), None, "1"])
def test_tls_handshake_timeout_must_be_positive(value: Any) -> None:
    with pytest.raises(ValueError, match="tls_handshake_timeout"):
        Client("127.0.0.1", 1, tls_handshake_timeout=value)


async def test_connect_timeout_still_bounds_the_whole_attempt() -> None:
    # The shorter of connect_timeout and tls_handshake_timeout ends it.
    async with silent_peer() as peer:
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(TimeoutError, match=r"timed out after 0\.3 s"):
                async with Client(
                    "127.0.0.1",
                    peer.port,
                    ssl_context=_client_context(),
                    connect_timeout=0.3,
                    tls_handshake_timeout=60.0,
                ):
                    pass
            await peer.wait_eofs(1)


async def test_tls_handshake_timeout_counts_as_a_failed_reconnect_attempt() -> None:
    policy = Backoff(initial=0.01, maximum=0.05, max_attempts=2)
    async with silent_peer() as peer:
        async with Client(
            "127.0.0.1",
            peer.port,
            ssl_context=_client_context(),
            tls_handshake_timeout=0.2,
            reconnect=policy,
        ) as client:
            with anyio.fail_after(TIMEOUT):
                with pytest.raises(TimeoutError, match="TLS handshake timed out"):
                    await client.wait_connected()
            assert client.reconnect_attempts == 2
            assert not client.connected
            await peer.wait_eofs(2)
            assert peer.accepted == 2


# -- fault 5: a connect_callback that never returns ---------------------------------


class BlockingCallback:
    """A ``connect_callback`` that blocks (until released) when reporting a state.

    ``block_on`` is the state it blocks on, or None to block on every call.
    Records whether the caller's cancellation reached it.
    """

    def __init__(self, block_on: bool | None) -> None:
        self.block_on = block_on
        self.release = anyio.Event()
        self.blocked = anyio.Event()
        self.cancelled = False
        self.states: list[bool] = []

    async def __call__(self, conn: anytcpip.BaseClientOrServer) -> None:
        state = conn.connected
        self.states.append(state)
        if self.block_on is not None and state is not self.block_on:
            return
        self.blocked.set()
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise


@asynccontextmanager
async def watchdog(callback: BlockingCallback) -> AsyncIterator[list[bool]]:
    """Release ``callback`` after TIMEOUT; yields a list that is [True] if it had to.

    Before the fix the ``async with`` under test could not be cancelled at
    all (not even by ``fail_after``): the watchdog turns that hang into a
    failure instead.
    """
    fired: list[bool] = []

    async def guard() -> None:
        await anyio.sleep(TIMEOUT)
        fired.append(True)
        callback.release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(guard)
        yield fired
        tg.cancel_scope.cancel()


def _task_count() -> int:
    return len(anyio.get_running_tasks())


async def test_blocked_disconnect_callback_yields_to_the_callers_timeout() -> None:
    # The disconnection reported on leaving blocks (think: the callback takes
    # a lock that the task leaving the block holds).
    callback = BlockingCallback(block_on=False)
    async with silent_peer() as peer:
        tasks_before = _task_count()
        async with watchdog(callback) as fired:
            with anyio.move_on_after(0.5) as scope:
                async with Client(
                    "127.0.0.1", peer.port, connect_callback=callback
                ) as client:
                    assert client.connected
                    await anyio.wait_all_tasks_blocked()  # connection reported
                pytest.fail("the block was left although the callback blocks")
            assert scope.cancelled_caught
            assert not fired, "the caller's timeout did not end the block"
        assert callback.cancelled, "the cancellation did not reach the callback"
        assert callback.states == [True, False]
        assert not client.connected
        await peer.wait_eofs(1)  # the socket was closed
        assert _task_count() == tasks_before


async def test_blocked_connect_callback_on_entry_yields_to_the_callers_timeout() -> (
    None
):
    callback = BlockingCallback(block_on=None)  # blocks on every report
    async with silent_peer() as peer:
        tasks_before = _task_count()
        async with watchdog(callback) as fired:
            with anyio.move_on_after(0.5) as scope:
                async with Client("127.0.0.1", peer.port, connect_callback=callback):
                    pytest.fail("entered although the callback blocks")
            assert scope.cancelled_caught
            assert not fired, "the caller's timeout did not end the entry"
        assert callback.cancelled
        # The disconnection is still reported, and cancelled in turn.
        assert callback.states == [True, False]
        await peer.wait_eofs(1)
        assert _task_count() == tasks_before


async def test_callback_blocked_in_a_background_task_yields_to_the_timeout() -> None:
    # The server drops the client: the client's receive pump reports the
    # loss from a background task, shielded, and the callback blocks there.
    # Leaving the block must not wait for it past the caller's timeout.
    callback = BlockingCallback(block_on=False)
    async with OneClientServer(port=0) as server:
        tasks_before = _task_count()
        async with watchdog(callback) as fired:
            with anyio.move_on_after(0.5) as scope:
                async with Client(
                    "127.0.0.1", server.port, connect_callback=callback
                ) as client:
                    with anyio.fail_after(TIMEOUT):
                        await server.wait_connected()
                        await server.close_client()
                        await callback.blocked.wait()
                    assert not client.connected
            assert scope.cancelled_caught
            assert not fired, "the caller's timeout did not end the block"
        assert callback.cancelled
        assert callback.states == [True, False]
        assert _task_count() == tasks_before


async def test_reconnecting_client_with_blocked_callback_yields_to_the_timeout() -> (
    None
):
    callback = BlockingCallback(block_on=False)
    policy = Backoff(initial=0.01, maximum=0.05)
    async with silent_peer() as peer:
        tasks_before = _task_count()
        async with watchdog(callback) as fired:
            with anyio.move_on_after(0.5) as scope:
                async with Client(
                    "127.0.0.1", peer.port, connect_callback=callback, reconnect=policy
                ) as client:
                    with anyio.fail_after(TIMEOUT):
                        await client.wait_connected()
                    await anyio.wait_all_tasks_blocked()  # connection reported
            assert scope.cancelled_caught
            assert not fired, "the caller's timeout did not end the block"
        assert callback.cancelled
        assert callback.states == [True, False]
        await peer.wait_eofs(1)
        assert _task_count() == tasks_before


async def test_server_with_blocked_callback_yields_to_the_callers_timeout() -> None:
    callback = BlockingCallback(block_on=False)
    tasks_before = _task_count()
    async with watchdog(callback) as fired:
        with anyio.move_on_after(0.5) as scope:
            async with OneClientServer(port=0, connect_callback=callback) as server:
                stream = await anyio.connect_tcp("127.0.0.1", server.port)
                async with stream:
                    with anyio.fail_after(TIMEOUT):
                        await server.wait_connected()
                    await anyio.wait_all_tasks_blocked()  # connection reported
                    await server.close()  # reports the departure: blocks
                    pytest.fail("close() returned although the callback blocks")
        assert scope.cancelled_caught
        assert not fired
    assert callback.cancelled
    assert callback.states == [True, False]
    assert not server.connected
    assert _task_count() == tasks_before


async def test_a_callback_that_returns_still_runs_to_completion_on_exit() -> None:
    # The unshielded report must not cut short a callback that finishes: an
    # ordinary exit still reports the disconnection before returning.
    states: list[bool] = []

    async def slow(conn: anytcpip.BaseClientOrServer) -> None:
        await anyio.sleep(0.05)
        states.append(conn.connected)

    async with silent_peer() as peer:
        with anyio.fail_after(TIMEOUT):
            async with Client("127.0.0.1", peer.port, connect_callback=slow):
                pass
        assert states == [True, False]


async def test_a_cancelled_block_still_reports_the_disconnection() -> None:
    # A callback that does not block runs even when the caller's scope is
    # already cancelled as the block is left.
    recorder = CallbackRecorder()
    async with silent_peer() as peer:
        with anyio.move_on_after(0.2) as scope:
            async with Client("127.0.0.1", peer.port, connect_callback=recorder):
                await anyio.sleep_forever()
        assert scope.cancelled_caught
        assert recorder.states == [True, False]
        await peer.wait_eofs(1)


# -- fault 7: hostile JSON ------------------------------------------------------------

HOSTILE_JSON = {
    "nested-arrays": "[" * 60_000,
    "nested-objects": '{"a":' * 12_000,
    "closed-nesting": "[" * 30_000 + "]" * 30_000,
    "5000-digit-number": "1" * 5_000,
    "5000-digit-negative-in-object": '{"x": -' + "9" * 5_000 + "}",
    "plain-garbage": "not json",
}


@pytest.mark.parametrize("text", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
async def test_read_json_raises_json_decode_error_for_hostile_json(text: str) -> None:
    async with connected_pair({"max_line_length": 100_000}) as (server, client):
        with anyio.fail_after(TIMEOUT):
            await server.write_str(text)
            await server.write_json({"after": 1})
            with pytest.raises(json.JSONDecodeError) as info:
                await client.read_json()
            # The connection is still usable: the bad line was consumed.
            assert await client.read_json() == {"after": 1}
    message = str(info.value)
    assert text[:20] in message
    assert len(message) < 600, "the offending text is truncated"
    assert info.value.doc == text


async def test_request_json_raises_json_decode_error_for_hostile_json() -> None:
    async with connected_pair({"max_line_length": 100_000}) as (server, client):
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def answer() -> None:
                    await server.read_json()
                    await server.write_str("[" * 60_000)
                    await server.read_json()
                    await server.write_str("7" * 5_000)
                    await server.read_json()
                    await server.write_json({"ok": True})

                tg.start_soon(answer)
                with pytest.raises(json.JSONDecodeError, match=r"\[\[\["):
                    await client.request_json({"cmd": "nested"})
                with pytest.raises(json.JSONDecodeError, match="7777"):
                    await client.request_json({"cmd": "digits"})
                assert await client.request_json({"cmd": "fine"}) == {"ok": True}


def test_json_wrapper_chains_the_original_error() -> None:
    with pytest.raises(json.JSONDecodeError) as nested:
        json_wrapper.loads("[" * 60_000)
    assert isinstance(nested.value.__cause__, RecursionError)
    with pytest.raises(json.JSONDecodeError, match="4300 digits") as digits:
        json_wrapper.loads("1" * 5_000)
    assert type(digits.value.__cause__) is ValueError
    with pytest.raises(json.JSONDecodeError, match="Expecting property") as plain:
        json_wrapper.loads("{'a': 1}" * 100)
    assert plain.value.pos == 1
    assert "800 characters" in str(plain.value)
    assert json_wrapper.loads('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}


# -- Backoff cannot spin ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0, "maximum": 0}, {"initial": 0, "maximum": 1.0}, {"initial": -1}],
)
def test_backoff_rejects_a_zero_delay(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(**kwargs)


def test_backoff_accepts_a_small_positive_delay() -> None:
    delays = Backoff(initial=0.001, maximum=0.001, jitter=0).delays()
    assert [next(delays) for _ in range(3)] == [0.001] * 3


# -- the state-reporting module stands alone ------------------------------------------


def test_reporting_module_does_not_import_the_connection_module() -> None:
    # Imports are one-way: BaseClientOrServer composes StateReporter.
    source = pathlib.Path(_reporting.__file__).read_text()
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module is not None
    } | {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not {name for name in imported if "_connection" in name}, imported
