"""``anytcpip.blocking`` covers every public name of the async classes.

The blocking classes are written by hand (so that each method has its own
signature and docstring); this test is what keeps them complete. It fails on
any public attribute, property or method of :class:`anytcpip.Client` or
:class:`anytcpip.OneClientServer` that the blocking class lacks, unless it is
listed in :data:`NOT_BLOCKING` with the reason, and it checks that each
blocking method takes the async method's parameters (plus ``timeout``).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import anytcpip
from anytcpip import blocking

NOT_BLOCKING: dict[str, str] = {
    "connection": (
        "an async handle for tasks on the event loop; blocking code runs one "
        "call at a time and has no task that could outlive a connection"
    ),
    "requester": (
        "the async Requester; blocking code uses request()/request_json(), "
        "which go through it"
    ),
}


def _pairs() -> list[tuple[Any, Any]]:
    return [
        (anytcpip.Client("127.0.0.1", 1), blocking.Client("127.0.0.1", 1)),
        (anytcpip.OneClientServer(port=0), blocking.OneClientServer(port=0)),
    ]


def _public(obj: object) -> set[str]:
    # dir() does not evaluate properties (``connection`` raises unconnected).
    return {name for name in dir(obj) if not name.startswith("_")}


@pytest.mark.parametrize(("native", "facade"), _pairs(), ids=["Client", "Server"])
def test_every_public_name_is_covered(native: Any, facade: Any) -> None:
    missing = _public(native) - _public(facade) - set(NOT_BLOCKING)
    assert not missing, (
        f"blocking.{type(facade).__name__} lacks {sorted(missing)}: add them "
        "(or list them in NOT_BLOCKING with the reason)"
    )


@pytest.mark.parametrize(("native", "facade"), _pairs(), ids=["Client", "Server"])
def test_methods_take_the_same_parameters(native: Any, facade: Any) -> None:
    for name in sorted(_public(native) - set(NOT_BLOCKING)):
        attribute = inspect.getattr_static(native, name)
        if not inspect.iscoroutinefunction(attribute):
            assert not callable(getattr(facade, name)), name
            continue
        expected = [
            p.name
            for p in inspect.signature(getattr(native, name)).parameters.values()
            if p.name != "timeout"
        ]
        blocking_method = getattr(facade, name)
        assert callable(blocking_method), name
        assert not inspect.iscoroutinefunction(blocking_method), name
        parameters = inspect.signature(blocking_method).parameters
        got = [p for p in parameters if p != "timeout"]
        assert got == expected, f"{name}: {got} != {expected}"
        if name != "close":  # close must finish: it stops the loop's thread
            assert "timeout" in parameters, f"{name} takes no timeout"


@pytest.mark.parametrize(("native", "facade"), _pairs(), ids=["Client", "Server"])
def test_attributes_have_the_async_values(native: Any, facade: Any) -> None:
    # Both were built with the same arguments, so they hold the same values.
    for name in sorted(_public(native) - set(NOT_BLOCKING)):
        if inspect.iscoroutinefunction(inspect.getattr_static(native, name)):
            continue
        assert getattr(facade, name) == getattr(native, name), name


def test_not_blocking_names_exist() -> None:
    for native, _ in _pairs():
        for name in NOT_BLOCKING:
            assert name in _public(native), f"{name} is no longer an async name"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_request_and_request_json(backend: str) -> None:
    with blocking.OneClientServer(port=0, backend=backend) as server:  # type: ignore[arg-type]
        with blocking.Client(
            "127.0.0.1",
            server.port,
            backend=backend,  # type: ignore[arg-type]
        ) as client:
            server.wait_connected(timeout=10)
            # Replies written before the requests are read as their replies.
            server.write_str("pong")
            server.write_json({"ok": True})
            assert client.request("ping", timeout=10) == "pong"
            assert client.request_json({"cmd": "x"}, timeout=10) == {"ok": True}
            assert server.read_str(timeout=10) == "ping"
            assert server.read_json(timeout=10) == {"cmd": "x"}
            with pytest.raises(anytcpip.RequestTimeoutError):
                client.request("nobody answers", timeout=0.2)
            # The default policy closes the connection after a timeout.
            assert not client.connected
