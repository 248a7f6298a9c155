"""The pytest plugin of anytcpip, registered under the ``pytest11`` entry point.

pytest loads every installed plugin at start-up, in every project of the
environment, so this module is kept out of the ``anytcpip`` package (as
hypothesis does with ``_hypothesis_pytestplugin``): importing it imports
pytest only, and anytcpip itself is imported when a test first uses one of
the fixtures. Disable it with ``pytest -p no:anytcpip``.

The fixtures are documented in :mod:`anytcpip.pytest_plugin`, which
re-exports them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # spelled out in the annotations, for the API reference
    import anytcpip
    import anytcpip.testing

__all__ = [
    "anytcpip_client",
    "anytcpip_recorder",
    "anytcpip_server",
    "anytcpip_server_class",
    "anytcpip_server_kwargs",
]


@pytest.fixture
def anytcpip_recorder() -> anytcpip.testing.CallbackRecorder:
    """Record the connection states of ``anytcpip_server``."""
    from anytcpip.testing import CallbackRecorder

    return CallbackRecorder()


@pytest.fixture
def anytcpip_server_class() -> type[anytcpip.OneClientServer]:
    """Name the class ``anytcpip_server`` starts; override it to test yours."""
    from anytcpip import OneClientServer

    return OneClientServer


@pytest.fixture
def anytcpip_server_kwargs() -> dict[str, Any]:
    """Extra keyword arguments for the server's constructor."""
    return {}


@pytest.fixture
async def anytcpip_server(
    anytcpip_server_class: type[anytcpip.OneClientServer],
    anytcpip_server_kwargs: dict[str, Any],
    anytcpip_recorder: anytcpip.testing.CallbackRecorder,
) -> AsyncIterator[anytcpip.OneClientServer]:
    """Run a server on ``127.0.0.1`` and a free port."""
    from anytcpip.testing import start_server

    kwargs = {"connect_callback": anytcpip_recorder, **anytcpip_server_kwargs}
    async with start_server(anytcpip_server_class, **kwargs) as server:
        yield server


@pytest.fixture
async def anytcpip_client(
    anytcpip_server: anytcpip.OneClientServer,
) -> AsyncIterator[anytcpip.Client]:
    """Connect a :class:`~anytcpip.Client` to ``anytcpip_server``."""
    from anytcpip.testing import connect_client

    async with connect_client(anytcpip_server) as client:
        yield client
