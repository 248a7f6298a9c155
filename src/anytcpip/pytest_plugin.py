"""pytest fixtures for testing code built on anytcpip.

pytest loads this plugin automatically once anytcpip is installed (it is
registered under the ``pytest11`` entry point), so the fixtures below are
available in every test without an import. The async ones run under anyio's
pytest plugin (it ships inside anyio: do not install ``pytest-anyio``), so a
test that uses them must be an anyio test: ``anyio_mode = "auto"`` in the
pytest configuration, or ``@pytest.mark.anyio``.

Fixtures
--------
``anytcpip_recorder``
    A fresh :class:`~anytcpip.testing.CallbackRecorder`, passed as the
    server's ``connect_callback``.
``anytcpip_server_class``
    The server class to start: :class:`~anytcpip.OneClientServer`. Override
    it in a ``conftest.py`` or a test module to test your own mock
    controller.
``anytcpip_server_kwargs``
    Extra keyword arguments for the server's constructor: ``{}``. Override
    it like ``anytcpip_server_class``.
``anytcpip_server``
    A running server of ``anytcpip_server_class`` on ``127.0.0.1`` and a free
    port, its state changes recorded by ``anytcpip_recorder``.
``anytcpip_client``
    A :class:`~anytcpip.Client` connected to ``anytcpip_server``.

Examples
--------
In a test module (with ``anyio_mode = "auto"``)::

    async def test_ping(anytcpip_server, anytcpip_client, anytcpip_recorder):
        await anytcpip_client.write_str("ping")
        assert await anytcpip_server.read_str() == "ping"
        assert await anytcpip_recorder.next() is True
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ._client import Client
from ._server import OneClientServer
from .testing import CallbackRecorder, connect_client, start_server

__all__ = [
    "anytcpip_client",
    "anytcpip_recorder",
    "anytcpip_server",
    "anytcpip_server_class",
    "anytcpip_server_kwargs",
]


@pytest.fixture
def anytcpip_recorder() -> CallbackRecorder:
    """Record the connection states of ``anytcpip_server``."""
    return CallbackRecorder()


@pytest.fixture
def anytcpip_server_class() -> type[OneClientServer]:
    """Name the class ``anytcpip_server`` starts; override it to test yours."""
    return OneClientServer


@pytest.fixture
def anytcpip_server_kwargs() -> dict[str, Any]:
    """Extra keyword arguments for the server's constructor."""
    return {}


@pytest.fixture
async def anytcpip_server(
    anytcpip_server_class: type[OneClientServer],
    anytcpip_server_kwargs: dict[str, Any],
    anytcpip_recorder: CallbackRecorder,
) -> AsyncIterator[OneClientServer]:
    """Run a server on ``127.0.0.1`` and a free port."""
    kwargs = {"connect_callback": anytcpip_recorder, **anytcpip_server_kwargs}
    async with start_server(anytcpip_server_class, **kwargs) as server:
        yield server


@pytest.fixture
async def anytcpip_client(anytcpip_server: OneClientServer) -> AsyncIterator[Client]:
    """Connect a :class:`~anytcpip.Client` to ``anytcpip_server``."""
    async with connect_client(anytcpip_server) as client:
        yield client
