"""pytest fixtures for testing code built on anytcpip.

pytest loads this plugin automatically once anytcpip is installed (it is
registered under the ``pytest11`` entry point, as ``anytcpip``), so the
fixtures below are available in every test without an import. Loading it
costs nothing: it imports anytcpip only when a test first uses one of its
fixtures. Turn it off with ``pytest -p no:anytcpip`` (on the command line,
or in ``addopts``). The async ones run under anyio's
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

# The fixtures live in a module outside the package, so that pytest's start-up
# does not import anytcpip in every project of the environment.
from _anytcpip_pytestplugin import anytcpip_client as anytcpip_client
from _anytcpip_pytestplugin import anytcpip_recorder as anytcpip_recorder
from _anytcpip_pytestplugin import anytcpip_server as anytcpip_server
from _anytcpip_pytestplugin import anytcpip_server_class as anytcpip_server_class
from _anytcpip_pytestplugin import anytcpip_server_kwargs as anytcpip_server_kwargs

__all__ = [
    "anytcpip_client",
    "anytcpip_recorder",
    "anytcpip_server",
    "anytcpip_server_class",
    "anytcpip_server_kwargs",
]
