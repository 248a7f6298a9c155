"""Run every async test on asyncio, asyncio+uvloop (where installed) and trio."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

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
