"""Run every async test on asyncio, asyncio+uvloop (where installed) and trio.

Also prints the reliability figures the fault tests record (open file
descriptors and tasks around 1,000 connect/disconnect cycles, the flood of
extra clients, resident memory under a 100 MiB unterminated line) in the
terminal summary, so a CI log shows them.
"""

from __future__ import annotations

import importlib.util
import ssl
from collections.abc import Callable
from typing import Any

import pytest
import trustme

from helpers import FIGURES

_has_uvloop = importlib.util.find_spec("uvloop") is not None
_has_trio = importlib.util.find_spec("trio") is not None


def _uvloop_factory() -> Any:
    import uvloop

    return uvloop.new_event_loop()


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param(
            ("asyncio", {"loop_factory": _uvloop_factory}),
            id="asyncio+uvloop",
            marks=pytest.mark.skipif(not _has_uvloop, reason="uvloop not installed"),
        ),
        pytest.param(
            "trio",
            id="trio",
            marks=pytest.mark.skipif(not _has_trio, reason="trio not installed"),
        ),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """The backend each async test runs on."""
    return request.param


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A certificate authority for the TLS tests."""
    return trustme.CA()


@pytest.fixture(scope="session")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server TLS context with a certificate for localhost and 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client TLS context that trusts :func:`ca`."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    return context


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a reliability figure, labelled with the test (and its backend)."""

    def record(text: str) -> None:
        FIGURES.append(f"{request.node.name}: {text}")

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the recorded reliability figures after the test results."""
    if FIGURES:
        terminalreporter.section("anytcpip reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
